"""Fixtures shared by every test: real files, a real store, the real CLI."""

from __future__ import annotations

import lzma
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mailnet.cli import main

# The Ctrl-C tests send SIGINT to a mailnet they start, as a terminal does to its foreground
# job. A test run started in the background by a shell without job control inherits SIGINT
# ignored, and so would every mailnet it starts (Python keeps an ignored SIGINT ignored):
# handled here, it is the default again in those processes.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# ../shared next to the checkout; MAILNET_SHARED points elsewhere (a git worktree).
SHARED = Path(os.environ.get("MAILNET_SHARED",
                             Path(__file__).resolve().parents[1].parent / "shared"))
CORPORA = SHARED / "corpora"


def make_message(sender: str = "Ann Example <ann@example.org>",
                 to: str = "Sam Rivera <sam@rivera.example>", subject: str = "Hello",
                 text: str = "Hi there.\n", message_id: str | None = "<m1@example.org>",
                 date: datetime | None = datetime(2024, 3, 1, 12, 0, tzinfo=UTC),
                 **headers: str) -> bytes:
    """A real RFC 5322 message as bytes; extra headers as keyword arguments (In_Reply_To=...)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    if date is not None:
        msg["Date"] = format_datetime(date)
    if message_id:
        msg["Message-ID"] = message_id
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(text)
    return msg.as_bytes()


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., Result]:
    """Run the real `mailnet` command in-process against a store in tmp_path."""
    db = tmp_path / "mailnet.db"

    def run(*args: str, config: Path | None = None) -> Result:
        base = ["--db", str(db)] + (["--config", str(config)] if config else [])
        return CliRunner().invoke(main, [*base, *args], catch_exceptions=False)

    run.db = db  # type: ignore[attr-defined]
    return run


def ctrl_c(proc: subprocess.Popen[str], *, to_the_job: bool = False) -> float:
    """SIGINT to a running `mailnet` (to its whole process group, as a terminal sends it,
    with `to_the_job`); checks it ends as an interrupted run should and returns how many
    seconds that took."""
    start = time.monotonic()
    if to_the_job:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [
        "mailnet: interrupted; everything committed so far is kept"]
    return time.monotonic() - start


def corpus_path(name: str) -> Path:
    path = CORPORA / f"{name}.mbox.xz"
    if not path.exists():
        pytest.skip(f"needs ../shared/corpora/{name}.mbox.xz (the shared corpora are absent)")
    return path


@pytest.fixture(scope="session")
def decompressed(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """A corpus decompressed once per test session (parsing, not xz, is what tests measure)."""
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            src = corpus_path(name)
            dst = tmp_path_factory.mktemp("corpora") / f"{name}.mbox"
            with lzma.open(src) as fin, open(dst, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 22)
            cache[name] = dst
        return cache[name]

    return get
