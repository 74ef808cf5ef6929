"""Training, and the build of the default model.

The default model is rebuilt from the committed labels (`training/labels`)
and the shared corpora by one command::

    PYTHONPATH=src python -m mailnet.training

A user's model (`mailnet train`) is fitted on their labels around the
default model's sentence models.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mailnet.corpora import (
    EVAL_CORPORA,
    PHISHING,
    PHISHING_CREDIT,
    SHARED_DIR,
    TRAINED_SOURCES,
    DefaultData,
    corpus_frame,
    default_data,
    shared_path,
)
from mailnet.evaluation import (
    Report,
    cv_report,
    evaluate,
    evaluate_sentences,
    predict,
    report_of,
)
from mailnet.features import COLUMNS, META_FEATURES, SentenceModel
from mailnet.labels import LABELS_DIR, REPO, LabelledSet, as_labelled_set
from mailnet.model import UNKNOWN, IntentModel, make_pipeline, save_model
from mailnet.store import TAGS


def fit_sentence_model(sentences: tuple[list[str], np.ndarray]) -> SentenceModel:
    return SentenceModel().fit(*sentences)


def fit(train: LabelledSet, sentence_model: SentenceModel, thanks_model: SentenceModel) -> Any:
    """The message pipeline fitted on `train` around fitted request and thanks sentence models."""
    pipeline = make_pipeline(sentence_model, thanks_model)
    return pipeline.fit(train.frame, train.labels, tags__sample_weight=train.weights,
                        tags__groups=train.groups)


USER_WEIGHT = 3.0  # a user's own label outweighs a default one: it is their mail and taste


def train_user_model(data: LabelledSet, base: IntentModel, out: Path, *,
                     with_default_data: bool = False, shared: Path | None = None,
                     source: str = "") -> IntentModel:
    """Retrain the message model on a user's labels, keeping `base`'s sentence models.

    With `with_default_data` the default training set is added, the user's
    rows weighted :data:`USER_WEIGHT` times; they are one source of their own when
    the thresholds are chosen (:func:`mailnet.model.best_threshold`).
    """
    parts, described = [data], [f"{len(data)} messages labelled by the user ({source})"]
    if with_default_data:
        default = default_data(shared or SHARED_DIR)
        data.weights = data.weights * USER_WEIGHT
        parts.insert(0, default.train)
        described += default.description
    features = base.pipeline.named_steps["features"]
    pipeline = fit(LabelledSet.concat(parts), features.sentence_model, features.thanks_model)
    card = {
        "name": "mailnet-intent-user",
        "description": f"Retrained with `mailnet train` from {base.version}'s sentence models.",
        "trained_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": library_versions(),
        "training_data": described,
        "metrics": {"Cross-validation on the training data": cv_report(pipeline).as_dict()},
    }
    return save_model(pipeline, card, out)


@dataclass(frozen=True)
class HeldOut:
    """A set of labelled mail no model is trained on: its messages, the tags it is scored
    on, what it is, and each message's cluster (owner, list or the message itself), which
    a bootstrap draws whole (:func:`mailnet.evaluation.macro_f1_resamples`)."""

    data: LabelledSet
    tags: tuple[str, ...]
    description: str
    clusters: np.ndarray

    def report(self, model: IntentModel) -> Report:
        return evaluate(model, self.data, self.description, self.tags, self.clusters)


def spam_set(shared: Path, cache: Path) -> HeldOut:
    """Sales on the evaluation corpora: spam-2 is sales, easy-ham-2 is not."""
    ham, spam = (corpus_frame(shared, name, cache) for name in EVAL_CORPORA)
    frame = pd.concat([ham, spam], ignore_index=True)
    y = np.full((len(frame), len(TAGS)), UNKNOWN)
    y[:, TAGS.index("sales")] = np.r_[np.zeros(len(ham)), np.ones(len(spam))]
    return HeldOut(LabelledSet(frame[list(COLUMNS)], y), ("sales",),
                   f"{len(spam)} messages of {EVAL_CORPORA[1]} (all sales) and {len(ham)} of "
                   f"{EVAL_CORPORA[0]} (none sales), never trained on; the interval draws "
                   "messages", np.arange(len(frame)))


def evaluate_spam(model: IntentModel, shared: Path, cache: Path) -> Report:
    """Sales on the evaluation corpora (:func:`spam_set`), with the errors counted."""
    held = spam_set(shared, cache)
    predicted = predict(model, held.data)
    said = predicted[:, TAGS.index("sales")] == 1
    is_spam = held.data.labels[:, TAGS.index("sales")] == 1
    return report_of(held.data.labels, predicted, f"{held.description}; "
                     f"{int((said & ~is_spam).sum())} ham messages tagged sales, "
                     f"{int((~said & is_spam).sum())} spam missed", held.tags, held.clusters)


def library_versions() -> dict[str, str]:
    import numpy
    import scipy
    import sklearn
    import skops

    return {"python": sys.version.split()[0], "scikit-learn": sklearn.__version__,
            "skops": skops.__version__, "numpy": numpy.__version__, "scipy": scipy.__version__,
            "pandas": pd.__version__}


def feature_measurements(labels_dir: Path = LABELS_DIR) -> list[str]:
    """The items of training/MEASUREMENTS.md: what each generalisation feature tried did to
    the held-out and leave-one-source-out figures (issue 11); the card lists them."""
    items: list[str] = []
    for line in (labels_dir.parent / "MEASUREMENTS.md").read_text("utf-8").splitlines():
        if line.startswith("- "):
            items.append(line[2:])
        elif line.startswith("  ") and items:
            items[-1] += " " + line.strip()
    return items


def _sourced(rows: pd.DataFrame, description: str, clusters: np.ndarray | None = None,
             ) -> HeldOut:
    """Labelled rows scored over the tags that some of them carry (phishing_pot: sales);
    `clusters` by default: each message its own."""
    data = as_labelled_set(rows)
    tags = tuple(t for k, t in enumerate(TAGS) if (data.labels[:, k] == 1).any())
    return HeldOut(data, tags, f"{len(rows)} messages: {description}",
                   np.arange(len(rows)) if clusters is None else clusters)


def held_out_sets(data: DefaultData) -> dict[str, HeldOut]:
    """Each source's held-out split: mail the default model is never trained on."""
    enron = data.rows("enron", "test")
    return {
        "Held-out real messages": HeldOut(
            data.test, TAGS, f"{len(data.test)} real messages of training/labels/real.csv "
            "with split=test (never trained on); the interval draws messages",
            np.arange(len(data.test))),
        "Held-out Enron owners": _sourced(
            enron, "training/labels/business.csv split=test (whole mailbox owners, never "
            "trained on); the interval draws whole owners", enron["owner"].to_numpy()),
        "Held-out lists": _sourced(
            data.rows("lists", "test"), "training/labels/lists.csv split=test (whole lists, "
            "never trained on); the interval draws messages (two lists are too few to draw)"),
        "phishing_pot (evaluation only)": _sourced(
            data.rows(PHISHING, "test"), f"every phishing_pot message, all sales, never "
            f"trained on ({PHISHING_CREDIT})"),
    }


