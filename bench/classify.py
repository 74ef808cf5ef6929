"""Benchmark `mailnet classify` on the stored usrp-users corpus (target: ≥ 5,000 messages/s).

    PYTHONPATH=src python bench/classify.py [--db STORE] [--cache DIR] [--repeat N]

Without --db, the corpus is imported from ../shared once into --cache and
reused. Each run retags every message of a copy of that store; the baseline,
measured in the same run, is reading the same rows from SQLite into the
model's input frame. The best of N runs is reported for both.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from mailnet.classify import classify_store, message_frame
from mailnet.corpora import SHARED_DIR, corpus_store
from mailnet.model import load_model
from mailnet.store import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="a store to copy (default: usrp-users imported)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "mailnet-bench")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.db is None:
        args.cache.mkdir(parents=True, exist_ok=True)
        print("importing usrp-users (once) …", file=sys.stderr)
        args.db = corpus_store(SHARED_DIR, "usrp-users-2019-2024", args.cache)
    model = load_model()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        shutil.copy(args.db, db)
        with Store(db) as store:
            n = store.count()
            read, tag = [], []
            for _ in range(args.repeat):
                t = time.perf_counter()
                message_frame(store)
                read.append(time.perf_counter() - t)
                summary = classify_store(store, model, retag=True)
                tag.append(summary.seconds)
    best_read, best_tag = min(read), min(tag)
    print(f"messages: {n:,}  model: {model.version}")
    print(f"read rows (baseline): {best_read:.2f} s ({n / best_read:,.0f} messages/s)")
    print(f"classify --retag:     {best_tag:.2f} s ({n / best_tag:,.0f} messages/s)")
    print(f"ratio classify / read: {best_tag / best_read:.1f}x")


if __name__ == "__main__":
    main()
