"""IMAP sessions: credentials, a connection with limits, and the folders to read.

Credentials come from an environment variable, a command or the system
keyring, never from a file; a secret never reaches a log or an error message
(:func:`_scrub`). The connection bounds what a server can make mailnet do:
a literal larger than :data:`LITERAL_LIMIT` is refused, a server slower than
:data:`MIN_RATE` once a command's timeout is up is dropped.
"""

from __future__ import annotations

import imaplib
import io
import logging
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import keyring
import keyring.errors
from imapclient import IMAPClient, imap4, tls
from imapclient.exceptions import CapabilityError, IMAPClientError

from mailnet.config import DEFAULT_SENT_FOLDERS, SPECIAL_USE, Account
from mailnet.errors import MailnetError

log = logging.getLogger(__name__)


LITERAL_LIMIT = 64 << 20  # a larger literal from the server is refused, not buffered
MIN_RATE = 16 << 10  # bytes/s a server must deliver on average once a command's timeout is up
KEYRING_SERVICE = "mailnet"


# Errors a dropped connection or a timeout raises; anything else is not retried.
TRANSIENT = (OSError, imaplib.IMAP4.abort, EOFError)


class ImapError(MailnetError):
    """The IMAP server refused something, or the conversation went wrong."""


class ImapConnectError(ImapError):
    """The server cannot be reached: unknown host, refused, timed out, dropped."""


class ImapTLSError(ImapConnectError):
    """The TLS handshake failed or the server's certificate is not trusted."""


class ImapAuthError(ImapError):
    """The credentials could not be obtained, or the server rejected them."""


class FolderNotFound(ImapError):
    """A configured folder or role does not exist on the server."""


class ImapResponseTooLarge(ImapError):
    """The server sent a literal or a line above the limits: the connection is out of step."""


class ImapTooSlow(ImapConnectError):
    """A command's answer did not arrive in time; not retried (the server stalls, not drops)."""


@dataclass(frozen=True)
class Credential:
    """A password or an OAuth2 access token; never printed (repr hides it)."""

    secret: str = field(repr=False)
    oauth2: bool = False
    origin: str = ""  # where it came from, to name in an error: "password_env FOO"


def _run_secret_command(account: Account, key: str, command: str) -> str:
    where = f"[accounts.{account.name}] {key}"
    try:
        done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=120,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImapAuthError(f"{where} could not run: {type(exc).__name__}") from None
    if done.returncode != 0:
        # Its output is not shown: it may hold the secret.
        raise ImapAuthError(f"{where} failed with exit code {done.returncode}; "
                            "run the command yourself to see why")
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise ImapAuthError(f"{where} printed nothing; it must print the secret")
    return lines[0].strip()


def credential(account: Account) -> Credential:
    """The account's secret, from the one place its config names."""
    where = f"[accounts.{account.name}]"
    if account.oauth2_token_command:
        token = _run_secret_command(account, "oauth2_token_command", account.oauth2_token_command)
        return Credential(token, oauth2=True, origin="oauth2_token_command")
    if account.password_command:
        return Credential(_run_secret_command(account, "password_command",
                                              account.password_command),
                          origin="password_command")
    if account.password_env:
        value = os.environ.get(account.password_env)
        if not value:
            raise ImapAuthError(f"{where} password_env: environment variable "
                                f"{account.password_env} is not set")
        return Credential(value, origin=f"password_env {account.password_env}")
    try:
        value = keyring.get_password(KEYRING_SERVICE, account.name)
    except keyring.errors.KeyringError as exc:
        raise ImapAuthError(f"{where} password_keyring: the system keyring failed "
                            f"({type(exc).__name__})") from None
    if not value:
        raise ImapAuthError(f"{where} password_keyring: no password in the keyring; store it "
                            f"with: keyring set {KEYRING_SERVICE} {account.name}")
    return Credential(value, origin="the keyring")


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def _tls_context(account: Account) -> ssl.SSLContext:
    if account.ca_file is not None and not account.ca_file.is_file():
        raise ImapTLSError(f"[accounts.{account.name}] ca_file {account.ca_file} does not exist")
    return ssl.create_default_context(cafile=str(account.ca_file) if account.ca_file else None)