def held_out_reports(model: IntentModel, data: DefaultData) -> dict[str, Report]:
    """The default model on the labelled messages of each source's held-out split."""
    return {name: held.report(model) for name, held in held_out_sets(data).items()}


def leave_one_source_out(data: DefaultData, log: Callable[[str], None] = print,
                         ) -> list[tuple[str, Report]]:
    """For each source, a model fitted without any of its data, scored on all its labels.

    Without Enron, the request sentence model is fitted without enron-intent-train.tsv
    too. The lists run is also scored per list.
    """
    thanks = fit_sentence_model(data.thanks_sentences)
    request = fit_sentence_model(data.request_sentences())
    out = []
    for source in TRAINED_SOURCES:
        started = time.perf_counter()
        sentence_model = fit_sentence_model(data.request_sentences(source)) \
            if source == "enron" else request
        model = IntentModel(fit(data.training_set(without=source), sentence_model, thanks),
                            {"version": "unsaved"})
        rows = data.rows(source)
        report = _sourced(rows, f"every labelled message of {source}, by a model trained "
                                f"without {source}").report(model)
        out.append((source, report))
        if source == "lists":
            out += [(f"lists: {corpus.removeprefix('lists/')}", _sourced(
                group, f"{corpus}, by the model trained without any list").report(model))
                for corpus, group in rows.groupby("corpus")]
        log(f"leave out {source}: macro-F1 {report.macro_f1:.3f} "
            f"({time.perf_counter() - started:.0f} s)")
    return out


def _log_report(log: Callable[[str], None], name: str, report: dict[str, Any]) -> None:
    interval = report.get("macro_f1_interval")
    within = f" (95% {interval[0]:.3f}–{interval[1]:.3f})" if interval else ""
    log(f"{name}: macro-F1 {report['macro_f1']:.3f}{within}; " + ", ".join(
        f"{t} F1 {m['f1']:.3f} (P {m['precision']:.3f}, R {m['recall']:.3f})"
        for t, m in report["tags"].items()))


