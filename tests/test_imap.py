"""The IMAP fetcher against a real Dovecot server on 127.0.0.1 (see tests/dovecot.py)."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from email.message import EmailMessage
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner
from imapclient import IMAPClient

from dovecot import DOVECOT, PASSWORD, USER, Dovecot, free_port, temporary_dovecot
from mailnet import imap, imap_connect
from mailnet.cli import main
from mailnet.config import ConfigError, load_config
from mailnet.imap_structure import Part, parse_fetch, rebuild, text_sections
from mailnet.parse import parse_message
from mailnet.sources import Origin, RawMessage
from mailnet.store import Store

from conftest import ctrl_c

needs_dovecot = pytest.mark.skipif(DOVECOT is None, reason="dovecot binary not installed "
                                   "(Debian package dovecot-imapd)")
ATTACHMENT = 3_000_000  # bytes of the attachment that must never be downloaded


def message(n: int, *, sender: str = "bob@example.org", to: str = "alice@example.com",
            kind: str = "plain") -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"] = sender, to
    msg["Subject"] = f"Message {n} ünïcode"
    msg["Message-ID"] = f"<msg{n}@example.org>"
    msg["Date"] = f"Mon, {1 + n % 28:02d} Jan 2024 10:00:00 +0000"
    msg.set_content(f"Hello number {n}.\nCould you send me the report?\n" + "text line\n" * 40)
    if kind == "html":
        msg.add_alternative(f"<p>Hello number {n}.</p>", subtype="html")
    if kind == "attachment":
        msg.add_attachment(os.urandom(ATTACHMENT), maintype="application", subtype="octet-stream",
                           filename="big.bin")
    return bytes(msg).replace(b"\n", b"\r\n")


FLAGS = ("S", "", "FS", "RS", "S", "")


@pytest.fixture
def server():
    """A fresh Dovecot with 30 INBOX messages (one with a 3 MB attachment) and 6 sent ones."""
    with temporary_dovecot() as dc:
        kinds = ("plain", "html", "plain")
        for n in range(30):
            kind = "attachment" if n == 7 else kinds[n % 3]
            dc.deliver("INBOX", message(n, kind=kind), flags=FLAGS[n % len(FLAGS)])
        for n in range(100, 106):
            dc.deliver("Sent", message(n, sender="alice@example.com", to="carol@example.net"),
                       flags="S")
        dc.deliver("Trash", message(200), flags="S")
        dc.deliver("Junk", message(201))
        yield dc.start()


def write_config(tmp_path: Path, port: int, **extra: object) -> Path:
    lines = ["[accounts.test]", 'host = "127.0.0.1"', f"port = {port}", 'tls = "plain"',
             f'username = "{USER}"', 'password_env = "MAILNET_TEST_PW"']
    for key, value in extra.items():  # None drops the key
        lines = [line for line in lines if not line.startswith(f"{key} =")]
        if value is not None:
            lines.append(f"{key} = {value}")
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(tmp_path: Path, config: Path, *args: str, password: str = PASSWORD,
        workers: str = "1", verbose: bool = False):
    env = {"MAILNET_TEST_PW": password}
    return CliRunner().invoke(
        main, ["--config", str(config), "--db", str(tmp_path / "m.db"), *(["-vv"] * verbose),
               "fetch", "--workers", workers, *args], env=env)


def stored(db: Path) -> list[tuple[str, ...]]:
    with Store(db) as store:
        return sorted(store.db.execute(
            "SELECT message_id, content_hash, folder, position, new_text FROM messages"))


def all_flags(dc: Dovecot) -> dict[tuple[str, int], tuple[bytes, ...]]:
    """Every message's flags, read with EXAMINE so reading them changes nothing."""
    with IMAPClient("127.0.0.1", dc.imap_port, ssl=False) as c:
        c.login(USER, PASSWORD)
        flags = {}
        for _, _, folder in c.list_folders():
            c.select_folder(folder, readonly=True)
            uids = c.search("ALL")
            for uid, data in c.fetch(uids, ["FLAGS"]).items():
                flags[folder, uid] = tuple(sorted(data[b"FLAGS"]))
        return flags