class _Deadline(io.RawIOBase):
    """The socket as imaplib reads it, under the connection's overall deadline.

    A socket timeout only bounds the wait for the next byte, so a server
    trickling a byte a second never times out; here every read also checks
    the command's deadline, which grows with the bytes received (MIN_RATE).
    """

    def __init__(self, imap: _Limits) -> None:
        super().__init__()
        self.imap = imap

    def readable(self) -> bool:
        return True

    def _too_slow(self) -> ImapTooSlow:
        return ImapTooSlow(f"{self.imap.host} answered too slowly (less than "
                           f"{MIN_RATE >> 10} KB/s after {self.imap.idle:g} s): check the "
                           "server, or raise timeout")

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        imap = self.imap
        remaining = imap.deadline - time.monotonic()
        if remaining <= 0:
            raise self._too_slow()
        imap.sock.settimeout(min(imap.idle, remaining))
        try:
            n = imap.sock.recv_into(buffer)
        except TimeoutError:
            if remaining < imap.idle:
                raise self._too_slow() from None  # the deadline ran out, not the byte wait
            raise
        imap.deadline += n / MIN_RATE
        return n


class _Limits(imaplib.IMAP4):
    """imaplib with a deadline per command and caps on literals and lines (see _Deadline)."""

    idle: float = 60.0
    deadline: float = 0.0

    def open(self, host: str = "", port: int = 143, timeout: float | None = None) -> None:
        self.idle = timeout or getattr(self, "_timeout", None) or self.idle  # TLS: _timeout
        self.deadline = time.monotonic() + self.idle  # for the greeting
        super().open(host, port, timeout)
        self._install()

    def _install(self) -> None:
        self.file.close()  # the plain makefile() reader, replaced by one under the deadline
        self.file = io.BufferedReader(_Deadline(self), 1 << 16)

    def starttls(self, ssl_context: ssl.SSLContext | None = None) -> tuple[str, list[bytes]]:
        done = super().starttls(ssl_context)
        self._install()
        return done

    def _command(self, name: str, *args: object) -> str:
        self.deadline = time.monotonic() + self.idle
        return super()._command(name, *args)

    def read(self, size: int) -> bytes:
        if size > LITERAL_LIMIT:
            raise ImapResponseTooLarge(f"{self.host} sent a {size:,}-byte literal (the limit is "
                                       f"{LITERAL_LIMIT >> 20} MB)")
        return super().read(size)

    def readline(self) -> bytes:
        line = self.file.readline(imaplib._MAXLINE + 1)
        if len(line) > imaplib._MAXLINE:
            raise ImapResponseTooLarge(f"{self.host} sent a response line over "
                                       f"{imaplib._MAXLINE:,} bytes")
        return line


class _Plain(_Limits, imap4.IMAP4WithTimeout):
    pass


class _TLS(_Limits, tls.IMAP4_TLS):
    pass


class _Client(IMAPClient):
    """IMAPClient over the bounded imaplib classes above (its only hook is _create_IMAP4)."""

    def _create_IMAP4(self) -> imaplib.IMAP4:
        timeout = getattr(self._timeout, "connect", None)
        if self.ssl:
            return _TLS(self.host, self.port, self.ssl_context, timeout)
        return _Plain(self.host, self.port, timeout)


def _open(account: Account) -> IMAPClient:
    """A connected, TLS-protected (unless plain was configured) client, not yet logged in."""
    where, addr = f"[accounts.{account.name}]", f"{account.host}:{account.port}"
    context = None if account.tls == "plain" else _tls_context(account)
    try:
        client = _Client(account.host, account.port, ssl=account.tls == "implicit",
                         ssl_context=context, timeout=account.timeout)
        # imapclient switches imaplib's debug output on, which formats every message
        # literal into a log string (most of the fetch time) and would log a LOGIN
        # line; there is no public switch, so turn it off on the imaplib object.
        client._imap.debug = 0
        if account.tls == "starttls":
            client.starttls(context)
    except socket.gaierror:
        raise ImapConnectError(f"cannot resolve host {account.host!r}: check host in "
                               f"{where}") from None
    except ConnectionRefusedError:
        raise ImapConnectError(f"connection to {addr} refused: check host, port and tls "
                               f"in {where}") from None
    except ssl.SSLCertVerificationError as exc:
        raise ImapTLSError(f"the TLS certificate of {addr} is not trusted "
                           f"({exc.verify_message}): if the server uses its own CA, set "
                           f"ca_file in {where}") from None
    except ssl.SSLError as exc:
        raise ImapTLSError(f"TLS with {addr} failed ({exc.reason or exc}): check that tls "
                           f"in {where} matches the port (implicit: 993, starttls: 143)"
                           ) from None
    except CapabilityError:
        raise ImapTLSError(f"{addr} does not offer STARTTLS: use tls = \"implicit\" "
                           f"(port 993) in {where}") from None
    except TimeoutError:
        raise ImapConnectError(f"connection to {addr} timed out: check host and port in "
                               f"{where}") from None
    except TRANSIENT as exc:
        raise ImapConnectError(f"cannot connect to {addr}: {exc}: check host, port and "
                               f"tls in {where}") from None
    except IMAPClientError as exc:  # STARTTLS answered NO or BAD
        raise ImapTLSError(f"{addr} refused STARTTLS ({exc}): check tls in {where}") from None
    return client


