"""The quick size of the fuzz and fault suite (bench/fuzz.py), through the real CLI in-process.

The full sizes, and peak memory per input, are `python bench/fuzz.py`.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailnet.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import fuzz

QUICK = [name for name, c in fuzz.CLASSES.items() if c.quick]


@pytest.mark.parametrize("name", QUICK)
def test_fault_class_is_bounded_and_loses_nothing_silently(tmp_path: Path, name: str) -> None:
    for case in fuzz.CLASSES[name].make(random.Random(0), False):
        path = tmp_path / case.name
        path.write_bytes(case.data)
        db = tmp_path / f"{case.name}.db"
        start = time.perf_counter()
        result = CliRunner().invoke(main, ["--db", str(db), "import", "--workers", "1",
                                           str(path)], catch_exceptions=False)
        outcome = fuzz.judge(case, db, result.exit_code, result.stderr,
                             time.perf_counter() - start, 0.0)
        assert not outcome.problems, (case.name, outcome.problems, result.output)