@needs_dovecot
def test_fetch_inbox_and_sent_then_nothing_then_only_new(server, tmp_path):
    config = write_config(tmp_path, server.imap_port)
    before = all_flags(server)
    assert len(before) == 38

    result = run(tmp_path, config, workers="2")
    assert result.exit_code == 0, result.output
    assert "fetched 36 new messages (INBOX 30, Sent 6)" in result.stdout
    rows = stored(tmp_path / "m.db")
    assert len(rows) == 36
    assert {r[2] for r in rows} == {"INBOX", "Sent"}  # never Trash or Junk
    assert sum(r[2] == "Sent" for r in rows) == 6
    assert all(":" in r[3] for r in rows)  # position = "uidvalidity:uid"
    assert all("Could you send me the report?" in r[4] for r in rows)
    assert all_flags(server) == before

    again = run(tmp_path, config)
    assert again.exit_code == 0, again.output
    assert "fetched 0 new messages" in again.stdout
    assert stored(tmp_path / "m.db") == rows

    server.deliver("INBOX", message(50), flags="S")
    server.deliver("INBOX", message(51))
    before = all_flags(server)
    third = run(tmp_path, config)
    assert "fetched 2 new messages (INBOX 2, Sent 0)" in third.stdout
    new = set(stored(tmp_path / "m.db")) - set(rows)
    assert {r[0] for r in new} == {"msg50@example.org", "msg51@example.org"}
    assert all_flags(server) == before


@needs_dovecot
def test_a_localised_sent_folder_is_sent_mail_by_its_role(tmp_path):
    """Found through \\Sent and remembered as such, so its sender is me whatever its name."""
    with temporary_dovecot(sent="Gesendete Objekte") as dc:
        dc.deliver("INBOX", message(1))
        for n in (2, 3):
            dc.deliver("Gesendete Objekte", message(n, sender="alice@example.com",
                                                    to="carol@example.net"))
        config = write_config(tmp_path, dc.start().imap_port)
        result = run(tmp_path, config)
        assert result.exit_code == 0, result.output
        assert "(INBOX 1, Gesendete Objekte 2)" in result.stdout
    listing = CliRunner().invoke(main, ["--config", str(config), "--db", str(tmp_path / "m.db"),
                                        "contacts", "--format", "json"])
    assert listing.exit_code == 0, listing.output
    counts = {c["contact"]: (c["from_them"], c["to_them"]) for c in json.loads(listing.stdout)}
    assert counts == {"bob@example.org": (1, 0), "carol@example.net": (0, 2)}


@needs_dovecot
def test_attachment_is_not_downloaded_and_text_is_kept(server, tmp_path):
    config = load_config(write_config(tmp_path, server.imap_port, folders='["INBOX"]'))
    os.environ["MAILNET_TEST_PW"] = PASSWORD
    try:
        with Store(tmp_path / "m.db") as store:
            summary = imap.fetch_account(store, config.accounts["test"], workers=1)
            body = store.db.execute("SELECT new_text, size FROM messages WHERE message_id = ?",
                                    ("msg7@example.org",)).fetchone()
    finally:
        del os.environ["MAILNET_TEST_PW"]
    assert summary.fetched == 30
    assert summary.bytes < ATTACHMENT / 10  # 30 messages of text, no attachment
    assert "Hello number 7." in body[0]
    assert body[1] < 10_000


