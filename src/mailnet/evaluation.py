"""How a model's tags agree with labels: precision, recall and F1 per tag, and how far
those figures would move on other mail like it (a bootstrap)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mailnet.labels import LabelledSet, intent_sentences
from mailnet.model import UNKNOWN, IntentModel
from mailnet.store import TAGS


def cv_report(pipeline: Any) -> Report:
    """The out-of-fold scores each tag's threshold was chosen on."""
    scores = pipeline[-1].cv_scores_
    return Report({t: TagScore(*map(float, s[:3]), int(s[3])) for t, s in zip(TAGS, scores,
                                                                            strict=True)},
                  "5-fold cross-validation on the training data, at the chosen thresholds")


@dataclass(frozen=True)
class TagScore:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Report:
    """Per-tag precision, recall, F1 and support on one labelled set."""

    tags: dict[str, TagScore]
    description: str = ""
    interval: tuple[float, float] | None = None  # of the macro-F1: :func:`macro_f1_interval`

    @property
    def macro_f1(self) -> float:
        """Mean F1 over the tags (NaN for a set in which no message carries a tag)."""
        return float(np.mean([s.f1 for s in self.tags.values()])) if self.tags else math.nan

    def as_dict(self) -> dict[str, Any]:
        macro = None if math.isnan(self.macro_f1) else round(self.macro_f1, 4)  # JSON: null
        interval = None if self.interval is None else [round(x, 4) for x in self.interval]
        return {"description": self.description, "macro_f1": macro, "macro_f1_interval": interval,
                "tags": {t: {"precision": round(s.precision, 4), "recall": round(s.recall, 4),
                             "f1": round(s.f1, 4), "support": s.support}
                         for t, s in self.tags.items()}}

    def frame(self) -> pd.DataFrame:
        rows = [{"tag": t, "precision": s.precision, "recall": s.recall, "f1": s.f1,
                 "support": s.support} for t, s in self.tags.items()]
        scores = self.tags.values()
        rows.append({"tag": "macro", "precision": np.mean([s.precision for s in scores]),
                     "recall": np.mean([s.recall for s in scores]), "f1": self.macro_f1,
                     "support": sum(s.support for s in scores)})
        return pd.DataFrame(rows)


def score(y_true: np.ndarray, y_pred: np.ndarray) -> TagScore:
    """Precision/recall/F1 of the positive class; rows with an UNKNOWN label are left out."""
    known = y_true != UNKNOWN
    t, p = y_true[known] == 1, y_pred[known] == 1
    tp = int((t & p).sum())
    precision = tp / p.sum() if p.sum() else 0.0
    recall = tp / t.sum() if t.sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return TagScore(float(precision), float(recall), float(f1), int(t.sum()))


def predict(model: IntentModel, data: LabelledSet) -> np.ndarray:
    """0/1 per message and tag (:data:`TAGS`): the model's tags of `data`."""
    return (model.probabilities(data.frame) > model.pipeline[-1].thresholds_).astype(int)


def evaluate(model: IntentModel, data: LabelledSet, description: str = "",
             tags: tuple[str, ...] = TAGS, clusters: np.ndarray | None = None) -> Report:
    """How the model's tags agree with the labels of `data`; with `clusters` (each row's
    owner, list or message), the 95% bootstrap interval of the macro-F1 too."""
    return report_of(data.labels, predict(model, data), description, tags, clusters)


def report_of(labels: np.ndarray, predicted: np.ndarray, description: str = "",
              tags: tuple[str, ...] = TAGS, clusters: np.ndarray | None = None) -> Report:
    """:func:`evaluate` for tags already predicted (0/1 per row and tag of :data:`TAGS`)."""
    columns = [TAGS.index(t) for t in tags]
    interval = None
    if clusters is not None and columns:  # a set no tag of which is scored has no macro-F1
        interval = macro_f1_interval(labels[:, columns], predicted[:, columns], clusters)
    return Report({t: score(labels[:, k], predicted[:, k]) for t, k in zip(tags, columns,
                                                                           strict=True)},
                  description, interval)


# Enough resamples that the ends of a 95% interval move by less than 0.005 between seeds.
RESAMPLES = 2000


def macro_f1_resamples(labels: np.ndarray, predictions: Sequence[np.ndarray],
                       clusters: np.ndarray, resamples: int = RESAMPLES,
                       seed: int = 0) -> np.ndarray:
    """Macro-F1 of each of `predictions` on the samples of :func:`f1_resamples`: an array
    (predictions x resamples)."""
    return f1_resamples(labels, predictions, clusters, resamples, seed).mean(axis=2)


def f1_resamples(labels: np.ndarray, predictions: Sequence[np.ndarray], clusters: np.ndarray,
                 resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """F1 per tag of each of `predictions` (rows x tags, 0/1, as `labels`) on `resamples`
    bootstrap samples of the labelled mail: an array (predictions x resamples x tags).

    A sample draws whole `clusters` (one key per row) with replacement: the messages of one
    mailbox owner or one list are alike, so drawing them one by one would make the figure
    look surer than it is. Every prediction is scored on the same samples, so the
    difference between two models is paired: what is left of it is the models', not the
    sample's. Rows with an UNKNOWN label count for no tag they do not know.
    """
    keys, owner = np.unique(np.asarray(clusters), return_inverse=True)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(keys), size=(resamples, len(keys)))
    weight = np.zeros((resamples, len(keys)))
    np.add.at(weight, (np.arange(resamples)[:, None], draws), 1.0)
    known, positive = labels != UNKNOWN, labels == 1

    def per_cluster(mask: np.ndarray) -> np.ndarray:  # clusters x tags
        out = np.zeros((len(keys), mask.shape[1]))
        np.add.at(out, owner, mask.astype(float))
        return out

    actual = weight @ per_cluster(positive)
    out = []
    for predicted in predictions:
        said = (np.asarray(predicted) == 1) & known
        hits, made = weight @ per_cluster(said & positive), weight @ per_cluster(said)
        out.append(np.divide(2 * hits, made + actual, out=np.zeros_like(hits), where=hits > 0))
    return np.stack(out)


def macro_f1_interval(labels: np.ndarray, predicted: np.ndarray,
                      clusters: np.ndarray) -> tuple[float, float]:
    """The 95% bootstrap interval of the macro-F1 (:func:`macro_f1_resamples`)."""
    low, high = np.percentile(macro_f1_resamples(labels, [predicted], clusters)[0], [2.5, 97.5])
    return float(low), float(high)


def evaluate_sentences(model: IntentModel, path: Path) -> Report:
    """Request F1 on a labelled sentence file, each sentence scored by the sentence model."""
    sentences, y = intent_sentences(path)
    sentence_model = model.pipeline.named_steps["features"].sentence_model
    return Report({"request": score(y, sentence_model.predict(sentences))},
                  f"{path.name}: {len(y)} sentences, each scored by the sentence-level request "
                  "model inside the message model (its own threshold 0.5)")
