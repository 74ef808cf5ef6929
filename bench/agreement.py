"""How far two readers of the same mail agree, and the model from each (issue 11).

    PYTHONPATH=src python bench/agreement.py [--cache DIR] [--model DIR]

training/labels/business_second_reading.csv is a second reading of the held-out
Enron messages (business.csv split=test, 462 messages of 25 owners) by the guide,
made blind: its readers saw neither the first labels nor the model's tags. Printed,
per tag: the second reading scored against the first (the labels the model card
scores on), and the model scored against each. How far the people are from each
other says how much of the model's distance from them is the model's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from mailnet.corpora import labelled_messages
from mailnet.evaluation import Report, evaluate, score
from mailnet.labels import LABELS_DIR, as_labelled_set, label_table
from mailnet.model import load_model
from mailnet.store import TAGS

from _common import model_arguments

SECOND = "business_second_reading.csv"


def readings(labels_dir: Path = LABELS_DIR) -> pd.DataFrame:
    """The held-out Enron messages with both readings: a column per tag and reading
    (request_1 for business.csv's, request_2 for the second)."""
    first = label_table(labels_dir / "business.csv")
    first = first[first["split"] == "test"]
    second = label_table(labels_dir / SECOND)
    return first.merge(second, on=["corpus", "message_id"], suffixes=("_1", "_2"))


def main() -> None:
    args = model_arguments(__doc__.splitlines()[0])
    both = readings()
    rows = {"second reading vs first": Report(
        {t: score(both[f"{t}_1"].to_numpy(), both[f"{t}_2"].to_numpy()) for t in TAGS})}
    if (args.shared / "corpora").is_dir():
        model = load_model(args.model)
        print(f"model: {model.version}; importing the corpora once into {args.cache} …",
              file=sys.stderr)
        for n in (1, 2):
            labels = both.rename(columns={f"{t}_{n}": t for t in TAGS})
            found = labelled_messages(args.shared, labels[["corpus", "message_id", *TAGS]],
                                      args.cache)
            rows[f"model vs reading {n} ({len(found)} found)"] = evaluate(
                model, as_labelled_set(found))
    else:
        print(f"no {args.shared / 'corpora'}: the readings only", file=sys.stderr)
    print(f"{len(both)} messages read twice; F1 (precision/recall) of the first named, scored "
          "against the second")
    print(f"{'':34} {'macro':>6} " + " ".join(f"{t:>16}" for t in TAGS))
    for name, report in rows.items():
        cells = " ".join(f"{s.f1:.3f} ({s.precision:.2f}/{s.recall:.2f})".rjust(16)
                         for s in report.tags.values())
        print(f"{name:34} {report.macro_f1:6.3f} {cells}")


if __name__ == "__main__":
    main()