@needs_dovecot
def test_only_read_only_commands_are_sent(server, tmp_path):
    with Proxy(server.imap_port) as proxy:
        result = run(tmp_path, write_config(tmp_path, proxy.port))
    assert result.exit_code == 0, result.output
    commands = [line.split()[1:3] for line in proxy.client_lines() if len(line.split()) > 1]
    verbs = {" ".join(c).upper() if c[0].upper() == "UID" else c[0].upper() for c in commands}
    assert verbs <= {"CAPABILITY", "LOGIN", "LIST", "STATUS", "EXAMINE", "UID SEARCH",
                     "UID FETCH", "LOGOUT"}, verbs
    fetches = [line for line in proxy.client_lines() if "UID FETCH" in line.upper()]
    assert fetches and all("BODY[" not in f.upper() for f in fetches)  # BODY.PEEK only


@needs_dovecot
def test_uidvalidity_change_rescans_without_duplicates_or_loss(server, tmp_path):
    config = write_config(tmp_path, server.imap_port)
    assert run(tmp_path, config).exit_code == 0
    rows = stored(tmp_path / "m.db")
    with Store(tmp_path / "m.db") as store:
        old_validity = store.imap_state("test", "Sent")[0]

    server.remove_folder("Sent")  # recreated: new UIDVALIDITY, same mail plus one
    for n in range(100, 106):
        server.deliver("Sent", message(n, sender="alice@example.com", to="carol@example.net"),
                       flags="S")
    server.deliver("Sent", message(107, sender="alice@example.com"), flags="S")
    before = all_flags(server)
    result = run(tmp_path, config)
    assert result.exit_code == 0, result.output
    assert "Sent 7" in result.stdout and "duplicates 6" in result.stdout
    after = stored(tmp_path / "m.db")
    assert set(rows) <= set(after)  # nothing lost
    assert len(after) == len(rows) + 1  # nothing twice
    with Store(tmp_path / "m.db") as store:
        assert store.imap_state("test", "Sent")[0] != old_validity
    assert all_flags(server) == before


@pytest.fixture
def reference(server, tmp_path) -> list[tuple[str, ...]]:
    """The store an uninterrupted fetch gives."""
    reference = tmp_path / "reference"
    reference.mkdir()
    assert run(reference, write_config(reference, server.imap_port)).exit_code == 0
    return stored(reference / "m.db")


@pytest.fixture
def small_tasks(monkeypatch) -> None:
    """Many small requests, so a cut lands mid-fetch; quick retries."""
    monkeypatch.setattr(imap, "BACKOFF", 0.01)
    monkeypatch.setattr(imap, "META_BATCH", 8)
    monkeypatch.setattr(imap, "FETCH_BYTES", 6_000)


@needs_dovecot
def test_dropped_connection_reconnects_and_completes(server, tmp_path, reference,
                                                     small_tasks):
    with Proxy(server.imap_port, cut_after=40_000) as proxy:
        result = run(tmp_path, write_config(tmp_path, proxy.port))
    assert result.exit_code == 0, result.output
    assert proxy.cut == 1 and "reconnected 1×" in result.stdout
    assert stored(tmp_path / "m.db") == reference


@needs_dovecot
def test_interrupt_keeps_committed_batches_and_a_rerun_completes(server, tmp_path, reference,
                                                                 small_tasks):
    account = load_config(write_config(tmp_path, server.imap_port)).accounts["test"]
    seen: list[int] = []

    def ctrl_c_after_first_batch(folders: list[imap.FolderProgress]) -> None:
        seen.append(sum(f.done for f in folders))
        if seen[-1]:  # the callback runs after each commit: this is Ctrl-C there
            raise KeyboardInterrupt

    os.environ["MAILNET_TEST_PW"] = PASSWORD
    try:
        with Store(tmp_path / "m.db") as store:
            with pytest.raises(KeyboardInterrupt):
                imap.fetch_account(store, account, workers=2, on_progress=ctrl_c_after_first_batch)
            assert store.count() == seen[-1] == 8  # one task's batch, committed
            assert store.imap_state("test", "INBOX")[1] == 8  # its highest UID, no further
            imap.fetch_account(store, account, workers=2)
    finally:
        del os.environ["MAILNET_TEST_PW"]
    assert stored(tmp_path / "m.db") == reference


