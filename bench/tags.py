"""Score the shipped model on labelled real mail it was never trained on (issue 11).

    PYTHONPATH=src python bench/tags.py [--cache DIR] [--model DIR]

Reads training/labels/business.csv (Enron: all rows, each split, the shared
enron-inboxes file and the owners' own mailboxes) and training/labels/lists.csv
(all rows, each split, each list). The corpora are imported with mailnet once
into --cache and reused, and the messages looked up by Message-ID as
`python -m mailnet.training` does; labels whose Message-ID is not found are
counted and left out. The model is the one `mailnet classify` uses by default
(models/ of this checkout), or --model.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from mailnet.corpora import labelled_messages
from mailnet.evaluation import Report, evaluate
from mailnet.labels import LABELS_DIR, as_labelled_set, label_table
from mailnet.model import IntentModel, load_model
from mailnet.store import TAGS

from _common import model_arguments

INBOXES = "enron/enron-inboxes"


def _sets(file: str, rows: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The labelled subsets of one file to score: all, each split, each source."""
    sets = [(f"{file} all", rows)] + [(f"{file} split={s}", rows[rows["split"] == s])
                                       for s in ("train", "test")]
    if file == "business.csv":
        inbox = rows["corpus"] == INBOXES
        sets += [("Enron inboxes (enron-inboxes)", rows[inbox]),
                 ("Enron own mailboxes (enron/OWNER/*)", rows[~inbox])]
    else:
        sets += [(name, group) for name, group in rows.groupby("corpus")]
    return sets


def _print_report(name: str, report: Report) -> None:
    table = report.frame().set_index("tag")
    print(f"\n== {name}: {report.description}")
    print(table.to_string(float_format=lambda x: f"{x:.3f}"))


def main() -> None:
    args = model_arguments(__doc__.splitlines()[0])
    if not (args.shared / "corpora").is_dir():
        sys.exit(f"needs {args.shared / 'corpora'} (../shared beside the repository)")
    args.cache.mkdir(parents=True, exist_ok=True)
    model: IntentModel = load_model(args.model)
    print(f"model: {model.version}")
    summary = []
    for file in ("business.csv", "lists.csv"):
        labels = label_table(LABELS_DIR / file)
        print(f"importing the corpora of {file} (once, into {args.cache}) …", file=sys.stderr)
        found = labelled_messages(args.shared, labels, args.cache)
        missing = labels.merge(found[["corpus", "message_id"]], how="left", indicator=True)
        missing = missing[missing["_merge"] == "left_only"]
        print(f"{file}: {len(labels)} labels, {len(found)} found in their corpora, "
              f"{len(missing)} not found"
              + "".join(f"\n  not found: {c} {m}" for c, m in
                        zip(missing["corpus"], missing["message_id"], strict=True)))
        for name, rows in _sets(file, found):
            report = evaluate(model, as_labelled_set(rows), f"{len(rows)} messages")
            _print_report(name, report)
            present = [s.f1 for s in report.tags.values() if s.support]
            summary.append({"set": name, "messages": len(rows), "macro_f1": report.macro_f1,
                            "macro_f1_tags_present": np.mean(present) if present else np.nan,
                            **{f"{t}_f1": report.tags[t].f1 for t in TAGS}})
    print("\n== summary (F1; macro over the four tags, and over the tags with support > 0)")
    print(pd.DataFrame(summary).set_index("set").to_string(float_format=lambda x: f"{x:.3f}"))


if __name__ == "__main__":
    main()
