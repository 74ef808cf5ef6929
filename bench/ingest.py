"""Import speed: `mailnet import` of the usrp-users corpus against a bare mail-parser loop.

    python bench/ingest.py

Both run on the same decompressed messages in the same run. The bare loop is
what the issue names as the baseline: one process, `mailparser.parse_from_bytes`
on every message, no store, no new-text extraction.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path

import mailparser

from mailnet.sources import open_source

from _common import corpus, run_measured

CORPUS = "usrp-users-2019-2024"


def bare_loop(path: Path) -> tuple[int, float]:
    logging.getLogger("mailparser").setLevel(logging.ERROR)
    messages = [m.data for source in open_source(path) for m in source]
    start = time.perf_counter()
    for data in messages:
        mailparser.parse_from_bytes(data)
    return len(messages), time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mailnet-bench-") as tmp:
        path = corpus(CORPUS, Path(tmp))
        db = Path(tmp) / "bench.db"
        seconds, peak_mib, out = run_measured(
            [sys.executable, "-m", "mailnet", "--db", str(db), "import", str(path)])
        again, _, out2 = run_measured(
            [sys.executable, "-m", "mailnet", "--db", str(db), "import", str(path)])
        count, bare = bare_loop(path)
    print(f"corpus: {CORPUS}, {count:,} messages")
    print(f"mailnet import (whole CLI run): {seconds:6.1f} s  {count / seconds:7,.0f} msg/s  "
          f"peak memory {peak_mib:,.0f} MiB (all processes)")
    print(f"   {out.strip()}")
    print(f"bare mail-parser loop:          {bare:6.1f} s  {count / bare:7,.0f} msg/s")
    print(f"ratio import / bare loop:       {seconds / bare:6.2f}x  (target <= 0.75x)")
    print(f"re-import, nothing new:         {again:6.1f} s  ({out2.strip()})")


if __name__ == "__main__":
    main()