@needs_dovecot
@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_stops_a_fetch_stuck_on_a_dead_link_at_once(server, tmp_path, workers):
    """The link goes silent mid-fetch; Ctrl-C ends the run without waiting out the 30 s
    timeout, neither in a read nor in a LOGOUT nobody will answer."""
    with Proxy(server.imap_port, cut_after=8_000, once=False, stall=True) as proxy:
        config = write_config(tmp_path, proxy.port, timeout=30)
        command = [sys.executable, "-m", "mailnet", "--config", str(config), "--db",
                   str(tmp_path / "m.db"), "fetch", "--workers", workers]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, "MAILNET_TEST_PW": PASSWORD})
        assert proxy.stalled.wait(30)
        time.sleep(0.5)  # every worker is waiting on the silent link now
        assert ctrl_c(proc) < 5


@needs_dovecot
@pytest.mark.parametrize("workers", ["1", "2"])
def test_network_down_gives_one_line_and_a_rerun_completes_the_store(
        server, tmp_path, reference, small_tasks, workers):
    with Proxy(server.imap_port, cut_after=40_000, once=False) as proxy:
        result = run(tmp_path, write_config(tmp_path, proxy.port), workers=workers)
    assert result.exit_code == 2
    assert "run mailnet fetch again to resume" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    partial = stored(tmp_path / "m.db")
    assert 0 < len(partial) < 36
    result = run(tmp_path, write_config(tmp_path, server.imap_port), workers=workers)
    assert result.exit_code == 0, result.output
    assert stored(tmp_path / "m.db") == reference


@needs_dovecot
def test_wrong_password_is_one_line_without_the_password(server, tmp_path):
    wrong = "wrong-Secret-4711"
    result = run(tmp_path, write_config(tmp_path, server.imap_port), password=wrong,
                 verbose=True)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "login as alice on 127.0.0.1 failed" in lines[0]
    assert "password_env MAILNET_TEST_PW" in lines[0]
    assert wrong not in result.output and "Traceback" not in result.output


GOOD_TOKEN = "ya29.test-access-token"


