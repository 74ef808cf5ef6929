"""The intent model: per-tag classifiers over the message features, saved and loaded.

One scikit-learn Pipeline, so what is computed at training time is exactly
what is computed when tagging: :class:`mailnet.features.MessageFeatures`
turns a message frame into features, :class:`PerTagClassifier` gives a
calibrated probability per tag and applies a threshold per tag.

Models are stored with skops, whose loader builds only the types it is told
to trust (:data:`TRUSTED_TYPES`): a model file cannot run code when loaded.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from mailnet.errors import MailnetError
from mailnet.features import (
    COLUMNS,
    META_FEATURES,
    SALES_BLIND,
    SENDER_FEATURES,
    MessageFeatures,
    SentenceModel,
    patch_submissions,
)
from mailnet.private import FILE_MODE, private_dir
from mailnet.store import TAGS

UNKNOWN = -1  # a label nobody gave (the tag is learned from other rows only)

MODEL_FILE = "intent.skops"
CARD_JSON = "model_card.json"
CARD_MD = "MODEL_CARD.md"


class ModelError(MailnetError):
    """A model file that is missing, unreadable or holds a type that is not trusted."""


# --- per-tag classifier ------------------------------------------------------

def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


# A group (a source of mail) chooses thresholds with the others once it has this many
# messages with the tag: fewer would make its F1 one message's whim.
MIN_GROUP_POSITIVES = 10
# Cuts whose F1 is within this of the best are as good by cross-validation. The curves are
# flat at the top, and the best cut of such a curve jumps along it when data is added: 531
# more labelled messages moved the request cut 0.417 -> 0.304; the middle of the
# near-best cuts moved 0.367 -> 0.348.
NEAR_BEST = 0.005


def best_threshold(y: np.ndarray, p: np.ndarray, groups: np.ndarray | None = None) -> float:
    """The probability cut that maximises F1 on (y, p), halfway between two scores: of
    the cuts within :data:`NEAR_BEST` of the best F1, the middle one.

    With `groups` (each row's source), the mean F1 of the groups with at least
    :data:`MIN_GROUP_POSITIVES` positives: pooled, the source with the most labels
    chooses the cut on a curve that is flat for it and steep for the others (a feature
    tried once moved the pooled sales cut from 0.33 to 0.47, and the spam of another
    corpus lost 3 points of F1); each source of mail counts the same instead.
    """
    order = np.argsort(-p)
    ys, ps = y[order] == 1, p[order]
    members = [np.ones(len(ys), dtype=bool)]
    if groups is not None:
        g = np.asarray(groups)[order]
        members = [g == k for k in np.unique(g)
                   if (ys & (g == k)).sum() >= MIN_GROUP_POSITIVES] or members
    f1 = np.mean([2 * np.cumsum(ys & m) / (np.cumsum(m) + (ys & m).sum()) for m in members],
                 axis=0)
    last = np.flatnonzero(np.r_[ps[1:] != ps[:-1], True])  # cut only between distinct scores
    near = last[f1[last] >= f1[last].max() - NEAR_BEST]
    i = near[len(near) // 2]
    return float((ps[i] + ps[i + 1]) / 2) if i + 1 < len(ps) else float(ps[i] / 2)


def _fewest(y: np.ndarray) -> int:
    """How many rows the rarer side of a 0/1 label has."""
    return int(min(y.sum(), len(y) - y.sum()))


class PerTagClassifier(ClassifierMixin, BaseEstimator):
    """One logistic regression per tag, Platt-calibrated on out-of-fold scores.

    `Y` has a column per tag in :data:`TAGS`; :data:`UNKNOWN` marks a label
    that was not given, so each tag learns from the rows that know it (spam
    corpora know `sales`, nothing else). The threshold of each tag maximises
    the F1 of the out-of-fold calibrated probabilities (with `groups`, each row's
    source, their mean F1 per source: :func:`best_threshold`); the pooled scores
    at that threshold are kept as `cv_scores_`.

    With `groups`, each row is scored twice for the calibration and the threshold:
    out of fold, and by a regression fitted without its whole source
    (:meth:`_out_of_source`). Mail of a kind never trained on scores lower (a model
    trained without Enron put its requests at a mean p of 0.14 for a share of 0.32),
    and a user's mailbox may be familiar or not: the cut holds for both.
    """

    def __init__(self, C: float | Sequence[float] = 64.0, folds: int = 5,
                 random_state: int = 0, blind: Mapping[str, Sequence[int]] | None = None,
                 ) -> None:
        self.C = C
        self.folds = folds
        self.random_state = random_state
        # per tag, the columns its regression does not read (from the start, or negative:
        # from the end)
        self.blind = blind

    def fit(self, X: sp.csr_matrix, Y: np.ndarray, sample_weight: np.ndarray | None = None,
            groups: np.ndarray | None = None) -> PerTagClassifier:
        Y = np.asarray(Y)
        weights = np.ones(len(Y)) if sample_weight is None else np.asarray(sample_weight)
        sources_of = None if groups is None else np.asarray(groups, dtype=object)
        cs = [self.C] * len(TAGS) if np.isscalar(self.C) else list(self.C)
        coef, intercept, calib, thresholds, cv = [], [], [], [], []
        for k, tag in enumerate(TAGS):
            known = Y[:, k] != UNKNOWN
            x, y, w = self._seen(X[known], tag), Y[known, k].astype(int), weights[known]
            smallest = _fewest(y)
            if smallest < 3:
                raise ModelError(f"tag {tag!r} needs at least 3 labelled messages with it and "
                                 f"3 without it; found {int(y.sum())} with, "
                                 f"{len(y) - int(y.sum())} without")
            oof = np.zeros(len(y))
            folds = StratifiedKFold(min(self.folds, smallest), shuffle=True,
                                    random_state=self.random_state)
            for train, test in folds.split(x, y):
                oof[test] = self._lr(cs[k], self.random_state).fit(
                    x[train], y[train], sample_weight=w[train]).decision_function(x[test])
            z, ys, sources = oof, y, None
            if sources_of is not None:
                g = sources_of[known]
                unseen, scored = self._out_of_source(x, y, w, g, cs[k])
                z, ys = np.r_[oof, unseen[scored]], np.r_[y, y[scored]]
                sources = np.r_[g, g[scored] + " (never trained on)"]
            platt = LogisticRegression(C=1e4).fit(z[:, None], ys)
            a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
            thresholds.append(best_threshold(ys, _sigmoid(a * z + b), sources))
            predicted = _sigmoid(a * oof + b) > thresholds[-1]
            cv.append((*precision_recall_fscore_support(y, predicted, average="binary",
                                                        zero_division=0)[:3], y.sum()))
            lr = self._lr(cs[k], self.random_state).fit(x, y, sample_weight=w)
            coef.append(lr.coef_.ravel())
            intercept.append(float(lr.intercept_[0]))
            calib.append((a, b))
        self.coef_ = np.vstack(coef)
        self.intercept_ = np.asarray(intercept)
        self.calibration_ = np.asarray(calib)
        self.thresholds_ = np.asarray(thresholds)
        self.cv_scores_ = np.asarray(cv, dtype=float)  # precision, recall, F1, support
        self.classes_ = np.array(TAGS)
        return self

    def _out_of_source(self, x: sp.csr_matrix, y: np.ndarray, w: np.ndarray, groups: np.ndarray,
                       C: float) -> tuple[np.ndarray, np.ndarray]:
        """Each row's score by a regression fitted on the other sources, and which rows
        have one (the others must hold 3 rows with the tag and 3 without)."""
        scores, scored = np.zeros(len(y)), np.zeros(len(y), dtype=bool)
        for source in np.unique(groups):
            test = groups == source
            train = ~test
            if _fewest(y[train]) < 3:
                continue
            scores[test] = self._lr(C, self.random_state).fit(
                x[train], y[train], sample_weight=w[train]).decision_function(x[test])
            scored |= test
        return scores, scored

    def _seen(self, X: sp.csr_matrix, tag: str) -> sp.csr_matrix:
        """`X` with the columns `tag` is blind to set to 0: their weight is 0, so
        prediction needs no mask."""
        columns = np.asarray((self.blind or {}).get(tag, ()), dtype=np.int64)
        if not columns.size:
            return X
        keep = np.ones(X.shape[1])
        keep[columns] = 0.0
        return X @ sp.diags(keep, format="csr")

    @staticmethod
    def _lr(C: float, random_state: int) -> LogisticRegression:
        """liblinear shuffles with its seed: a fixed one makes a rebuild give the same model."""
        return LogisticRegression(C=C, max_iter=5000, solver="liblinear",
                                  random_state=random_state)

    def predict_proba(self, X: sp.csr_matrix) -> np.ndarray:
        """Calibrated probability of each tag, one column per tag in :data:`TAGS`."""
        check_is_fitted(self)
        z = np.asarray(X @ self.coef_.T) + self.intercept_
        return _sigmoid(self.calibration_[:, 0] * z + self.calibration_[:, 1])

    def predict(self, X: sp.csr_matrix) -> np.ndarray:
        """0/1 per tag: the probability is over that tag's threshold."""
        return (self.predict_proba(X) > self.thresholds_).astype(int)


# The character n-grams' length against the word n-grams' (1). At 1, held-out business
# mail and real mail moved within noise, in opposite directions (training/MEASUREMENTS.md).
CHAR_WEIGHT = 0.5
CHAR_BITS = 18  # 2**18 hashed columns


def make_pipeline(sentence_model: SentenceModel, thanks_model: SentenceModel,
                  C: float | Sequence[float] = 64.0) -> Pipeline:
    """The message model: features then per-tag classifiers (the sales one blind to
    :data:`SALES_BLIND`, the others to :data:`SENDER_FEATURES`; only the request one
    reads the meta features' copy for list mail, see :class:`MessageFeatures`)."""
    n = len(META_FEATURES)

    def columns(names: Sequence[str], copy: bool = False) -> list[int]:
        """Counted from the end: the meta features, then their copy for list mail."""
        return [META_FEATURES.index(name) - (n if copy else 2 * n) for name in names]

    blind = {t: columns(SALES_BLIND if t == "sales" else SENDER_FEATURES) for t in TAGS}
    for tag in TAGS:
        blind[tag] += columns(SENDER_FEATURES if tag == "request" else META_FEATURES,
                              copy=True)
    # Sales does not read the character n-grams: with them its cut fell (0.34 -> 0.28) and
    # subscriptions in business mail (a receipt, a weather forecast) read as pitches.
    blind["sales"] = np.r_[np.arange(1 << CHAR_BITS), blind["sales"]].astype(np.int32)
    return Pipeline([("features", MessageFeatures(sentence_model, thanks_model, list_copy=True,
                                                  char_weight=CHAR_WEIGHT,
                                                  char_bits=CHAR_BITS)),
                     ("tags", PerTagClassifier(C=C, blind=blind))])


# --- persistence -------------------------------------------------------------

# Everything a mailnet model file may contain beyond what skops trusts by default.
TRUSTED_TYPES = [
    "mailnet.features.MessageFeatures",
    "mailnet.features.SentenceModel",
    "mailnet.model.PerTagClassifier",
]
# Where these classes were defined before mailnet.classify was split: a model a user
# trained then still loads.
_MOVED = {"MessageFeatures": "mailnet.features", "SentenceModel": "mailnet.features",
          "PerTagClassifier": "mailnet.model"}
_OLD_MODULE = re.compile(r'("__class__": "(\w+)",\s*"__module__": )"mailnet\.classify"')


@dataclass(frozen=True)
class IntentModel:
    """A fitted pipeline, its model card and its version (recorded with every tag)."""

    pipeline: Pipeline
    card: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.card["version"])

    @property
    def thresholds(self) -> dict[str, float]:
        return dict(zip(TAGS, self.pipeline[-1].thresholds_.tolist(), strict=True))

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        """One row per message, one calibrated probability per tag (:data:`TAGS`); a patch
        sent for review is an offer by the guide's rule (:func:`patches_give_code`)."""
        if frame.empty:
            return np.zeros((0, len(TAGS)))
        return patches_give_code(frame["subject"].tolist(),
                                 self.pipeline.predict_proba(frame.loc[:, list(COLUMNS)]))

    def tags(self, probabilities: np.ndarray) -> list[list[str]]:
        over = probabilities > self.pipeline[-1].thresholds_
        return [[t for t, on in zip(TAGS, row, strict=True) if on] for row in over]


