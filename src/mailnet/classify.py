"""The intent classifier: request / offer / thanks / sales for every message.

One scikit-learn Pipeline, so what is computed at training time is exactly
what is computed when tagging: :class:`MessageFeatures` turns a message
frame (:data:`COLUMNS`) into sparse features, :class:`PerTagClassifier`
gives a calibrated probability per tag and applies a threshold per tag.

Speed matters (tens of thousands of messages a run, on a laptop), so the text
is tokenised once per message, with regular expressions, and that one pass
feeds both the message's bag of n-grams and :class:`SentenceModel`, a
sentence-level request scorer (a request is often one sentence in a long
message) whose best and mean sentence scores are message features.

Models are stored with skops, whose loader builds only the types it is told
to trust (:data:`TRUSTED_TYPES`): a model file cannot run code when loaded.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted

from mailnet.errors import MailnetError
from mailnet.store import TAGS, Store

# What the model reads of a message; classify and training build the same frame.
COLUMNS = ("subject", "new_text", "is_reply", "is_bulk", "list_id", "precedence",
           "list_unsubscribe")
MAX_CHARS = 2000  # of new text: the first paragraphs say what a message wants
MAX_SENTENCES = 40
UNKNOWN = -1  # a label nobody gave (the tag is learned from other rows only)

MODEL_FILE = "intent.skops"
CARD_JSON = "model_card.json"
CARD_MD = "MODEL_CARD.md"


class ModelError(MailnetError):
    """A model file that is missing, unreadable or holds a type that is not trusted."""


# --- text --------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n|\n(?=\s*[-*•>\d])")
_TOKEN = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?|[?!$€£]")
_URL = re.compile(r"https?://|www\.")
_MONEY = re.compile(r"[$€£]\s?\d|\d\s?(?:usd|eur|dollars)\b", re.IGNORECASE)
_UPPER = re.compile(r"[A-Z]")
_LETTER = re.compile(r"[A-Za-z]")


def split_sentences(text: str) -> list[str]:
    """Sentences (or lines that stand alone) of a text, at most :data:`MAX_SENTENCES`."""
    parts = [s for s in _SENTENCE_END.split(text[:MAX_CHARS]) if s and not s.isspace()]
    return parts[:MAX_SENTENCES]


def ngrams(sentence: str) -> list[str]:
    """Lower-cased words and ?/!/$ signs, plus bigrams; '^' marks the sentence start."""
    words = _TOKEN.findall(sentence.lower())
    if not words:
        return []
    starts = ["^", *words]
    return words + [a + " " + b for a, b in zip(starts, words, strict=False)]


def _vocabulary(docs: Iterable[list[str]], min_df: int, max_features: int) -> dict[str, int]:
    df: dict[str, int] = {}
    for grams in docs:
        for g in set(grams):
            df[g] = df.get(g, 0) + 1
    kept = sorted((g for g, n in df.items() if n >= min_df), key=lambda g: (-df[g], g))
    return {g: i for i, g in enumerate(sorted(kept[:max_features]))}


def _idf(rows: sp.csr_matrix) -> np.ndarray:
    n = rows.shape[0]
    df = np.bincount(rows.indices, minlength=rows.shape[1])
    return np.log((1 + n) / (1 + df)) + 1.0


def _counts(ids: Sequence[np.ndarray], width: int) -> sp.csr_matrix:
    """Rows of term counts from rows of column ids (-1: not in the vocabulary)."""
    lengths = np.fromiter((len(a) for a in ids), dtype=np.int64, count=len(ids))
    cols = np.concatenate(ids) if len(ids) else np.zeros(0, np.int64)
    rows = np.repeat(np.arange(len(ids)), lengths)
    keep = cols >= 0
    m = sp.csr_matrix((np.ones(keep.sum()), (rows[keep], cols[keep])),
                      shape=(len(ids), width))
    m.sum_duplicates()
    return m


def _tfidf(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    out = counts.copy()
    out.data = (1.0 + np.log(out.data)) * idf[out.indices]
    return normalize(out)


# --- the sentence model ------------------------------------------------------

class SentenceModel(ClassifierMixin, BaseEstimator):
    """Is this one sentence a request (asks someone to do or give something)?

    Trained on its own data (labelled sentences); inside the message model it
    is a fitted component whose sentence scores become message features.
    """

    def __init__(self, C: float = 2.0, min_df: int = 2, max_features: int = 40000) -> None:
        self.C = C
        self.min_df = min_df
        self.max_features = max_features

    def fit(self, sentences: Sequence[str], y: Sequence[int]) -> SentenceModel:
        grams = [ngrams(s) for s in sentences]
        self.vocabulary_ = _vocabulary(grams, self.min_df, self.max_features)
        counts = _counts([self._ids(g) for g in grams], len(self.vocabulary_))
        self.idf_ = _idf(counts)
        lr = LogisticRegression(C=self.C, max_iter=3000).fit(_tfidf(counts, self.idf_), y)
        self.coef_, self.intercept_ = lr.coef_.ravel(), float(lr.intercept_[0])
        self.classes_ = np.array([0, 1])
        return self

    def _ids(self, grams: list[str]) -> np.ndarray:
        get = self.vocabulary_.get
        return np.fromiter((get(g, -1) for g in grams), dtype=np.int64, count=len(grams))

    def scores(self, counts: sp.csr_matrix) -> np.ndarray:
        """Decision values of sentence rows of counts over this model's vocabulary."""
        return _tfidf(counts, self.idf_) @ self.coef_ + self.intercept_

    def decision_function(self, sentences: Sequence[str]) -> np.ndarray:
        check_is_fitted(self)
        counts = _counts([self._ids(ngrams(s)) for s in sentences], len(self.vocabulary_))
        return self.scores(counts)

    def predict_proba(self, sentences: Sequence[str]) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.decision_function(sentences)))
        return np.column_stack([1 - p, p])

    def predict(self, sentences: Sequence[str]) -> np.ndarray:
        return (self.decision_function(sentences) > 0).astype(int)


