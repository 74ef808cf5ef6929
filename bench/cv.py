"""Benchmark: the intent model's features, cross-validated by mailbox owner and by list.

    PYTHONPATH=src python bench/cv.py [--cache DIR] [--folds 5] [--held-out] [--errors CSV]

The held-out sets are few (25 Enron owners, 2 lists): a feature change is chosen on
this instead. Over the split=train rows, the Enron messages are cut into folds by
owner and the list messages by list (every other row is always trained on); each
fold is scored by a model fitted without it, as `python -m mailnet.training` fits
the default one. Prints macro-F1 and each tag's precision/recall for the Enron and
the list folds pooled. --held-out also fits on all training rows and scores the
held-out Enron owners, held-out lists, real.csv test rows and spamassassin-spam-2 /
easy-ham-2 (what the model card reports), to check a change on them once chosen.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mailnet.corpora import SHARED_DIR, default_data
from mailnet.evaluation import Report, score
from mailnet.labels import LABELS_DIR, LabelledSet, as_labelled_set, label_table
from mailnet.model import UNKNOWN, IntentModel
from mailnet.store import TAGS
from mailnet.training import evaluate_spam, fit, fit_sentence_model, held_out_reports


def grouped_folds(rows: pd.DataFrame, groups: pd.Series, folds: int) -> list[np.ndarray]:
    """Row positions per fold, whole groups each, the groups dealt out largest first so
    that the folds are about the same size (deterministic: no seed to report)."""
    sizes = groups.value_counts().sort_index(kind="stable").sort_values(ascending=False,
                                                                        kind="stable")
    load, member = [0] * folds, {}
    for group, size in sizes.items():
        k = load.index(min(load))
        member[group], load[k] = k, load[k] + size
    fold_of = groups.map(member).to_numpy()
    return [np.flatnonzero(fold_of == k) for k in range(folds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "mailnet-train")
    parser.add_argument("--shared", type=Path, default=SHARED_DIR)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--held-out", action="store_true")
    parser.add_argument("--errors", type=Path, help="write the out-of-fold errors to this CSV "
                        "(corpus, message_id, tag, label, subject, sender) to read them")
    args = parser.parse_args()
    if not (args.shared / "corpora").is_dir():
        sys.exit(f"needs {args.shared / 'corpora'} (../shared beside the repository)")
    args.cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data = default_data(args.shared, cache=args.cache)
    request = fit_sentence_model(data.sentences)
    thanks = fit_sentence_model(data.thanks_sentences)
    train = data.train_rows().reset_index(drop=True)
    owners = train["corpus"].where(train["source"] != "enron", None)
    # An Enron row's owner is in business.csv; its corpus names the owner's folder, or the
    # shared inboxes file, so the owner column of the label file is read back by id.
    business = label_table(LABELS_DIR / "business.csv")
    owner_of = dict(zip(zip(business["corpus"], business["message_id"], strict=True),
                        business["owner"], strict=True))
    enron = train["source"] == "enron"
    owners[enron] = [owner_of[(c, m)] for c, m in
                     zip(train.loc[enron, "corpus"], train.loc[enron, "message_id"], strict=True)]
    rows, errors = [], []
    for source in ("enron", "lists"):
        mine = train["source"] == source
        folds = grouped_folds(train[mine], owners[mine], args.folds)
        index = np.flatnonzero(mine.to_numpy())
        predicted = np.zeros((mine.sum(), len(TAGS)), dtype=bool)
        for fold in folds:
            out = index[fold]
            fitted = train.drop(index=out)
            model = IntentModel(fit(LabelledSet.concat([as_labelled_set(fitted), data.written]),
                                    request, thanks), {"version": "cv"})
            probabilities = model.probabilities(train.iloc[out])
            predicted[fold] = probabilities >= np.array([model.thresholds[t] for t in TAGS])
        truth = as_labelled_set(train[mine]).labels
        for k, tag in enumerate(TAGS):
            wrong = (truth[:, k] != UNKNOWN) & (predicted[:, k] != (truth[:, k] == 1))
            errors.append(train[mine][wrong][["corpus", "message_id", "subject", "from_addr"]]
                          .assign(tag=tag, label=truth[wrong, k]))
        groups = "owners" if source == "enron" else "lists"
        rows.append(Report({t: score(truth[:, k], predicted[:, k]) for k, t in enumerate(TAGS)},
                           f"{source} out of fold: {mine.sum()} messages, "
                           f"{owners[mine].nunique()} {groups}"))
    for report in rows:
        _print(report)
    if args.errors:
        pd.concat(errors).to_csv(args.errors, index=False)
    if args.held_out:
        model = IntentModel(fit(data.train, request, thanks), {"version": "held-out"})
        for name, report in held_out_reports(model, data).items():
            _print(report, name)
        _print(evaluate_spam(model, args.shared, args.cache), "spam-2 / easy-ham-2")
    print(f"\n{time.perf_counter() - started:.0f} s", file=sys.stderr)


def _print(report: Report, name: str = "") -> None:
    cells = "  ".join(f"{t} {s.f1:.3f} (P {s.precision:.2f} R {s.recall:.2f})"
                      for t, s in report.tags.items() if s.support)
    print(f"{name or report.description}: macro-F1 {report.macro_f1:.3f}  {cells}")


if __name__ == "__main__":
    main()
