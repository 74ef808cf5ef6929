"""Misbehaving IMAP servers: fetch never hangs, never shows a traceback, stays small.

Each class below is a tiny IMAP server on 127.0.0.1 that speaks just enough of
the protocol for `mailnet fetch` and then misbehaves in one way no real server
in the test can be made to (everything a real server does is tested against
Dovecot in test_imap.py). `run_fault` runs the real CLI as its own process
against one of them and checks what must hold for every class: it ends within
a bounded time, without a traceback, with one line and exit 2 or with the
damage recorded in the errors table, and its peak memory stays bounded.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

MEMORY_LIMIT_MB = 500
TIMEOUT = 1  # the account's timeout: seconds a read may wait for the next byte
BOUND = 20  # seconds any fault case may take, start-up of the CLI included

GOOD = (b"From: bob@example.org\r\nTo: alice@example.com\r\nSubject: hi\r\n"
        b"Message-ID: <good-%d@example.org>\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
        b"\r\nCould you send me the report?\r\n")
TEXT_STRUCTURE = b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" %d 2 NIL NIL NIL NIL)'


class FakeImap:
    """An IMAP server with one folder (INBOX) of `uids`, good messages unless overridden.

    Subclasses change one answer; `connections` counts logins (a retry storm shows).
    """

    uids: ClassVar[tuple[int, ...]] = (1, 2, 3)
    capabilities = b"IMAP4rev1 AUTH=PLAIN"

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> FakeImap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.listener.close()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as reader:
            try:
                self.greet(conn)
                while line := reader.readline():
                    tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
                    if not self.answer(conn, tag, rest):
                        return
            except OSError:
                return

    # --- the protocol, as the subclasses may change it -------------------------------

    def greet(self, conn: socket.socket) -> None:
        conn.sendall(b"* OK [CAPABILITY " + self.capabilities + b"] fake ready\r\n")

    def answer(self, conn: socket.socket, tag: bytes, command: bytes) -> bool:
        """Answer one command; False closes the connection."""
        verb = command.split(b" ", 1)[0].upper()
        if command.upper().startswith(b"UID FETCH"):
            return self.fetch(conn, tag, command)
        body = {
            b"CAPABILITY": b"* CAPABILITY " + self.capabilities + b"\r\n",
            b"LOGIN": b"",
            b"LIST": b'* LIST (\\HasNoChildren) "/" INBOX\r\n',
            b"STATUS": self.status(),
            b"EXAMINE": b"* 3 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n",
            b"SELECT": b"* 3 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n",
            b"LOGOUT": b"* BYE bye\r\n",
        }.get(verb)
        if command.upper().startswith(b"UID SEARCH"):
            body = b"* SEARCH " + b" ".join(b"%d" % u for u in self.uids) + b"\r\n"
        if body is None:
            conn.sendall(tag + b" BAD unknown\r\n")
            return True
        conn.sendall(body + tag + b" OK done\r\n")
        return verb != b"LOGOUT"

    def status(self) -> bytes:
        return b"* STATUS INBOX (UIDNEXT %d UIDVALIDITY 7)\r\n" % (max(self.uids) + 1)

    def fetch(self, conn: socket.socket, tag: bytes, command: bytes) -> bool:
        uids = self._uid_set(command.split(b" ")[2])
        out = []
        for n, uid in enumerate(uids, 1):
            if b"BODYSTRUCTURE" in command:
                out.append(self.structure(n, uid))
            else:
                out.append(self.body(n, uid))
        conn.sendall(b"".join(out) + tag + b" OK done\r\n")
        return True

    def structure(self, n: int, uid: int) -> bytes:
        size = len(GOOD % uid)
        return (b"* %d FETCH (UID %d RFC822.SIZE %d BODYSTRUCTURE " % (n, uid, size)
                + TEXT_STRUCTURE % size + b")\r\n")

    def body(self, n: int, uid: int) -> bytes:
        data = GOOD % uid
        return b"* %d FETCH (UID %d BODY[] {%d}\r\n%s)\r\n" % (n, uid, len(data), data)

    def _uid_set(self, text: bytes) -> list[int]:
        wanted: set[int] = set()
        for piece in text.split(b","):
            low, _, high = piece.partition(b":")
            wanted.update(range(int(low), int(high or low) + 1))
        return [u for u in self.uids if u in wanted]


class HugeLiteral(FakeImap):
    """Announces a 3 GiB literal for message 2 and starts sending it."""

    def body(self, n: int, uid: int) -> bytes:
        if uid == 2:
            return b"* %d FETCH (UID 2 BODY[] {3221225472}\r\n" % n + b"x" * 65536
        return super().body(n, uid)


class Trickle(FakeImap):
    """Sends the STATUS answer one byte every 0.2 s: each read gets a byte, none times out."""

    def answer(self, conn: socket.socket, tag: bytes, command: bytes) -> bool:
        if command.upper().startswith(b"STATUS"):
            for byte in self.status() * 100:
                if self.stopped.is_set():
                    return False
                conn.sendall(bytes([byte]))
                time.sleep(0.2)
            return False
        return super().answer(conn, tag, command)


class StartTlsNo(FakeImap):
    capabilities = b"IMAP4rev1 STARTTLS AUTH=PLAIN"

    def answer(self, conn: socket.socket, tag: bytes, command: bytes) -> bool:
        if command.upper() == b"STARTTLS":
            conn.sendall(tag + b" NO not today\r\n")
            return True
        return super().answer(conn, tag, command)


class LongLine(FakeImap):
    """Answers LIST with a 10 MB line."""

    def answer(self, conn: socket.socket, tag: bytes, command: bytes) -> bool:
        if command.upper().startswith(b"LIST"):
            conn.sendall(b'* LIST () "/" ' + b"x" * 10_000_000 + b"\r\n" + tag + b" OK done\r\n")
            return True
        return super().answer(conn, tag, command)


class LongLineInFetch(FakeImap):
    """Message 2's FETCH answer is a 10 MB line."""

    def body(self, n: int, uid: int) -> bytes:
        if uid == 2:
            return b"* %d FETCH (UID 2 X-JUNK " % n + b"x" * 10_000_000 + b")\r\n"
        return super().body(n, uid)


