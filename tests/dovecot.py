"""A real Dovecot IMAP server for tests: own config, own maildir, own port, own pid.

Nothing here touches the system's Dovecot: the server runs from a config and
a mail directory generated under a temporary directory, listens on 127.0.0.1
only, and is stopped through the pid of the process this module started.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

DOVECOT = shutil.which("dovecot") or (
    "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
)
USER = "alice"
PASSWORD = "s3cret-Passw0rd"  # a test account on a throwaway server

_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
instance_name = mailnet-test-{imap_port}
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/server.pem
ssl_key = <{root}/server.key
disable_plaintext_auth = no
auth_mechanisms = plain login{oauth2_mechanisms}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 0
first_valid_gid = 0
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
{oauth2_passdb}userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox "{sent}" {{
    special_use = \\Sent
  }}
  mailbox Drafts {{
    special_use = \\Drafts
  }}
  mailbox Trash {{
    special_use = \\Trash
  }}
  mailbox Junk {{
    special_use = \\Junk
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service imap-login {{
  chroot =
}}
service anvil {{
  chroot =
}}
"""


# OAuth2 tokens are checked by POSTing them to an introspection URL (RFC 7662).
_OAUTH2_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/oauth2.conf.ext
}}
"""
_OAUTH2_CONF = """\
introspection_mode = post
introspection_url = {url}
username_attribute = username
active_attribute = active
active_value = true
"""


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """n distinct loopback ports that were free a moment ago (held together while chosen,
    so two of them are never the same)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def make_certificate(directory: Path) -> None:
    """A self-signed certificate for localhost / 127.0.0.1 (its own CA)."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(directory / "server.key"), "-out", str(directory / "server.pem")],
        check=True, capture_output=True,
    )


def _service_users() -> dict[str, str]:
    """Dovecot refuses to run its login and internal processes as root: use its own users then."""
    if os.getuid() == 0:
        return {"internal_user": "dovecot", "internal_group": "dovecot", "login_user": "dovenull"}
    me, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    return {"internal_user": me, "internal_group": group, "login_user": me}


class Dovecot:
    """One running server with one user; `maildir(folder)` is where its mail lives."""

    def __init__(self, root: Path, oauth2_introspection: str | None = None,
                 sent: str = "Sent", password: str = PASSWORD) -> None:
        self.root = root
        self.password = password
        self.oauth2_introspection = oauth2_introspection  # a URL: XOAUTH2 logins on
        self.sent = sent  # the name of the folder with the \\Sent role
        self.imap_port, self.imaps_port = free_ports(2)
        self.ca_file = root / "server.pem"
        self.process: subprocess.Popen[bytes] | None = None
        # Mail is never accessed as root: as root, the mail files belong to "nobody".
        owner = pwd.getpwnam("nobody") if os.getuid() == 0 else pwd.getpwuid(os.getuid())
        self.mail_uid, self.mail_gid = owner.pw_uid, owner.pw_gid

    def start(self) -> Dovecot:
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        make_certificate(self.root)
        (self.root / "passwd").write_text(f"{USER}:{{PLAIN}}{self.password}\n")
        if self.oauth2_introspection:
            (self.root / "oauth2.conf.ext").write_text(
                _OAUTH2_CONF.format(url=self.oauth2_introspection))
        for folder in ("INBOX", self.sent, "Drafts", "Trash", "Junk"):
            self.maildir(folder)
        # A port chosen free can be taken by another process before Dovecot binds it
        # (Dovecot then exits at once): choose again, a few times.
        for _ in range(3):
            if self._listening():
                return self
            if self.process.poll() is None or "in use" not in self.log():
                break  # silent, or exited for another reason: choosing again won't help
            self.imap_port, self.imaps_port = free_ports(2)
        self.stop()
        raise RuntimeError(f"dovecot did not start:\n{self.log()}")

    def _listening(self) -> bool:
        """Start Dovecot on the chosen ports; True once it greets, False if it exits or
        stays silent (a loaded machine gets 30 s)."""
        oauth2 = self.oauth2_introspection
        (self.root / "dovecot.conf").write_text(_CONFIG.format(
            root=self.root, imap_port=self.imap_port, imaps_port=self.imaps_port,
            uid=self.mail_uid, gid=self.mail_gid, sent=self.sent, **_service_users(),
            oauth2_mechanisms=" xoauth2 oauthbearer" if oauth2 else "",
            oauth2_passdb=_OAUTH2_PASSDB.format(root=self.root) if oauth2 else "",
        ))
        with open(self.root / "dovecot.stderr", "wb") as stderr:
            self.process = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
                stdout=subprocess.DEVNULL, stderr=stderr,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.imap_port), timeout=1) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return True
            except OSError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log(self) -> str:
        """Dovecot's log, and what it wrote to stderr before its log was open."""
        paths = (self.root / "dovecot.stderr", self.root / "dovecot.log")
        return "".join(p.read_text(errors="replace") for p in paths if p.exists())

    def maildir(self, folder: str) -> Path:
        """The Maildir++ directory of `folder` (created if missing)."""
        base = self.root / "mail" / USER
        path = base if folder == "INBOX" else base / ("." + folder.replace("/", "."))
        if not (path / "tmp").is_dir():
            for sub in ("cur", "new", "tmp"):
                (path / sub).mkdir(parents=True, exist_ok=True)
            for made in (base, path, path / "cur", path / "new", path / "tmp"):
                self._own(made)
        return path

    def _own(self, path: Path) -> None:
        if os.getuid() == 0:
            os.chown(path, self.mail_uid, self.mail_gid)

    def deliver(self, folder: str, message: bytes, *, flags: str = "", name: str = "") -> None:
        """Put a message straight into the folder's maildir, with maildir flags (e.g. "S")."""
        self._counter = getattr(self, "_counter", 0) + 1
        name = name or f"{time.time_ns()}.M{self._counter}P{os.getpid()}.mailnet-test"
        path = self.maildir(folder) / "cur" / f"{name}:2,{flags}"
        path.write_bytes(message)
        self._own(path)

    def remove_folder(self, folder: str) -> None:
        """Delete a folder's files and Dovecot's index, so it comes back with a new UIDVALIDITY."""
        shutil.rmtree(self.maildir(folder))


@contextlib.contextmanager
def temporary_dovecot(**options: str) -> Iterator[Dovecot]:
    """A Dovecot (not started yet: deliver, then start) in a temporary directory that
    is stopped and removed on exit."""
    root = Path(tempfile.mkdtemp(prefix="mailnet-dovecot-"))
    os.chmod(root, 0o755)  # the mail user ("nobody" when run as root) must reach its files
    dc = Dovecot(root, **options)
    try:
        yield dc
    finally:
        dc.stop()
        shutil.rmtree(root, ignore_errors=True)
