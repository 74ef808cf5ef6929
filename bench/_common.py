"""Helpers shared by the benchmarks: corpora, a timer, and peak memory of a process tree."""

from __future__ import annotations

import argparse
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
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


def tree_rss_kib(pid: int) -> int:
    """Resident KiB of a process and all its descendants (from /proc)."""
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


class PeakMemory:
    """Samples the resident memory of a process tree every 50 ms while in its `with` block;
    `mib` is the peak seen."""

    def __init__(self, pid: int) -> None:
        self.pid, self.kib = pid, 0
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.kib = max(self.kib, tree_rss_kib(self.pid))
            time.sleep(0.05)

    def __enter__(self) -> PeakMemory:
        self._poller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._poller.join()

    @property
    def mib(self) -> float:
        return self.kib / 1024


def run_measured(cmd: list[str]) -> tuple[float, float, str]:
    """Run `cmd`; return wall seconds, peak MiB of its whole process tree, and its stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with PeakMemory(proc.pid) as peak:
        out, err = proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err}")
    return seconds, peak.mib, out


def model_arguments(description: str) -> argparse.Namespace:
    """--cache (the corpora imported once), --model (default: the shipped one), --shared."""
    from mailnet.corpora import SHARED_DIR

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "mailnet-bench")
    parser.add_argument("--model", type=Path, default=None, help="default: the shipped model")
    parser.add_argument("--shared", type=Path, default=SHARED_DIR)
    return parser.parse_args()