def patches_give_code(subjects: Sequence[str], probabilities: np.ndarray) -> np.ndarray:
    """`probabilities` with every patch or pull request sent for review
    (:func:`~mailnet.features.patch_submissions`) an offer, and no request or sales.

    The labelling guide's rule, not learned: readers gave every one of the 170 such
    messages they labelled in twelve lists `offer` (4 also `request`). A model learns it
    only from lists it was trained on: one trained without any tagged 122 of them request,
    the imperative of a commit message ("Add support for ...") read as an ask; and a third
    of a developer list's mail is patches.
    """
    sent = patch_submissions(subjects)
    out = probabilities.copy()
    out[sent, TAGS.index("offer")] = 1.0
    out[sent, TAGS.index("request")] = out[sent, TAGS.index("sales")] = 0.0
    return out


def default_model_dir() -> Path:
    """The shipped model: models/ of this source checkout, else the installed mailnet.models.

    The checkout comes first so a work tree runs its own model, not that of
    whichever checkout mailnet was pip-installed from.
    """
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").exists() and (checkout / "models" / MODEL_FILE).exists():
        return checkout / "models"
    return Path(str(resources.files("mailnet.models")))


def save_model(pipeline: Pipeline, card: dict[str, Any], directory: Path) -> IntentModel:
    """Write the model, its JSON card and its markdown card into `directory`.

    The version is a hash of the model bytes, so tags name exactly the model
    that made them. Files are written beside their targets and then renamed:
    a failed save leaves the previous model whole.
    """
    import skops.io as sio

    private_dir(directory)
    data = _reproducible(sio.dumps(pipeline, compression=zipfile.ZIP_DEFLATED))
    untrusted = set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES)
    if untrusted:  # a type added to the pipeline without adding it to the trusted list
        raise ModelError(f"model holds types missing from TRUSTED_TYPES: {sorted(untrusted)}")
    digest = hashlib.sha256(data).hexdigest()[:12]
    card = {**card, "version": f"{card.get('name', 'model')}-{digest}",
            "thresholds": dict(zip(TAGS, pipeline[-1].thresholds_.tolist(), strict=True)),
            "model_file": MODEL_FILE, "model_bytes": len(data)}
    files = {MODEL_FILE: data,  # no NaN in the JSON card: a set without a tag has null
             CARD_JSON: (json.dumps(card, indent=2, allow_nan=False) + "\n").encode(),
             CARD_MD: render_card(card).encode()}
    for name, content in files.items():
        with tempfile.NamedTemporaryFile(dir=directory, delete=False, suffix=".part") as tmp:
            tmp.write(content)
        Path(tmp.name).chmod(FILE_MODE)  # a model is learnt from the user's mail
        Path(tmp.name).replace(directory / name)
    return IntentModel(pipeline, card)


