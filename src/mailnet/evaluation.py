"""How a model's tags agree with labels: precision, recall and F1 per tag."""

from __future__ import annotations

import math
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

    @property
    def macro_f1(self) -> float:
        """Mean F1 over the tags (NaN for a set in which no message carries a tag)."""
        return float(np.mean([s.f1 for s in self.tags.values()])) if self.tags else math.nan

    def as_dict(self) -> dict[str, Any]:
        macro = None if math.isnan(self.macro_f1) else round(self.macro_f1, 4)  # JSON: null
        return {"description": self.description, "macro_f1": macro,
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


def evaluate(model: IntentModel, data: LabelledSet, description: str = "",
             tags: tuple[str, ...] = TAGS) -> Report:
    """How the model's tags agree with the labels of `data`."""
    predicted = model.probabilities(data.frame) > model.pipeline[-1].thresholds_
    return Report({t: score(data.labels[:, TAGS.index(t)], predicted[:, TAGS.index(t)])
                   for t in tags}, description)


def evaluate_sentences(model: IntentModel, path: Path) -> Report:
    """Request F1 on a labelled sentence file, each sentence scored by the sentence model."""
    sentences, y = intent_sentences(path)
    sentence_model = model.pipeline.named_steps["features"].sentence_model
    return Report({"request": score(y, sentence_model.predict(sentences))},
                  f"{path.name}: {len(y)} sentences, each scored by the sentence-level request "
                  "model inside the message model (its own threshold 0.5)")
