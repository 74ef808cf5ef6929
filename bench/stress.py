"""The Ctrl-C, dead-link and worker-pool tests, many times over, on a busy machine.

A stop that works on an idle machine can still hang or lose a race under load
(CI runs on a shared 2-core machine). This runs those tests `--rounds` times
each in one pytest session while `stress-ng --cpu N` keeps every core busy, and
prints how many runs passed. Each test keeps its own timeout, so a hang is a
failure, not a stall.

    python bench/stress.py                 # 50 rounds, stress-ng --cpu 4
    python bench/stress.py --rounds 5 --cpu 2
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = [
    "tests/test_corpus.py::test_ctrl_c_keeps_committed_batches_and_a_rerun_completes",
    "tests/test_imap.py::test_ctrl_c_stops_a_fetch_stuck_on_a_dead_link_at_once",
    "tests/test_imap.py::test_interrupt_keeps_committed_batches_and_a_rerun_completes",
    "tests/test_workers.py",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50, help="runs of each test")
    parser.add_argument("--cpu", type=int, default=4, help="stress-ng CPU hogs beside them")
    args = parser.parse_args()
    if shutil.which("stress-ng") is None:
        sys.exit("needs stress-ng (apt-get install stress-ng)")
    load = subprocess.Popen(["stress-ng", "--cpu", str(args.cpu), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.monotonic()
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
             "--count", str(args.rounds), *TESTS],
            cwd=ROOT, capture_output=True, text=True)
    finally:
        load.terminate()
        load.wait()
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr
    found = re.findall(r"(\d+) (passed|failed|errors?|skipped)", summary)
    counts = {kind: int(n) for n, kind in found}
    passed, total = counts.get("passed", 0), sum(counts.values())
    for line in run.stdout.splitlines():
        if line.startswith(("FAILED", "ERROR")):
            print(line)
    print(f"{passed}/{total} passed ({args.rounds} rounds of {len(TESTS)} tests and their "
          f"parameters, stress-ng --cpu {args.cpu}, {time.monotonic() - start:.0f} s)")
    return 0 if total and passed == total else 1


if __name__ == "__main__":
    sys.exit(main())