class DeepStructure(FakeImap):
    """Message 2's BODYSTRUCTURE is nested 5,000 multiparts deep."""

    def structure(self, n: int, uid: int) -> bytes:
        if uid == 2:
            deep = b"(" * 5000 + TEXT_STRUCTURE % 10 + b' "MIXED")' * 5000
            return b"* %d FETCH (UID 2 RFC822.SIZE 10 BODYSTRUCTURE %s)\r\n" % (n, deep)
        return super().structure(n, uid)


class HugeUidNext(FakeImap):
    def status(self) -> bytes:
        return b"* STATUS INBOX (UIDNEXT 99999999999999999999999 UIDVALIDITY 7)\r\n"


class HugeUidInSearch(FakeImap):
    """SEARCH also finds a UID far beyond 32 bits: it is ignored."""

    def answer(self, conn: socket.socket, tag: bytes, command: bytes) -> bool:
        if command.upper().startswith(b"UID SEARCH"):
            conn.sendall(b"* SEARCH 1 2 3 99999999999999999999999\r\n" + tag + b" OK done\r\n")
            return True
        return super().answer(conn, tag, command)


class RefusesOne(FakeImap):
    """FETCH of a set that holds message 2 is answered NO."""

    def fetch(self, conn: socket.socket, tag: bytes, command: bytes) -> bool:
        if b"BODYSTRUCTURE" not in command and 2 in self._uid_set(command.split(b" ")[2]):
            conn.sendall(tag + b" NO [SERVERBUG] cannot read message 2\r\n")
            return True
        return super().fetch(conn, tag, command)


@dataclass
class Outcome:
    code: int
    stderr: str
    stdout: str
    seconds: float
    memory_mb: float
    stored: list[str]
    errors: list[str]
    connections: int


def run_fault(server_class: type[FakeImap], tmp_path: Path) -> Outcome:
    """`mailnet fetch` against one misbehaving server, with the checks every class must pass."""
    config = tmp_path / "config.toml"
    config.write_text(f'[accounts.fake]\nhost = "127.0.0.1"\nport = {{port}}\ntls = "{{tls}}"\n'
                      f'username = "alice"\npassword_env = "FAKE_PW"\ntimeout = {TIMEOUT}\n')
    db = tmp_path / "m.db"
    with server_class() as server:
        tls = "starttls" if b"STARTTLS" in server.capabilities else "plain"
        config.write_text(config.read_text().format(port=server.port, tls=tls))
        env = {**os.environ, "FAKE_PW": "pw", "PYTHONPATH": os.pathsep.join(sys.path)}
        started = time.monotonic()
        code, out, err, memory = _run([sys.executable, "-m", "mailnet", "--config", str(config),
                                       "--db", str(db), "fetch", "--workers", "1"], env,
                                      server_class.__name__)
        seconds = time.monotonic() - started
        connections = server.connections
    stored, errors = [], []
    if db.exists():
        with sqlite3.connect(db) as conn:
            stored = sorted(r[0] for r in conn.execute("SELECT message_id FROM messages"))
            errors = [r[0] for r in conn.execute("SELECT reason FROM errors")]
    outcome = Outcome(code, err, out, seconds, memory, stored, errors, connections)
    assert "Traceback" not in err + out, err
    assert seconds < BOUND, f"{server_class.__name__} took {seconds:.1f} s"
    assert memory < MEMORY_LIMIT_MB, f"{server_class.__name__}: {memory:.0f} MB"
    if outcome.code == 2:
        assert len(err.strip().splitlines()) == 1, err
    else:
        assert outcome.code == 0, (outcome.code, err)
    return outcome