def build_default(out: Path, shared: Path = SHARED_DIR, labels_dir: Path = LABELS_DIR,
                  cache: Path | None = None, log: Callable[[str], None] = print,
                  loso: bool = True) -> IntentModel:
    """Train the default model from the committed labels and the shared data, evaluate, save.

    With `loso`, the leave-one-source-out table is measured and written into the card.
    """
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        cache = cache or Path(tmp)
        cache.mkdir(parents=True, exist_ok=True)
        log("importing the training corpora with mailnet …")
        data = default_data(shared, labels_dir, cache)
        log(f"training on {len(data.train)} messages and {len(data.sentences[0])} sentences …")
        pipeline = fit(data.train, fit_sentence_model(data.sentences),
                       fit_sentence_model(data.thanks_sentences))
        model = IntentModel(pipeline, {"version": "unsaved"})
        metrics = {name: r.as_dict() for name, r in held_out_reports(model, data).items()}
        metrics["SpamAssassin evaluation corpora"] = evaluate_spam(model, shared, cache).as_dict()
        metrics["Intent sentences"] = evaluate_sentences(
            model, shared_path(shared, "intent", "enron-intent-test.tsv")).as_dict()
        fit_seconds = time.perf_counter() - started
        for name, report in metrics.items():
            _log_report(log, name, report)
        loso_rows = [{"set": name, "messages": int(r.description.split()[0]), **r.as_dict()}
                     for name, r in (leave_one_source_out(data, log)
                                     if loso else [])]
    card = {
        "name": "mailnet-intent",
        "description": "Tags a message's new text (the sender's own words) as request, offer, "
                       "thanks and/or sales. Word and bigram TF-IDF of subject and new text, "
                       "TF-IDF of the 2- to 4-character pieces within words (hashed; not "
                       "read by sales), "
                       "message and header features, the sender's place in the thread (started it "
                       "or replies in someone else's), the best/mean sentence scores of a "
                       "sentence-level request model and the best/first/last scores of a "
                       "sentence-level thanks model (gratitude, not a sign-off); salutations "
                       "and sign-off names are "
                       "not read, a reply's subject n-grams are features of their own; one "
                       "logistic regression per tag, its calibration (Platt) and threshold "
                       "chosen on out-of-fold scores (5-fold) and on scores by a regression "
                       "fitted without the row's source (the threshold by the mean F1 of "
                       "the sources of mail, each counting the same in each scoring); "
                       "the sales one does not read the list headers or a follow-up in "
                       "one's own thread (SALES_BLIND) and is the only one to read how "
                       "often the sender writes and how often they reply "
                       "(SENDER_FEATURES). A patch or pull request sent for review "
                       "(its subject) is an offer and no request or sales, by the labelling "
                       "guide's rule, not learned (model.patches_give_code).",
        "trained_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "PYTHONPATH=src python -m mailnet.training",
        "message_features": list(META_FEATURES),
        "versions": library_versions(),
        "training_data": data.description,
        "held_out_data": data.held_out,
        "metrics": {**metrics,
                    "Cross-validation on the training data": cv_report(pipeline).as_dict()},
        "leave_one_source_out": loso_rows,
        "feature_measurements": feature_measurements(labels_dir),
        "training_seconds": round(fit_seconds, 1),
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    saved = save_model(pipeline, card, out)
    log(f"saved {saved.version} to {out} ({card['build_seconds']:.0f} s)")
    return saved


def main(argv: list[str] | None = None) -> None:
    """`python -m mailnet.training [OUT_DIR] [--cache DIR] [--no-loso]`: rebuild the default
    model."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mailnet.training", description=main.__doc__)
    parser.add_argument("out", nargs="?", type=Path, default=REPO / "models")
    parser.add_argument("--shared", type=Path, default=SHARED_DIR)
    parser.add_argument("--cache", type=Path, default=None,
                        help="keep imported corpora here to make the next build faster")
    parser.add_argument("--no-loso", action="store_true",
                        help="skip the leave-one-source-out table (five more fits), e.g. while "
                             "iterating; the same model, a card without that table")
    args = parser.parse_args(argv)
    build_default(args.out, args.shared, LABELS_DIR, args.cache, loso=not args.no_loso)


if __name__ == "__main__":
    main()