_SKOPS_ID = re.compile(r'("__id__": |"file": ")(\d+)')


def _reproducible(data: bytes, edit: Callable[[str], str] = str) -> bytes:
    """The zip file skops wrote, made the same for the same model on every build.

    skops names nodes and array files by the Python id() of objects and dates
    every entry with the time of saving; the version (a hash of these bytes)
    must not depend on either. Ids are renumbered in order of appearance, the
    entries dated 1980-01-01 and sorted by name.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        schema = edit(src.read("schema.json").decode("utf-8"))
        ids: dict[str, str] = {}
        schema = _SKOPS_ID.sub(lambda m: m.group(1) + ids.setdefault(m.group(2), str(len(ids))),
                               schema)
        entries = {"schema.json": schema.encode("utf-8")}
        for info in src.infolist():
            stem, dot, ext = info.filename.partition(".")
            if info.filename != "schema.json":
                entries[ids.get(stem, stem) + dot + ext] = src.read(info)
        compression = src.infolist()[0].compress_type
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in sorted(entries):
            entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = compression
            dst.writestr(entry, entries[name])
    return out.getvalue()


def _classes_moved(data: bytes) -> bytes:
    """A model file written before the split, with its classes where they are now."""
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        if '"mailnet.classify"' not in src.read("schema.json").decode("utf-8"):
            return data
    return _reproducible(data, lambda schema: _OLD_MODULE.sub(
        lambda m: f'{m.group(1)}"{_MOVED.get(m.group(2), "mailnet.classify")}"', schema))


def load_model(path: Path | None = None) -> IntentModel:
    """Load a model directory (or its .skops file); None: the default model.

    Only the types in skops' defaults and :data:`TRUSTED_TYPES` are built;
    anything else in the file is refused before any of it is instantiated.
    """
    import skops.io as sio

    path = default_model_dir() if path is None else path
    file = path / MODEL_FILE if path.is_dir() else path
    card_file = file.with_name(CARD_JSON)
    try:
        data = file.read_bytes()
        moved = _classes_moved(data)
        untrusted = sorted(set(sio.get_untrusted_types(data=moved)) - set(TRUSTED_TYPES))
        if untrusted:
            raise ModelError(f"refusing model {file}: untrusted types {', '.join(untrusted)}")
        pipeline = sio.loads(moved, trusted=TRUSTED_TYPES)
        card = json.loads(card_file.read_text(encoding="utf-8")) if card_file.exists() else {}
    except ModelError:
        raise
    except Exception as exc:  # a truncated or foreign file fails in many ways
        raise ModelError(f"cannot load model {file}: {type(exc).__name__}: {exc}") from None
    if not isinstance(pipeline, Pipeline) or not isinstance(pipeline[-1], PerTagClassifier):
        raise ModelError(f"{file} is not a mailnet intent model")
    card.setdefault("version", "unversioned-" + hashlib.sha256(data).hexdigest()[:12])
    return IntentModel(pipeline, card)


def render_card(card: dict[str, Any]) -> str:
    """The markdown model card: what the model was trained on and how well it does."""
    lines = [f"# Model card: {card.get('name', 'mailnet intent model')}", "",
             card.get("description", ""), "",
             f"- version: `{card['version']}`",
             f"- trained: {card.get('trained_at', 'unknown')}",
             f"- model file: `{card['model_file']}` ({card['model_bytes'] / 1e6:.1f} MB)"]
    if card.get("command"):
        lines.append(f"- reproduce: `{card['command']}`")
    if card.get("message_features"):
        lines.append(f"- message features: {', '.join(card['message_features'])}")
    lines += ["", "## Library versions", ""]
    lines += [f"- {name} {version}" for name, version in card.get("versions", {}).items()]
    lines += ["", "## Training data", ""]
    lines += [f"- {item}" for item in card.get("training_data", [])]
    if card.get("held_out_data"):
        lines += ["", "## Held out (never trained on)", ""]
        lines += [f"- {item}" for item in card["held_out_data"]]
    lines += ["", "## Thresholds (chosen by cross-validation on the training data)", "",
              "| tag | threshold |", "|---|---|"]
    lines += [f"| {t} | {v:.3f} |" for t, v in card["thresholds"].items()]
    for name, report in card.get("metrics", {}).items():
        lines += ["", f"## {name}", "", report.get("description", ""), "",
                  "| tag | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for tag, m in report["tags"].items():
            lines.append(f"| {tag} | {m['precision']:.3f} | {m['recall']:.3f} | "
                         f"{m['f1']:.3f} | {m['support']} |")
        if report.get("macro_f1") is not None:
            lines.append(f"| **macro** | | | **{report['macro_f1']:.3f}** | |")
        if report.get("macro_f1_interval"):
            low, high = report["macro_f1_interval"]
            lines += ["", f"Macro-F1 95% bootstrap interval: {low:.3f}–{high:.3f}."]
    if card.get("leave_one_source_out"):
        lines += _loso_table(card["leave_one_source_out"])
    if card.get("feature_measurements"):
        lines += ["", "## Generalisation features, measured against leaving one source out",
                  "", "Leave-one-source-out macro-F1, usrp-users / SpamAssassin / Enron / "
                  "lists / phishing_pot, each step on top of the kept ones:", ""]
        lines += [f"- {item}" for item in card["feature_measurements"]]
    return "\n".join(lines) + "\n"


def _loso_table(rows: list[dict[str, Any]]) -> list[str]:
    """The leave-one-source-out figures: F1 (precision/recall) per tag, one row per source."""
    lines = ["", "## Leave one source out", "",
             "For each source a model fitted without any of its data (without Enron, also "
             "without the Enron intent sentences), scored on every labelled message of it. "
             "Macro-F1 is over the tags that some of its messages carry (a list without "
             "thanks has no thanks column). phishing_pot has no row: no model is trained on it. "
             "The per-list rows are the lists run, split by list.", "",
             f"| left out | messages | macro-F1 | {' | '.join(TAGS)} |",
             "|---|---|---|" + "---|" * len(TAGS)]
    for row in rows:
        cells = [f"{m['f1']:.3f} ({m['precision']:.2f}/{m['recall']:.2f}, n={m['support']})"
                 if (m := row["tags"].get(t)) else "–" for t in TAGS]
        macro = "– (no tags)" if row["macro_f1"] is None else f"{row['macro_f1']:.3f}"
        lines.append(f"| {row['set']} | {row['messages']} | {macro} | "
                     + " | ".join(cells) + " |")
    lines += ["", "Cells: F1 (precision/recall, n = messages with the tag)."]
    return lines
