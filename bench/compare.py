"""Two models on the same held-out mail: which differences are more than the sample's luck.

    PYTHONPATH=src python bench/compare.py MODEL_A MODEL_B [--cache DIR] [--shared DIR]

MODEL_A and MODEL_B are model directories (`models/`, or the OUT of
`python -m mailnet.training OUT`). Both are scored on every held-out set of the
default model's card (held-out real, Enron owners, lists, phishing_pot) and on
spam-2 / easy-ham-2, on the same 2,000 bootstrap samples of each set (whole
owners for Enron; messages elsewhere). Printed per set and per tag: A's and B's
F1, B - A with its 95% interval, and how often B came out ahead. A difference
whose interval straddles 0 is one the held-out mail cannot tell from luck; held
against each other, a model and itself print 0 (0.000 to 0.000).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from mailnet.corpora import SHARED_DIR, default_data
from mailnet.evaluation import f1_resamples, predict
from mailnet.model import load_model
from mailnet.store import TAGS
from mailnet.training import HeldOut, held_out_sets, spam_set


def differences(a: np.ndarray, b: np.ndarray) -> str:
    """A's figure, B's, and B - A with its 95% interval and the share of samples B leads."""
    diff = b - a
    low, high = np.percentile(diff, [2.5, 97.5])
    return (f"{np.median(a):.3f}  {np.median(b):.3f}  {np.median(diff):+.3f} "
            f"({low:+.3f} to {high:+.3f})  B ahead {np.mean(diff > 0):4.0%}")


def compare(name: str, held: HeldOut, models: list) -> None:
    columns = [TAGS.index(t) for t in held.tags]
    a, b = f1_resamples(held.data.labels[:, columns],
                        [predict(m, held.data)[:, columns] for m in models], held.clusters)
    print(f"\n{name}: {len(held.data)} messages, {len(np.unique(held.clusters))} clusters")
    print(f"  {'':8} {'A':>5}  {'B':>5}  B - A (95%)")
    print(f"  {'macro':8} {differences(a.mean(axis=1), b.mean(axis=1))}")
    for k, tag in enumerate(held.tags if len(columns) > 1 else ()):
        print(f"  {tag:8} {differences(a[:, k], b[:, k])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_a", type=Path)
    parser.add_argument("model_b", type=Path)
    parser.add_argument("--shared", type=Path, default=SHARED_DIR)
    parser.add_argument("--cache", type=Path,
                        default=Path(tempfile.gettempdir()) / "mailnet-bench-compare")
    args = parser.parse_args()
    if not (args.shared / "corpora").is_dir():
        sys.exit(f"needs the shared corpora at {args.shared} (--shared)")
    models = [load_model(args.model_a), load_model(args.model_b)]
    print(f"A = {models[0].version} ({args.model_a}), B = {models[1].version} ({args.model_b})")
    args.cache.mkdir(parents=True, exist_ok=True)
    sets = held_out_sets(default_data(args.shared, cache=args.cache))
    sets["spam-2 / easy-ham-2 (sales)"] = spam_set(args.shared, args.cache)
    for name, held in sets.items():
        compare(name, held, models)


if __name__ == "__main__":
    main()