# --- message features --------------------------------------------------------

META_FEATURES = (
    "is_reply", "is_bulk", "list_id", "precedence_bulk", "precedence_list", "unsubscribe",
    "subject_re", "subject_fwd", "empty", "log_chars", "log_sentences", "questions",
    "question_share", "last_is_question", "urls", "money", "exclamations", "caps_ratio",
    "subject_caps_ratio", "subject_money", "digits_ratio",
    "request_max", "request_mean", "request_top2", "request_first", "request_last",
)


def _ratio(pattern: re.Pattern[str], text: str) -> float:
    letters = len(_LETTER.findall(text))
    return len(pattern.findall(text)) / letters if letters else 0.0


class MessageFeatures(TransformerMixin, BaseEstimator):
    """Message frame → [n-grams of subject and new text | message meta | sentence scores].

    `sentence_model` is a fitted :class:`SentenceModel` (its own training
    data is sentences, not messages), used as it is.
    """

    def __init__(self, sentence_model: SentenceModel | None = None, min_df: int = 2,
                 max_features: int = 60000, meta_weight: float = 1.0) -> None:
        self.sentence_model = sentence_model
        self.min_df = min_df
        self.max_features = max_features
        self.meta_weight = meta_weight

    @staticmethod
    def _grams(frame: pd.DataFrame) -> tuple[list[list[list[str]]], list[list[str]]]:
        """Per message: the n-grams of each sentence, and its marked n-grams.

        Marked: the subject's (s:), and the first (f:) and last (l:) sentence's,
        since where a "thanks" or a question stands says much (an opening
        "Thanks for the fix" is gratitude, a closing "Thanks," a sign-off).
        """
        bodies = [[ngrams(s) for s in split_sentences(t)] for t in frame["new_text"]]
        marked = [["s:" + g for g in ngrams(s)] for s in frame["subject"]]
        for body, extra in zip(bodies, marked, strict=True):
            if body:
                extra += ["f:" + g for g in body[0]]
                extra += ["l:" + g for g in body[-1]]
        return bodies, marked

    def fit(self, frame: pd.DataFrame, y: Any = None) -> MessageFeatures:
        check_is_fitted(self.sentence_model)
        bodies, subjects = self._grams(frame)
        docs = [[g for sent in body for g in sent] + subj
                for body, subj in zip(bodies, subjects, strict=True)]
        self.vocabulary_ = _vocabulary(docs, self.min_df, self.max_features)
        # One lookup per n-gram serves both vocabularies: word → (message col, sentence col).
        sentence_vocab = self.sentence_model.vocabulary_
        self.lookup_ = {g: (self.vocabulary_.get(g, -1), sentence_vocab.get(g, -1))
                        for g in self.vocabulary_.keys() | sentence_vocab.keys()}
        counts, meta = self._parts(frame, bodies, subjects)
        self.idf_ = _idf(counts)
        self.meta_mean_ = meta.mean(axis=0)
        self.meta_scale_ = meta.std(axis=0) + 1e-6
        return self

    def _parts(self, frame: pd.DataFrame, bodies: list[list[list[str]]],
               subjects: list[list[str]]) -> tuple[sp.csr_matrix, np.ndarray]:
        get, none = self.lookup_.get, (-1, -1)
        msg_ids: list[np.ndarray] = []
        sent_ids: list[np.ndarray] = []
        owner: list[int] = []
        for i, (body, subj) in enumerate(zip(bodies, subjects, strict=True)):
            pairs = [get(g, none) for g in subj]
            for sent in body:
                found = [get(g, none) for g in sent]
                pairs += found
                sent_ids.append(np.fromiter((s for _, s in found), np.int64, len(found)))
                owner.append(i)
            msg_ids.append(np.fromiter((m for m, _ in pairs), np.int64, len(pairs)))
        counts = _counts(msg_ids, len(self.vocabulary_))
        scores = self.sentence_model.scores(
            _counts(sent_ids, len(self.sentence_model.vocabulary_)))
        return counts, self._meta(frame, bodies, np.asarray(owner, np.int64), scores)

    @staticmethod
    def _meta(frame: pd.DataFrame, bodies: list[list[list[str]]], owner: np.ndarray,
              scores: np.ndarray) -> np.ndarray:
        n = len(frame)
        per_message = np.bincount(owner, minlength=n)
        total = np.bincount(owner, weights=scores, minlength=n)
        floor = -5.0  # a message with no sentence asks for nothing
        best = np.full(n, floor)
        np.maximum.at(best, owner, scores)
        second = np.full(n, floor)
        if len(scores):
            order = np.lexsort((-scores, owner))
            rank = np.arange(len(order)) - np.searchsorted(owner[order], owner[order])
            pick = order[rank == 1]
            second[owner[pick]] = scores[pick]
        starts = np.searchsorted(owner, np.arange(n))
        has = per_message > 0
        first = np.where(has, scores[np.minimum(starts, len(scores) - 1)] if len(scores)
                         else floor, floor)
        last_idx = np.minimum(starts + per_message - 1, max(len(scores) - 1, 0))
        last = np.where(has, scores[last_idx] if len(scores) else floor, floor)
        rows = []
        for body, subject, text, reply, bulk, list_id, prec, unsub in zip(
                bodies, frame["subject"], frame["new_text"], frame["is_reply"],
                frame["is_bulk"], frame["list_id"], frame["precedence"],
                frame["list_unsubscribe"], strict=True):
            text = text[:MAX_CHARS]
            prec = prec.lower()
            subj = subject.lower()
            questions = sum(g.count("?") for sent in body for g in sent[:len(sent) // 2 + 1])
            asking = sum("?" in sent for sent in body)
            rows.append((
                float(reply), float(bulk), float(bool(list_id)), float(prec in ("bulk", "junk")),
                float(prec == "list"), float(bool(unsub)), float(subj.startswith("re:")),
                float(subj.startswith(("fw:", "fwd:"))), float(not body),
                math.log1p(len(text)), math.log1p(len(body)), math.log1p(questions),
                asking / len(body) if body else 0.0, float(bool(body) and "?" in body[-1]),
                math.log1p(len(_URL.findall(text))), math.log1p(len(_MONEY.findall(text))),
                math.log1p(text.count("!")), _ratio(_UPPER, text), _ratio(_UPPER, subject),
                float(bool(_MONEY.search(subject))),
                sum(c.isdigit() for c in text) / len(text) if text else 0.0,
            ))
        meta = np.asarray(rows, dtype=np.float64).reshape(n, -1)
        mean = np.divide(total, per_message, out=np.full(n, floor), where=has)
        return np.column_stack([meta, best, mean, (best + second) / 2, first, last])

    def transform(self, frame: pd.DataFrame) -> sp.csr_matrix:
        check_is_fitted(self)
        bodies, subjects = self._grams(frame)
        counts, meta = self._parts(frame, bodies, subjects)
        meta = (meta - self.meta_mean_) / self.meta_scale_ * self.meta_weight
        return sp.hstack([_tfidf(counts, self.idf_), sp.csr_matrix(meta)], format="csr")


# --- per-tag classifier ------------------------------------------------------

def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def best_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The probability cut that maximises F1 on (y, p), halfway between two scores."""
    order = np.argsort(-p)
    ys, ps = y[order], p[order]
    tp = np.cumsum(ys)
    f1 = 2 * tp / (np.arange(1, len(ys) + 1) + ys.sum())
    last = np.flatnonzero(np.r_[ps[1:] != ps[:-1], True])  # cut only between distinct scores
    i = last[np.argmax(f1[last])]
    return float((ps[i] + ps[i + 1]) / 2) if i + 1 < len(ps) else float(ps[i] / 2)


class PerTagClassifier(ClassifierMixin, BaseEstimator):
    """One logistic regression per tag, Platt-calibrated on out-of-fold scores.

    `Y` has a column per tag in :data:`TAGS`; :data:`UNKNOWN` marks a label
    that was not given, so each tag learns from the rows that know it (spam
    corpora know `sales`, nothing else). The threshold of each tag maximises
    the F1 of the out-of-fold calibrated probabilities; the scores at that
    threshold are kept as `cv_scores_`.
    """

    def __init__(self, C: float | Sequence[float] = 4.0, folds: int = 5,
                 random_state: int = 0) -> None:
        self.C = C
        self.folds = folds
        self.random_state = random_state

    def fit(self, X: sp.csr_matrix, Y: np.ndarray, sample_weight: np.ndarray | None = None,
            ) -> PerTagClassifier:
        Y = np.asarray(Y)
        weights = np.ones(len(Y)) if sample_weight is None else np.asarray(sample_weight)
        cs = [self.C] * len(TAGS) if np.isscalar(self.C) else list(self.C)
        coef, intercept, calib, thresholds, cv = [], [], [], [], []
        for k, tag in enumerate(TAGS):
            known = Y[:, k] != UNKNOWN
            x, y, w = X[known], Y[known, k].astype(int), weights[known]
            smallest = int(min(y.sum(), len(y) - y.sum()))
            if smallest < 3:
                raise ModelError(f"tag {tag!r} needs at least 3 labelled messages with it and "
                                 f"3 without it; found {int(y.sum())} with, "
                                 f"{len(y) - int(y.sum())} without")
            oof = np.zeros(len(y))
            folds = StratifiedKFold(min(self.folds, smallest), shuffle=True,
                                    random_state=self.random_state)
            for train, test in folds.split(x, y):
                lr = self._lr(cs[k]).fit(x[train], y[train], sample_weight=w[train])
                oof[test] = lr.decision_function(x[test])
            platt = LogisticRegression(C=1e4).fit(oof[:, None], y)
            a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
            thresholds.append(best_threshold(y, _sigmoid(a * oof + b)))
            predicted = _sigmoid(a * oof + b) > thresholds[-1]
            cv.append((*precision_recall_fscore_support(y, predicted, average="binary",
                                                        zero_division=0)[:3], y.sum()))
            lr = self._lr(cs[k]).fit(x, y, sample_weight=w)
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

    @staticmethod
    def _lr(C: float) -> LogisticRegression:
        return LogisticRegression(C=C, max_iter=5000, solver="liblinear")

    def predict_proba(self, X: sp.csr_matrix) -> np.ndarray:
        """Calibrated probability of each tag, one column per tag in :data:`TAGS`."""
        check_is_fitted(self)
        z = np.asarray(X @ self.coef_.T) + self.intercept_
        return _sigmoid(self.calibration_[:, 0] * z + self.calibration_[:, 1])

    def predict(self, X: sp.csr_matrix) -> np.ndarray:
        """0/1 per tag: the probability is over that tag's threshold."""
        return (self.predict_proba(X) > self.thresholds_).astype(int)


def make_pipeline(sentence_model: SentenceModel, C: float | Sequence[float] = 4.0) -> Pipeline:
    """The message model: features then per-tag classifiers."""
    return Pipeline([("features", MessageFeatures(sentence_model)),
                     ("tags", PerTagClassifier(C=C))])


# --- persistence -------------------------------------------------------------

# Everything a mailnet model file may contain beyond what skops trusts by default.
TRUSTED_TYPES = [
    "mailnet.classify.MessageFeatures",
    "mailnet.classify.PerTagClassifier",
    "mailnet.classify.SentenceModel",
]


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
        """One row per message, one calibrated probability per tag (:data:`TAGS`)."""
        if frame.empty:
            return np.zeros((0, len(TAGS)))
        return self.pipeline.predict_proba(frame.loc[:, list(COLUMNS)])

    def tags(self, probabilities: np.ndarray) -> list[list[str]]:
        over = probabilities > self.pipeline[-1].thresholds_
        return [[t for t, on in zip(TAGS, row, strict=True) if on] for row in over]


def default_model_dir() -> Path:
    """The model shipped inside the package (the top-level models/ folder of the source)."""
    return Path(str(resources.files("mailnet.models")))


def save_model(pipeline: Pipeline, card: dict[str, Any], directory: Path) -> IntentModel:
    """Write the model, its JSON card and its markdown card into `directory`.

    The version is a hash of the model bytes, so tags name exactly the model
    that made them. Files are written beside their targets and then renamed:
    a failed save leaves the previous model whole.
    """
    import skops.io as sio

    directory.mkdir(parents=True, exist_ok=True)
    data = sio.dumps(pipeline)
    untrusted = set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES)
    if untrusted:  # a type added to the pipeline without adding it to the trusted list
        raise ModelError(f"model holds types missing from TRUSTED_TYPES: {sorted(untrusted)}")
    digest = hashlib.sha256(data).hexdigest()[:12]
    card = {**card, "version": f"{card.get('name', 'model')}-{digest}",
            "thresholds": dict(zip(TAGS, pipeline[-1].thresholds_.tolist(), strict=True)),
            "model_file": MODEL_FILE, "model_bytes": len(data)}
    files = {MODEL_FILE: data, CARD_JSON: (json.dumps(card, indent=2) + "\n").encode(),
             CARD_MD: render_card(card).encode()}
    for name, content in files.items():
        with tempfile.NamedTemporaryFile(dir=directory, delete=False, suffix=".part") as tmp:
            tmp.write(content)
        Path(tmp.name).replace(directory / name)
    return IntentModel(pipeline, card)


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
        untrusted = sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))
        if untrusted:
            raise ModelError(f"refusing model {file}: untrusted types {', '.join(untrusted)}")
        pipeline = sio.loads(data, trusted=TRUSTED_TYPES)
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
    lines += ["", "## Library versions", ""]
    lines += [f"- {name} {version}" for name, version in card.get("versions", {}).items()]
    lines += ["", "## Training data", ""]
    lines += [f"- {item}" for item in card.get("training_data", [])]
    lines += ["", "## Thresholds (chosen by cross-validation on the training data)", "",
              "| tag | threshold |", "|---|---|"]
    lines += [f"| {t} | {v:.3f} |" for t, v in card["thresholds"].items()]
    for name, report in card.get("metrics", {}).items():
        lines += ["", f"## {name}", "", report.get("description", ""), "",
                  "| tag | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for tag, m in report["tags"].items():
            lines.append(f"| {tag} | {m['precision']:.3f} | {m['recall']:.3f} | "
                         f"{m['f1']:.3f} | {m['support']} |")
        if "macro_f1" in report:
            lines.append(f"| **macro** | | | **{report['macro_f1']:.3f}** | |")
    return "\n".join(lines) + "\n"


# --- the store ---------------------------------------------------------------

_FRAME_SQL = f"""SELECT m.id, m.message_id, m.subject,
        substr(m.new_text, 1, {MAX_CHARS}) AS new_text, m.parent_id IS NOT NULL AS is_reply,
        m.is_bulk, m.list_id, m.precedence, m.list_unsubscribe
    FROM messages m"""


def message_frame(store: Store, where: str = "", params: Sequence[object] = ()) -> pd.DataFrame:
    """Stored messages as the model's input frame (plus id and message_id), by row id."""
    return pd.read_sql_query(f"{_FRAME_SQL} {where} ORDER BY m.id", store.db,
                             params=tuple(params))


@dataclass(frozen=True)
class ClassifySummary:
    tagged: int
    seconds: float
    model_version: str


def classify_store(store: Store, model: IntentModel, *, retag: bool = False,
                   batch: int = 5000, on_progress: Callable[[int, int], None] | None = None,
                   ) -> ClassifySummary:
    """Tag every untagged message (every message with `retag`), a batch per transaction.

    A batch is committed on its own, so an interrupted run keeps its work.
    """
    start = time.perf_counter()
    where = "" if retag else "WHERE NOT EXISTS (SELECT 1 FROM tags t WHERE t.message = m.id)"
    todo = [i for (i,) in store.db.execute(f"SELECT m.id FROM messages m {where}")]
    done = 0
    for lo in range(0, len(todo), batch):
        ids = todo[lo:lo + batch]
        frame = message_frame(store, "WHERE m.id BETWEEN ? AND ? " +
                              ("" if retag else where.replace("WHERE", "AND")),
                              (ids[0], ids[-1]))
        probs = model.probabilities(frame)
        store.set_tags(((int(i), dict(zip(TAGS, p.tolist(), strict=True)), t)
                        for i, p, t in zip(frame["id"], probs, model.tags(probs), strict=True)),
                       model.version)
        done += len(frame)
        if on_progress:
            on_progress(done, len(todo))
    return ClassifySummary(done, time.perf_counter() - start, model.version)


def list_messages(store: Store, tag: str | None = None,
                  ids: Iterable[int] | None = None) -> pd.DataFrame:
    """Stored messages with their tags and tag probabilities, newest first.

    `tag` keeps messages carrying that tag; `ids` keeps only those row ids.
    Untagged messages (not yet classified) show no tags and no probabilities.
    """
    if tag is not None and tag not in TAGS:
        raise MailnetError(f"unknown tag {tag!r} (tags are {', '.join(TAGS)})")
    frame = pd.read_sql_query(
        f"""SELECT m.id, m.date, m.from_addr AS sender, m.subject, t.labels AS tags,
                   {", ".join(f"t.{t}" for t in TAGS)}, t.model_version, m.message_id
            FROM messages m LEFT JOIN tags t ON t.message = m.id
            ORDER BY m.date DESC, m.id DESC""", store.db)
    if ids is not None:
        frame = frame[frame["id"].isin(set(ids))]
    frame["tags"] = [t.split() if isinstance(t, str) else [] for t in frame["tags"]]
    if tag is not None:
        frame = frame[[tag in t for t in frame["tags"]]]
    frame["date"] = pd.to_datetime(frame["date"], utc=True, errors="coerce")
    return frame.drop(columns="id").reset_index(drop=True)


def uncertainty(model: IntentModel, probabilities: np.ndarray) -> np.ndarray:
    """How close a message's least clear tag is to its threshold (lower: less sure).

    Measured in log-odds, so 0.02 against a 0.01 threshold counts as far.
    """
    p = np.clip(probabilities, 1e-6, 1 - 1e-6)
    t = np.clip(model.pipeline[-1].thresholds_, 1e-6, 1 - 1e-6)
    return np.abs(np.log(p / (1 - p)) - np.log(t / (1 - t))).min(axis=1)
