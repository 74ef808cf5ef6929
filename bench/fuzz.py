"""Fuzz and fault suite: hostile and broken input, made from seeds, run through `mailnet import`.

    python bench/fuzz.py                     # every class, full size
    python bench/fuzz.py huge_header deep_nesting --seeds 5

Each class in :data:`CLASSES` makes its inputs from a seed (nothing is stored in the
repository but these generators). Every input is imported by a `python -m mailnet` of
its own, and per class the run prints:

- hangs: an import over its budget (10 s + 2 s per MB of input, uncompressed);
- crashes: a traceback, or an exit code the input does not call for;
- silent losses: fewer messages accounted for (stored, or recorded in the errors
  table with a reason) than the input holds, unless the run ended in exit 2 with one
  line saying why; or a check of the class that fails;
- peak memory of the whole process tree (bounded: 500 MiB on any single input).

A class is a function `make(rng, full) -> list[Case]`, registered with :func:`fault_class`.
More classes (IMAP servers that misbehave) register the same way with a `run` of their
own. The test run (tests/test_fuzz.py) runs the quick size of the classes marked
`quick`, in-process.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import lzma
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from _common import PeakMemory

MEMORY_LIMIT_MIB = 500
SECONDS_PER_MB = 2.0
BASE_SECONDS = 10.0  # interpreter start-up and a loaded machine


@dataclass
class Case:
    """One input file and what a correct import of it does."""

    name: str  # file name, whose suffix picks the reader
    data: bytes
    messages: int  # at least this many accounted for: stored, or an errors row
    exits: tuple[int, ...] = (0,)
    raw_mb: float = 0.0  # uncompressed size, for the time budget (default: len(data))
    check: Callable[[sqlite3.Connection], str | None] | None = None  # a problem, or None

    @property
    def budget(self) -> float:
        return BASE_SECONDS + SECONDS_PER_MB * (self.raw_mb or len(self.data) / 1e6)


@dataclass
class Outcome:
    case: Case
    seconds: float
    peak_mib: float
    problems: dict[str, str] = field(default_factory=dict)  # kind (hang/crash/loss/memory) → why


@dataclass(frozen=True)
class FaultClass:
    name: str
    make: Callable[[random.Random, bool], list[Case]]  # seeded; full size or the quick one
    quick: bool  # in the default test run (a class too slow for it sets quick=False)


CLASSES: dict[str, FaultClass] = {}


Maker = Callable[[random.Random, bool], list[Case]]


def fault_class(name: str, *, quick: bool = True) -> Callable[[Maker], Maker]:
    """Register a generator of hostile inputs under `name`."""
    def register(make: Maker) -> Maker:
        CLASSES[name] = FaultClass(name, make, quick)
        return make
    return register


# --- building blocks -----------------------------------------------------------------------

def message(rng: random.Random, n: int, text: str = "", **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Sender {n} <s{n}@{rng.choice(['a', 'b', 'c'])}.example>"
    msg["To"] = "me@example.org"
    msg["Subject"] = f"message {n}"
    msg["Message-ID"] = f"<fuzz-{rng.getrandbits(64):x}-{n}@example>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(text or f"Hello, this is message {n}.\n")
    return msg.as_bytes()


def mbox(messages: list[bytes], *, blank: bool = True, newline: bytes = b"\n") -> bytes:
    """An mbox of `messages`: mboxrd escaping, a blank line between messages unless not `blank`."""
    out = []
    for m in messages:
        body = m.replace(b"\nFrom ", b"\n>From ")
        out.append(b"From fuzz@example Mon Jan  1 00:00:00 2024\n" + body.rstrip(b"\n") + b"\n"
                   + (b"\n" if blank else b""))
    return b"".join(out).replace(b"\n", newline)


def one(name: str, data: bytes, **kw: object) -> Case:
    return Case(name, data, 1, **kw)  # type: ignore[arg-type]


def new_text_check(needle: str) -> Callable[[sqlite3.Connection], str | None]:
    def check(db: sqlite3.Connection) -> str | None:
        texts = [t for (t,) in db.execute("SELECT new_text FROM messages")]
        return None if any(needle in t for t in texts) else f"no new text holds {needle!r}"
    return check


_COMPRESS = {".gz": gzip.compress, ".xz": lzma.compress, ".bz2": bz2.compress}


def _readable_prefix(suffix: str, data: bytes) -> bytes:
    """What a streaming decompressor makes of a cut archive."""
    if suffix == ".xz":
        return lzma.LZMADecompressor().decompress(data)
    if suffix == ".gz":
        return zlib.decompressobj(wbits=31).decompress(data)
    try:
        return bz2.BZ2Decompressor().decompress(data)
    except OSError:
        return b""


# --- the classes ---------------------------------------------------------------------------

@fault_class("whitespace")
def whitespace(rng: random.Random, full: bool) -> list[Case]:
    run = 300_000 if full else 30_000
    return [one("spaces.eml", message(rng, 0, "hello\n" + " " * run + "x\n")),
            one("tabs.eml", message(rng, 1, "hi\n" + "\t \n" * (run // 3) + "Best regards,\n"))]


@fault_class("huge_header")
def huge_header(rng: random.Random, full: bool) -> list[Case]:
    size = 2_000_000 if full else 300_000
    encoded = "=?utf-8?q?caf=C3=A9?= " * (size // 22)
    to = ", ".join(f"r{i} <r{i}@example.org>" for i in range(size // 30))
    refs = " ".join(f"<ref{i}@example>" for i in range(size // 16))
    m = [message(rng, 0), message(rng, 1), message(rng, 2)]
    m[0] = m[0].replace(b"Subject: message 0", b"Subject: " + encoded.encode())
    m[1] = m[1].replace(b"To: me@example.org", b"To: " + to.encode())
    m[2] = m[2].replace(b"Subject:", b"References: " + refs.encode() + b"\nSubject:")
    return [Case("headers.mbox", mbox(m), 3)]


@fault_class("many_parts")
def many_parts(rng: random.Random, full: bool) -> list[Case]:
    parts = 20_000 if full else 2_000
    boundary = "b" + str(rng.getrandbits(32))
    body = "".join(f"--{boundary}\nContent-Type: text/plain\n\npart {i}\n" for i in range(parts))
    raw = (f"From: a@example.org\nTo: me@example.org\nSubject: parts\nMessage-ID: <p@x>\n"
           f"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary={boundary}\n\n"
           f"{body}--{boundary}--\n").encode()
    return [one("parts.eml", raw)]


@fault_class("deep_nesting")
def deep_nesting(rng: random.Random, full: bool) -> list[Case]:
    depth = 5_000 if full else 1_200
    head = "".join(f"--b{i}\nContent-Type: multipart/mixed; boundary=b{i + 1}\n\n"
                   for i in range(depth))
    tail = "".join(f"--b{i}--\n" for i in reversed(range(depth)))
    raw = (f"From: a@example.org\nSubject: deep\nMessage-ID: <d{rng.random()}@x>\n"
           f"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b0\n\n"
           f"{head}--b{depth}\nContent-Type: text/plain\n\ndeep down\n{tail}").encode()
    return [one("deep.eml", raw)]


@fault_class("mbox_framing")
def mbox_framing(rng: random.Random, full: bool) -> list[Case]:
    n = 250 if full else 40
    msgs = [message(rng, i, f"Line one.\nFrom here on, {i}.\n") for i in range(n)]
    return [
        Case("plain.mbox", mbox(msgs), n),
        Case("noblank.mbox", mbox(msgs, blank=False), n),
        Case("crlf.mbox", mbox(msgs, newline=b"\r\n"), n),
        Case("cr.mbox", mbox(msgs, newline=b"\r"), n),
        Case("leading-blank.mbox", b"\n\n" + mbox(msgs), n),
    ]


@fault_class("archive_bomb")
def archive_bomb(rng: random.Random, full: bool) -> list[Case]:
    size = 1 << 30 if full else 64 << 20
    head = message(rng, 0, "the real text\n")
    comp = lzma.LZMACompressor(preset=1)
    line = b"A" * 76 + b"\n"
    block = line * (1 << 16)
    parts = [comp.compress(b"From fuzz@example Mon Jan  1 00:00:00 2024\n" + head)]
    parts += [comp.compress(block) for _ in range(size // len(block))]
    parts += [comp.compress(b"\n" + b"From fuzz@example Mon Jan  1 00:00:00 2024\n"
                            + message(rng, 1, "after the bomb\n")), comp.flush()]
    return [Case("bomb.mbox.xz", b"".join(parts), 2, raw_mb=size / 1e6,
                 check=new_text_check("after the bomb"))]


@fault_class("truncated_archive")
def truncated_archive(rng: random.Random, full: bool) -> list[Case]:
    n = 3000 if full else 300
    data = mbox([message(rng, i, f"text {i} " + "word " * rng.randrange(200)) for i in range(n)])
    cases = []
    for suffix, compress in _COMPRESS.items():
        packed = compress(data)
        cut = packed[:len(packed) * 2 // 3]
        whole = _readable_prefix(suffix, cut).count(b"\nFrom ")  # complete before the cut
        cases.append(Case(f"cut.mbox{suffix}", cut, whole + 1, exits=(0, 2),
                          raw_mb=len(data) / 1e6))
    return cases


@fault_class("corrupt_archive")
def corrupt_archive(rng: random.Random, full: bool) -> list[Case]:
    n = 3000 if full else 300
    data = mbox([message(rng, i, "word " * rng.randrange(200)) for i in range(n)])
    cases = []
    for suffix, compress in _COMPRESS.items():
        packed = bytearray(compress(data))
        for _ in range(8):
            at = rng.randrange(len(packed) // 3, len(packed))
            packed[at] ^= 0xFF
        cases.append(Case(f"corrupt.mbox{suffix}", bytes(packed), 1, exits=(0, 2),
                          raw_mb=len(data) / 1e6))
    return cases


@fault_class("random_bytes")
def random_bytes(rng: random.Random, full: bool) -> list[Case]:
    size = 4 << 20 if full else 64 << 10
    junk = rng.randbytes(size)
    return [Case(name, junk, 0, exits=(2,)) for name in ("x.mbox", "x.mbox.xz", "x.eml")]


@fault_class("wrong_charsets")
def wrong_charsets(rng: random.Random, full: bool) -> list[Case]:
    n = 200 if full else 30
    msgs = []
    for i in range(n):
        raw = message(rng, i, f"Grüße, café {i}\n").replace(b"utf-8", rng.choice(
            [b"us-ascii", b"x-unknown", b"iso-2022-jp", b"utf-7", b"latin1", b"bogus\"\\"]))
        msgs.append(raw.replace(b"Subject: ", b"Subject: \xff\xfe=?x-bad?q?\xe9?= "))
    return [Case("charsets.mbox", mbox(msgs), n)]


@fault_class("huge_html")
def huge_html(rng: random.Random, full: bool) -> list[Case]:
    size = 12_000_000 if full else 11_000_000
    html = "<html><body><p>Please see the offer below.</p><table>" + "<tr><td>cell</td></tr>" * (
        size // 22) + "</table></body></html>"
    msg = EmailMessage()
    msg["From"], msg["Subject"], msg["Message-ID"] = "a@example.org", "big", "<html@x>"
    msg.set_content(html, subtype="html", cte="quoted-printable")
    return [one("big.eml", msg.as_bytes(), check=new_text_check("Please see the offer"))]


# --- running -------------------------------------------------------------------------------

def accounted(db: Path) -> int:
    """Messages stored plus messages recorded in the errors table."""
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        return sum(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                   for t in ("messages", "errors"))


def judge(case: Case, db: Path, code: int, stderr: str, seconds: float,
          peak_mib: float) -> Outcome:
    """What went wrong with one import of `case`."""
    out = Outcome(case, seconds, peak_mib)
    if seconds > case.budget:
        out.problems["hang"] = f"{seconds:.1f} s > {case.budget:.0f} s"
    if "Traceback" in stderr or code not in case.exits:
        out.problems["crash"] = f"exit {code}: {stderr.strip().splitlines()[-1:] or ''}"
    got = accounted(db)
    named = code == 2 and stderr.strip().startswith("mailnet: error: ")  # said, not silent
    if got < case.messages and not named:
        out.problems["loss"] = f"{got} of {case.messages} messages accounted for"
    elif case.check and db.exists():
        with sqlite3.connect(db) as con:
            if problem := case.check(con):
                out.problems["loss"] = problem
    if peak_mib > MEMORY_LIMIT_MIB:
        out.problems["memory"] = f"{peak_mib:,.0f} MiB"
    return out


def run_case(case: Case, workdir: Path) -> Outcome:
    """Import `case` with a `python -m mailnet` of its own, timed and measured."""
    path = workdir / case.name
    path.write_bytes(case.data)
    db = workdir / (case.name + ".db")
    cmd = [sys.executable, "-m", "mailnet", "--db", str(db), "import", "--workers", "2",
           str(path)]
    start = time.perf_counter()
    # A session of its own, so a hung run is killed with its workers (which hold the pipes).
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    with PeakMemory(proc.pid) as peak:
        try:
            _, err = proc.communicate(timeout=case.budget * 3)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
        seconds = time.perf_counter() - start
    path.unlink()
    return judge(case, db, proc.returncode, err, seconds, peak.mib)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("classes", nargs="*", default=[],
                        help=f"fault classes to run (default: all): {', '.join(CLASSES)}")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per class")
    parser.add_argument("--quick", action="store_true", help="the small sizes of the test run")
    args = parser.parse_args()
    if unknown := set(args.classes) - set(CLASSES):
        parser.error(f"no fault class {', '.join(sorted(unknown))}")
    failed = False
    print(f"{'class':18} {'inputs':>6} {'hangs':>5} {'crashes':>7} {'losses':>6} "
          f"{'peak MiB':>8} {'max s':>6}")
    for name in args.classes or CLASSES:
        outcomes = []
        for seed in range(args.seeds):
            for case in CLASSES[name].make(random.Random(seed), not args.quick):
                with tempfile.TemporaryDirectory(prefix="mailnet-fuzz-") as tmp:
                    outcomes.append(run_case(case, Path(tmp)))
        count = {k: sum(k in o.problems for o in outcomes) for k in ("hang", "crash", "loss")}
        peak = max(o.peak_mib for o in outcomes)
        print(f"{name:18} {len(outcomes):>6} {count['hang']:>5} {count['crash']:>7} "
              f"{count['loss']:>6} {peak:>8,.0f} {max(o.seconds for o in outcomes):>6.1f}",
              flush=True)
        for o in outcomes:
            for kind, why in o.problems.items():
                failed = True
                print(f"    {o.case.name}: {kind}: {why}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
