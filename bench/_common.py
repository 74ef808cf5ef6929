"""Helpers shared by the benchmarks: corpora, a timer, and peak memory of a process tree."""

from __future__ import annotations

import lzma
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

# ../shared beside the checkout; MAILNET_SHARED points elsewhere (a git worktree).
SHARED = Path(os.environ.get("MAILNET_SHARED",
                             Path(__file__).resolve().parents[1].parent / "shared"))


def corpus(name: str, workdir: Path) -> Path:
    """The named corpus decompressed into `workdir` (xz is not what is being measured)."""
    src = SHARED / "corpora" / f"{name}.mbox.xz"
    if not src.exists():
        sys.exit(f"needs {src} (../shared beside the repository)")
    dst = workdir / f"{name}.mbox"
    with lzma.open(src) as fin, open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 22)
    return dst


def _tree_rss_kib(pid: int) -> int:
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines()
                              if line.startswith("VmRSS:")))
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration):
            continue
    return total


def run_measured(cmd: list[str]) -> tuple[float, float, str]:
    """Run `cmd`; return wall seconds, peak MiB of its whole process tree, and its stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    stop = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss_kib(proc.pid))
            time.sleep(0.05)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    stop.set()
    poller.join()
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err}")
    return seconds, peak / 1024, out