def connect(account: Account, cred: Credential) -> IMAPClient:
    """A logged-in client; every failure becomes an ImapError naming the fix."""
    client = _open(account)
    try:
        if cred.oauth2:
            client.oauth2_login(account.username, cred.secret)
        elif (account.username + cred.secret).isascii():
            client.login(account.username, cred.secret)
        else:  # LOGIN's quoted strings are ASCII; AUTHENTICATE PLAIN carries UTF-8 (RFC 4616)
            client.plain_login(account.username, cred.secret)
    except TRANSIENT as exc:  # before IMAPClientError: imaplib's abort is one of those
        disconnect(client)
        raise ImapConnectError(f"{account.host} dropped the connection during login "
                               f"({type(exc).__name__})") from None
    except IMAPClientError as exc:
        disconnect(client)
        reason = _scrub(str(exc), cred.secret)
        raise ImapAuthError(f"login as {account.username} on {account.host} failed ({reason}): "
                            f"check the username and the secret from {cred.origin} in "
                            f"[accounts.{account.name}]") from None
    return client


def disconnect(client: IMAPClient, *, logout: bool = True) -> None:
    """Log out if the connection still works; a dead one is simply dropped.

    Without `logout` it is dropped at once: a connection known to be broken,
    or a Ctrl-C, should not wait out the timeout of a LOGOUT nobody answers.
    """
    if logout:
        try:
            client.logout()
            return
        except Exception:
            log.debug("logout failed; dropping the connection")
    try:
        client.shutdown()
    except Exception:  # already closed: nothing left to release
        log.debug("connection already closed")


@dataclass(frozen=True)
class ServerFolder:
    """A folder to read and the RFC 6154 roles it has on the server (`\\Sent`)."""

    name: str
    roles: tuple[str, ...]


def resolve_folders(client: IMAPClient, account: Account,
                    wanted: Iterable[str] | None = None) -> list[ServerFolder]:
    """Server folders for the configured names and RFC 6154 roles (`\\Sent`).

    A role finds a localised folder ("[Google Mail]/Gesendet"). Only a role
    of the default list may be missing (a server without a Sent folder); a
    folder asked for by name or explicitly by role must exist.
    """
    explicit = wanted is not None
    wanted = tuple(wanted) if wanted is not None else account.folders
    listing = [(tuple(f.lower() for f in flags), name)
               for flags, _, name in client.list_folders()]
    names = [name for flags, name in listing if b"\\noselect" not in flags]
    flags_of = {name: flags for flags, name in listing}
    found: dict[str, set[str]] = {}
    for want in wanted:
        name = _find_folder(listing, names, want)
        if name is None and want.startswith("\\") and not explicit and account.folders_are_default:
            log.info("%s has no %s folder; skipped", account.name, want)
            continue
        if name is None:
            what = f"folder with role {want}" if want.startswith("\\") else f"folder {want!r}"
            raise FolderNotFound(f"no {what} on account {account.name}; folders there: "
                                 f"{', '.join(sorted(names))}: fix folders in "
                                 f"[accounts.{account.name}]")
        roles = found.setdefault(name, {r for r in SPECIAL_USE
                                        if r.lower().encode() in flags_of[name]})
        if want.startswith("\\"):
            roles.add(want)  # also where the server has no SPECIAL-USE and the name told
    return [ServerFolder(name, tuple(sorted(roles))) for name, roles in found.items()]


def _find_folder(listing: list[tuple[tuple[bytes, ...], str]], names: list[str],
                 want: str) -> str | None:
    if want.lower() in ("\\inbox", "inbox"):
        return next((n for n in names if n.upper() == "INBOX"), None)
    if not want.startswith("\\"):
        return want if want in names else None
    flag = want.lower().encode()
    by_role = [name for flags, name in listing if flag in flags and name in names]
    if by_role:
        return by_role[0]
    if want == "\\Sent":  # a server without SPECIAL-USE: the usual names
        lower = {n.casefold(): n for n in names}
        return next((lower[s.casefold()] for s in DEFAULT_SENT_FOLDERS if s.casefold() in lower),
                    None)
    return None