# Runs argv[2:] and writes its peak memory (KB) to argv[1]. A child started straight from
# pytest would report pytest's own peak: Linux's ru_maxrss keeps the peak of the image a
# process had before exec, and a vforked child's is its parent's.
_MEASURED = ("import resource, subprocess, sys\n"
             "code = subprocess.call(sys.argv[2:])\n"
             "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
             "open(sys.argv[1], 'w').write(str(peak))\n"
             "sys.exit(code)\n")


def _run(command: list[str], env: dict[str, str], name: str) -> tuple[int, str, str, float]:
    """Exit code, stdout, stderr and peak memory (MB) of `command`, killed after 3 × BOUND."""
    with tempfile.TemporaryDirectory() as tmp:
        peak = Path(tmp) / "peak"
        proc = subprocess.Popen([sys.executable, "-c", _MEASURED, str(peak), *command],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                start_new_session=True)
        try:
            raw_out, raw_err = proc.communicate(timeout=BOUND * 3)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raw_out, raw_err = proc.communicate()
        out, err = raw_out.decode(errors="replace"), raw_err.decode(errors="replace")
        if proc.returncode < 0 or not peak.exists():
            pytest.fail(f"{name}: fetch hung and was killed; stderr: {err[-500:]}")
        return proc.returncode, out, err, int(peak.read_text()) / 1024


def the_others_stored(outcome: Outcome) -> None:
    assert outcome.stored == ["good-1@example.org", "good-3@example.org"], outcome


# --- the classes -------------------------------------------------------------------------
def test_a_huge_literal_is_refused_recorded_and_not_retried(tmp_path):
    outcome = run_fault(HugeLiteral, tmp_path)
    the_others_stored(outcome)
    (reason,) = outcome.errors
    assert "3,221,225,472-byte literal" in reason
    # Never retried as a drop: each refusal halves the set down to message 2 and costs one
    # new connection (3 UIDs: 1:3, then 2:3, then 2), not a re-download of 3 GiB.
    assert outcome.connections <= 4


def test_a_trickling_server_times_out_in_bounded_time(tmp_path):
    outcome = run_fault(Trickle, tmp_path)
    assert outcome.code == 2 and "too slowly" in outcome.stderr
    assert outcome.connections == 1  # a stall is not retried


def test_starttls_answered_no_is_one_line(tmp_path):
    outcome = run_fault(StartTlsNo, tmp_path)
    assert outcome.code == 2 and "refused STARTTLS" in outcome.stderr


def test_a_10_mb_response_line_is_one_line(tmp_path):
    outcome = run_fault(LongLine, tmp_path)
    assert outcome.code == 2 and "response line over" in outcome.stderr


def test_a_10_mb_line_in_one_message_is_recorded_and_the_rest_stored(tmp_path):
    outcome = run_fault(LongLineInFetch, tmp_path)
    the_others_stored(outcome)
    assert len(outcome.errors) == 1 and "response line over" in outcome.errors[0]


def test_a_deep_bodystructure_is_recorded_and_the_rest_stored(tmp_path):
    outcome = run_fault(DeepStructure, tmp_path)
    the_others_stored(outcome)
    assert len(outcome.errors) == 1 and "nested deeper" in outcome.errors[0]


def test_a_huge_uidnext_is_one_line(tmp_path):
    outcome = run_fault(HugeUidNext, tmp_path)
    assert outcome.code == 2 and "invalid UIDNEXT" in outcome.stderr


def test_a_huge_uid_in_search_is_ignored(tmp_path):
    outcome = run_fault(HugeUidInSearch, tmp_path)
    assert outcome.code == 0 and not outcome.errors
    assert outcome.stored == ["good-1@example.org", "good-2@example.org", "good-3@example.org"]


def test_a_message_the_server_refuses_is_recorded_and_the_rest_stored(tmp_path):
    outcome = run_fault(RefusesOne, tmp_path)
    the_others_stored(outcome)
    assert len(outcome.errors) == 1 and "SERVERBUG" in outcome.errors[0]