class Introspection(http.server.BaseHTTPRequestHandler):
    """An OAuth2 authorisation server's token introspection (RFC 7662): one valid token."""

    seen: ClassVar[list[str]] = []  # the tokens Dovecot asked about

    def do_POST(self) -> None:  # the name http.server calls
        length = int(self.headers["Content-Length"])
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        Introspection.seen += form.get("token", [])
        active = form.get("token") == [GOOD_TOKEN]
        body = json.dumps({"active": "true", "username": USER} if active else
                          {"active": "false"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def oauth2_server():
    """A Dovecot that takes XOAUTH2 logins, checking tokens with a local introspection server."""
    Introspection.seen.clear()
    web = http.server.HTTPServer(("127.0.0.1", 0), Introspection)
    # A wake-up with nothing to accept (seen once in a full run, after Dovecot
    # stopped) must not block serve_forever, and so shutdown(), for ever.
    web.socket.settimeout(1.0)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{web.server_port}/introspect"
    with temporary_dovecot(oauth2_introspection=url) as dc:
        for n in range(3):
            dc.deliver("INBOX", message(n))
        yield dc.start()
    web.shutdown()


@needs_dovecot
def test_oauth2_token_command_logs_in_with_xoauth2(oauth2_server, tmp_path):
    good = write_config(tmp_path, oauth2_server.imap_port, folders='["INBOX"]',
                        password_env=None, oauth2_token_command=f"'printf {GOOD_TOKEN}'")
    result = run(tmp_path, good)
    assert result.exit_code == 0, result.output
    assert "fetched 3 new messages" in result.stdout
    assert Introspection.seen == [GOOD_TOKEN]  # the server checked it: an XOAUTH2 login

    bad = write_config(tmp_path, oauth2_server.imap_port, folders='["INBOX"]',
                       password_env=None, oauth2_token_command="'printf expired-token-123'")
    result = run(tmp_path, bad, verbose=True)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "login as alice on 127.0.0.1 failed" in lines[0]
    assert "oauth2_token_command" in lines[0]
    assert "expired-token-123" not in result.output


@needs_dovecot
def test_self_signed_certificate_needs_its_ca_file(server, tmp_path):
    config = write_config(tmp_path, server.imaps_port, tls='"implicit"')
    result = run(tmp_path, config)
    assert result.exit_code == 2
    assert "not trusted" in result.stderr and "ca_file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

    config = write_config(tmp_path, server.imaps_port, tls='"implicit"',
                          ca_file=f'"{server.ca_file}"')
    result = run(tmp_path, config)
    assert result.exit_code == 0, result.output
    assert "fetched 36 new messages" in result.stdout

    starttls = write_config(tmp_path / "..", server.imap_port, tls='"starttls"',
                            ca_file=f'"{server.ca_file}"')
    result = run(tmp_path, starttls)
    assert result.exit_code == 0 and "fetched 0 new messages" in result.stdout


@needs_dovecot
def test_missing_folder_and_refused_connection_name_the_fix(server, tmp_path):
    result = run(tmp_path, write_config(tmp_path, server.imap_port), "--folder", "Archive")
    assert result.exit_code == 2
    assert "no folder 'Archive'" in result.stderr and "folders there:" in result.stderr

    result = run(tmp_path, write_config(tmp_path, free_port()))
    assert result.exit_code == 2 and "refused" in result.stderr and "port" in result.stderr

    result = run(tmp_path, write_config(tmp_path, server.imap_port), "--folder", "\\Sent")
    assert result.exit_code == 0 and "(Sent 6)" in result.stdout


def test_config_validates_accounts(tmp_path):
    def load(body: str):
        path = tmp_path / "c.toml"
        path.write_text("[accounts.a]\n" + body)
        return load_config(path).accounts["a"]

    acct = load('host = "imap.example.com"\nusername = "me"\npassword_command = "pass x"\n'
                'folders = ["\\\\sent", "Work/Clients"]\n')
    assert (acct.port, acct.tls, acct.folders) == (993, "implicit", ("\\Sent", "Work/Clients"))
    with pytest.raises(ConfigError, match="only for a loopback host"):
        load('host = "imap.example.com"\nusername = "me"\ntls = "plain"\npassword_env = "X"\n')
    assert load('host = "::1"\nusername = "me"\ntls = "plain"\npassword_env = "X"\n').port == 143
    with pytest.raises(ConfigError, match="exactly one of"):
        load('host = "h"\nusername = "me"\npassword_env = "X"\npassword_command = "y"\n')
    with pytest.raises(ConfigError, match="unknown key 'pasword_env'"):
        load('host = "h"\nusername = "me"\npasword_env = "X"\n')
    with pytest.raises(ConfigError, match="unknown folder role"):
        load('host = "h"\nusername = "me"\npassword_env = "X"\nfolders = ["\\\\Trsh"]\n')


def test_secret_sources_never_show_the_secret(tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text('[accounts.a]\nhost = "h"\nusername = "me"\n'
                    'password_command = "echo top-secret; exit 3"\n')
    with pytest.raises(imap_connect.ImapAuthError) as failed:
        imap_connect.credential(load_config(path).accounts["a"])
    assert "exit code 3" in str(failed.value) and "top-secret" not in str(failed.value)
    path.write_text('[accounts.a]\nhost = "h"\nusername = "me"\n'
                    'oauth2_token_command = "printf \'tok-123\\\\nignored\'"\n')
    cred = imap_connect.credential(load_config(path).accounts["a"])
    assert (cred.secret, cred.oauth2) == ("tok-123", True)
    assert "tok-123" not in repr(cred)
    monkeypatch.setattr(imap_connect.keyring, "get_password",
                        lambda service, name: "kr-pw" if (service, name) == ("mailnet", "a")
                        else None)
    path.write_text('[accounts.a]\nhost = "h"\nusername = "me"\npassword_keyring = true\n')
    assert imap_connect.credential(load_config(path).accounts["a"]).secret == "kr-pw"


def test_uid_sets_are_ranges():
    assert imap.uid_ranges([5, 1, 2, 3, 9, 10, 7]) == "1:3,5,7,9:10"
    assert len(imap.uid_ranges(range(1, 100_001))) == len("1:100000")


def test_text_parts_are_selected_and_rebuilt():
    raw = message(1, kind="attachment")
    structure = [[[b"TEXT", b"PLAIN", [b"CHARSET", b"utf-8"], None, None, b"7BIT", 120, 3,
                   None, None, None, None],
                  [b"APPLICATION", b"OCTET-STREAM", [b"NAME", b"big.bin"], None, None,
                   b"BASE64", 4000, None, [b"ATTACHMENT", [b"FILENAME", b"big.bin"]], None,
                   None],
                  b"MIXED", [b"BOUNDARY", b"XyZ"], None, None]]
    part = Part.from_structure(structure[0])
    assert text_sections(part) == ["1.MIME", "1"]
    header = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    text = b"Content-Type: text/plain; charset=utf-8\r\n\r\nHello.\r\n"
    one = rebuild(header, [text])  # the one text part becomes the body
    assert b"multipart" not in one and one.endswith(b"\r\n" + text)
    assert one.count(b"Content-Type:") == 1
    footer = b"Content-Type: text/plain\r\n\r\n--\r\nlist footer\r\n"
    two = rebuild(header, [text, footer])  # several: flat, under a boundary of their own
    assert parse_message(RawMessage(two, Origin("t", "f", "1"))).new_text == "Hello."
    clash = text.replace(b"Hello.", b"--=_mailnet_text_parts")  # a line that is the boundary
    assert b'boundary="=_mailnet_text_parts_"' in rebuild(header, [clash, footer])
    parsed = parse_fetch([(b'1 (UID 7 BODY[1] {5}', b"Hi\r\n!"), b' FLAGS (\\Seen "a \\"q\\"")'
                          b" BODYSTRUCTURE (NIL))"])
    assert parsed == {7: {b"UID": 7, b"BODY[1]": b"Hi\r\n!", b"FLAGS": [b"\\Seen", b'a "q"'],
                          b"BODYSTRUCTURE": [None]}}


class Proxy:
    """A TCP proxy to the server that records what the client sends and can cut connections.

    `cut_after` bytes from the server: with `once`, the first connection is
    cut there and later ones pass; without, the network is down from then on
    (every connection is cut once the server has sent that many in total).
    With `stall`, a connection is not cut but goes silent and stays open,
    as over a dead link; `stalled` is set when the first one does.
    """

    def __init__(self, upstream: int, cut_after: int | None = None, once: bool = True,
                 stall: bool = False) -> None:
        self.upstream = upstream
        self.cut_after = cut_after
        self.once = once
        self.stall = stall
        self.stalled = threading.Event()
        self.closed = threading.Event()
        self.cut = 0
        self.received = 0  # from the server, all connections
        self.sent = bytearray()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()

    def __enter__(self) -> Proxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed.set()
        self.listener.close()

    def client_lines(self) -> list[str]:
        return self.sent.decode("latin-1").splitlines()

    def _accept(self) -> None:
        first = True
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            cutting = self.cut_after is not None and (first or not self.once)
            first = False
            threading.Thread(target=self._pump, args=(client, server, False, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, cutting, False),
                             daemon=True).start()

    def _over(self, n: int) -> bool:
        with self.lock:
            self.received += n
            over = self.received > self.cut_after
            self.cut += over
            return over

    def _pump(self, src: socket.socket, dst: socket.socket, cutting: bool,
              record: bool) -> None:
        if cutting and self.once:
            self.received = 0  # the budget is this connection's
        try:
            while data := src.recv(4096):
                if cutting and self._over(len(data)):
                    if self.stall:
                        self.stalled.set()
                        self.closed.wait()
                    break
                if record:
                    with self.lock:
                        self.sent += data
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


def many_parts(n: int, parts: int) -> bytes:
    """A message whose body is `parts` small text/plain parts (a digest, a broken mailer)."""
    msg = EmailMessage()
    msg["From"], msg["To"] = "bob@example.org", "alice@example.com"
    msg["Subject"], msg["Message-ID"] = "Many parts", f"<msg{n}@example.org>"
    msg["Date"] = "Mon, 01 Jan 2024 10:00:00 +0000"
    msg.make_mixed()
    for i in range(parts):
        part = EmailMessage()
        part.set_content(f"part number {i}\n")
        msg.attach(part)
    return bytes(msg).replace(b"\n", b"\r\n")


@pytest.fixture
def many_parts_server():
    """INBOX: a message, one with 2,000 text parts, another message; Sent: one message."""
    with temporary_dovecot() as dc:
        dc.deliver("INBOX", message(1))
        dc.deliver("INBOX", many_parts(2, 2000))
        dc.deliver("INBOX", message(3))
        dc.deliver("Sent", message(100, sender="alice@example.com", to="bob@example.org"))
        yield dc.start()


@needs_dovecot
def test_a_message_with_2000_text_parts_is_fetched_in_bounded_commands(many_parts_server,
                                                                       tmp_path):
    result = run(tmp_path, write_config(tmp_path, many_parts_server.imap_port))
    assert result.exit_code == 0, result.output
    rows = {r[0]: r for r in stored(tmp_path / "m.db")}
    assert set(rows) == {"msg1@example.org", "msg2@example.org", "msg3@example.org",
                         "msg100@example.org"}
    assert "part number 0" in rows["msg2@example.org"][4]
    assert "errors 0" in result.output


@needs_dovecot
def test_a_message_the_server_refuses_is_recorded_and_the_folder_goes_on(
        many_parts_server, tmp_path, monkeypatch):
    # All 4,000 sections in one command: Dovecot answers BAD (command line too large).
    monkeypatch.setattr(imap, "SECTIONS_PER_COMMAND", 10_000)
    result = run(tmp_path, write_config(tmp_path, many_parts_server.imap_port))
    assert result.exit_code == 0, result.output
    assert {r[0] for r in stored(tmp_path / "m.db")} == {
        "msg1@example.org", "msg3@example.org", "msg100@example.org"}
    with Store(tmp_path / "m.db") as store:
        (error,) = store.errors()
    assert error[:2] == ("test", "INBOX")
    assert "not fetched" in error[3] and "FETCH" in error[3]
    assert "errors 1" in result.output


NON_ASCII = "pässwörd-ñ✓"


@needs_dovecot
def test_a_non_ascii_password_logs_in_and_never_shows_in_an_error(tmp_path):
    with temporary_dovecot(password=NON_ASCII) as dc:
        dc.deliver("INBOX", message(1))
        dc.start()
        config = write_config(tmp_path, dc.imap_port)
        result = run(tmp_path, config, password=NON_ASCII)
        assert result.exit_code == 0, result.output
        assert [r[0] for r in stored(tmp_path / "m.db")] == ["msg1@example.org"]
        wrong = "wröng-päss"
        result = run(tmp_path, config, password=wrong, verbose=True)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "login as alice on 127.0.0.1 failed" in lines[0]
    assert not set("öä") & set(result.output) and "Traceback" not in result.output
