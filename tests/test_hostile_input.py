"""Broken archives, oversized messages, and a store that is damaged, busy or too readable."""

from __future__ import annotations

import lzma
import mailbox
import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailnet import store as store_module
from mailnet.parse import parse_message
from mailnet.sources import MAX_MESSAGE_BYTES, Origin, RawMessage, open_source

from conftest import make_message


def mbox(count: int, *, blank: bool = True) -> bytes:
    return b"".join(
        b"From a@x Mon Jan  1 00:00:00 2024\n"
        + make_message(message_id=f"<m{i}@x>", text=f"message {i}\n") + (b"\n" if blank else b"")
        for i in range(count))


def test_from_lines_split_like_python_mailbox(tmp_path: Path) -> None:
    path = tmp_path / "tight.mbox"
    path.write_bytes(mbox(250, blank=False))
    assert len(mailbox.mbox(path)) == 250
    assert len([m for s in open_source(path) for m in s]) == 250


def test_cr_only_mbox(tmp_path: Path) -> None:
    path = tmp_path / "mac.mbox"
    path.write_bytes(mbox(20).replace(b"\n", b"\r"))
    got = [m for s in open_source(path) for m in s]
    assert len(got) == 20
    assert parse_message(got[7]).new_text == "message 7"


def test_truncated_archive_keeps_what_came_before_and_reruns_add_nothing(cli, tmp_path: Path
                                                                        ) -> None:
    packed = lzma.compress(mbox(400))
    path = tmp_path / "cut.mbox.xz"
    path.write_bytes(packed[:len(packed) // 2])
    complete = lzma.LZMADecompressor().decompress(path.read_bytes()).count(b"\nFrom ")
    result = cli("import", "--workers", "2", str(path))
    assert result.exit_code == 0, result.output
    assert f"imported {complete}, duplicates 0, errors 1" in result.output
    assert "damaged archive" in result.output and "Traceback" not in result.output
    again = cli("import", "--workers", "2", str(path))
    assert f"imported 0, duplicates {complete}, errors 1" in again.output
    with sqlite3.connect(cli.db) as db:
        assert db.execute("SELECT count(*) FROM messages").fetchone() == (complete,)
        (reason,) = db.execute("SELECT reason FROM errors").fetchone()
    assert f"#{complete}" in reason or f"{complete:,} messages before" in reason


def test_corrupt_or_random_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "x.mbox").write_bytes(os.urandom(50_000))
    (tmp_path / "y.mbox.xz").write_bytes(b"\xfd7zXZ\x00" + os.urandom(5_000))
    for name in ("x.mbox", "y.mbox.xz"):
        proc = subprocess.run([sys.executable, "-m", "mailnet", "--db", str(tmp_path / "s.db"),
                               "import", str(tmp_path / name)], capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 2
        assert len(proc.stderr.strip().splitlines()) == 1 and name in proc.stderr


def test_a_message_over_the_cap_is_read_in_part_and_noted(cli, tmp_path: Path) -> None:
    big = make_message(text="the real text\n" + "A" * 76 * (MAX_MESSAGE_BYTES // 70))
    path = tmp_path / "big.eml"
    path.write_bytes(big)
    result = cli("import", str(path))
    assert result.exit_code == 0 and "imported 1" in result.output
    assert "over the 8 MiB cap" in result.output
    with sqlite3.connect(cli.db) as db:
        assert db.execute("SELECT size, substr(new_text, 1, 13) FROM messages").fetchone() == (
            len(big), "the real text")
        assert "cap" in db.execute("SELECT reason FROM errors").fetchone()[0]


def test_huge_headers_parse_in_bounded_time() -> None:
    data = make_message(subject="x").replace(
        b"Subject: x", b"Subject: " + b"=?utf-8?q?caf=C3=A9?= " * 100_000)
    start = time.perf_counter()
    parsed = parse_message(RawMessage(data, Origin("s", "f", "p")))
    assert time.perf_counter() - start < 5  # 2.2 MB; uncapped this takes minutes
    assert parsed.subject.startswith("cafécafé") and parsed.subject.endswith("café")


def test_html_over_10_mb_still_gives_text() -> None:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["Subject"] = "a@example.org", "big"
    msg.set_content("<p>Here is the fix you asked for.</p>" + "<p>padding</p>" * 800_000,
                    subtype="html")
    from mailnet.parse import body_text

    assert "Here is the fix you asked for." in body_text(msg)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_store_folder_files_and_exports_are_private(cli, tmp_path: Path) -> None:
    data = tmp_path / "new" / "folder"
    db = data / "mailnet.db"
    eml = Path(__file__).resolve().parents[1] / "src" / "mailnet" / "data" / "sample"
    from click.testing import CliRunner

    from mailnet.cli import main

    old = os.umask(0o022)
    try:
        result = CliRunner().invoke(main, ["--db", str(db), "import", str(eml)])
        assert result.exit_code == 0, result.output
        out = tmp_path / "takers.csv"
        result = CliRunner().invoke(main, ["--db", str(db), "report", "--format", "csv",
                                           "--output", str(out)])
        assert result.exit_code == 0, result.output
    finally:
        os.umask(old)
    assert _mode(data) == 0o700
    assert _mode(out) == 0o600
    for f in data.iterdir():
        assert _mode(f) == 0o600, f


def test_a_store_made_world_readable_is_fixed_on_open(tmp_path: Path) -> None:
    db = tmp_path / "mailnet.db"
    store_module.Store(db).close()
    db.chmod(0o644)
    store_module.Store(db).close()
    assert _mode(db) == 0o600


def test_damaged_store_is_one_line(cli, tmp_path: Path) -> None:
    eml = tmp_path / "a.eml"
    eml.write_bytes(make_message())
    assert cli("import", str(eml)).exit_code == 0
    with sqlite3.connect(cli.db) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(cli.db.read_bytes())
    for page in range(4096, len(data), 4096):
        data[page:page + 64] = b"\xab" * 64
    cli.db.write_bytes(bytes(data))
    result = cli("contacts")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"mailnet: error: the store {cli.db} is damaged (database disk image is malformed): "
        "restore it from a backup, or move it away and import your mail again"]


def test_busy_store_says_who_holds_it(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
    monkeypatch.setattr(store_module, "BUSY_SECONDS", 1.0)
    assert cli("import", str(_eml(tmp_path, "a"))).exit_code == 0
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys, time\n"
         "from mailnet.store import Store\n"
         f"s = Store({str(cli.db)!r}); s.db.execute('BEGIN IMMEDIATE'); print('held', flush=True)\n"
         "sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        result = cli("import", str(_eml(tmp_path, "b")))
    finally:
        holder.communicate("", timeout=30)
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"mailnet: error: the store {cli.db} is busy")
    assert f"(pid {holder.pid})" in line


def _eml(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.eml"
    path.write_bytes(make_message(message_id=f"<{name}@x>", text=f"{name}\n"))
    return path


def test_a_fetched_message_over_the_cap_is_cut_by_the_parser() -> None:
    big = make_message(text="kept\n" + "B" * 76 * (MAX_MESSAGE_BYTES // 60))
    parsed = parse_message(RawMessage(big, Origin("imap", "INBOX", "1")))
    assert parsed.size == len(big) and parsed.new_text.startswith("kept")
    assert "cap" in parsed.note
