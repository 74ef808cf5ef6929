"""IMAP fetch: an account's new mail into the store, read-only, incremental and cheap.

Read-only, always: folders are opened with EXAMINE, bodies fetched with
BODY.PEEK, and no command that changes a mailbox is ever sent.

Incremental: per (account, folder) the store keeps UIDVALIDITY and the
highest UID committed; a run asks only for newer UIDs, and a changed
UIDVALIDITY rescans the folder (the store's de-duplication keeps that free of
duplicates, and nothing stored is deleted). A STATUS per folder is enough to
see that nothing is new, so a no-op run costs one login.

Cheap: parsing is the cost, not the transfer. BODYSTRUCTURE says which parts
are text; a message with attachments is fetched as its header plus its text
parts, rebuilt into a smaller MIME message the ordinary parser reads, so
attachment bytes are neither downloaded nor parsed. The new UIDs are cut into
tasks; worker processes, each with a connection of its own, fetch and parse
a task, so the raw mail never crosses between processes and this process
only stores. Results are stored task by task, in order, and the fetch state
is written only after the batch it covers is committed, so an interrupted run
resumes where it stopped and ends with the same store as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import imaplib
import io
import logging
import multiprocessing.util
import os
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date

import keyring
import keyring.errors
from imapclient import IMAPClient, imap4, tls
from imapclient.exceptions import CapabilityError, IMAPClientError

from mailnet.config import DEFAULT_SENT_FOLDERS, SPECIAL_USE, Account
from mailnet.errors import MailnetError
from mailnet.ingest import ImportSummary, ParseResult, parse_safely, store_results
from mailnet.sources import Origin, RawMessage
from mailnet.store import Store
from mailnet.workers import Workers, stopping

log = logging.getLogger(__name__)

META_BATCH = 500  # UIDs per BODYSTRUCTURE request (bounds the command and the response)
FETCH_BYTES = 8 << 20  # estimated bytes per content request
TEXT_LIMIT = 2 << 20  # a text part larger than this is treated as an attachment
SECTIONS_PER_COMMAND = 100  # BODY.PEEK items per FETCH: keeps the command line far below 8 KB
LITERAL_LIMIT = 64 << 20  # a larger literal from the server is refused, not buffered
MIN_RATE = 16 << 10  # bytes/s a server must deliver on average once a command's timeout is up
MAX_UID = 2**32 - 1  # RFC 3501: UIDs, UIDVALIDITY and UIDNEXT are 32-bit
MAX_DEPTH = 64  # nesting of a BODYSTRUCTURE beyond which the message is refused
RETRIES = 5  # reconnects after a dropped connection, waiting BACKOFF s, then twice as long, …
BACKOFF = 0.5
KEYRING_SERVICE = "mailnet"

# Errors a dropped connection or a timeout raises; anything else is not retried.
_TRANSIENT = (OSError, imaplib.IMAP4.abort, EOFError)


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


# --- credentials -------------------------------------------------------------------------


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


# --- connection --------------------------------------------------------------------------


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
    except _TRANSIENT as exc:
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
    except _TRANSIENT as exc:  # before IMAPClientError: imaplib's abort is one of those
        _close(client)
        raise ImapConnectError(f"{account.host} dropped the connection during login "
                               f"({type(exc).__name__})") from None
    except IMAPClientError as exc:
        _close(client)
        reason = _scrub(str(exc), cred.secret)
        raise ImapAuthError(f"login as {account.username} on {account.host} failed ({reason}): "
                            f"check the username and the secret from {cred.origin} in "
                            f"[accounts.{account.name}]") from None
    return client


def _close(client: IMAPClient, *, logout: bool = True) -> None:
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


# --- folders -----------------------------------------------------------------------------


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


# --- FETCH responses and message structure ----------------------------------------------

# imapclient's response parser reads a response byte by byte in Python: for the
# BODYSTRUCTURE of 10,000 messages that costs more than the whole transfer. FETCH
# replies are simple enough for one regular expression per line.
_TOKEN = re.compile(
    rb'[ \t]*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([^\s()"\[]+(?:\[[^\]]*\](?:<\d+>)?)?))')
_LITERAL = re.compile(rb"\{\d+\}\s*$")
_ESCAPE = re.compile(rb"\\(.)")
_OPEN, _CLOSE = object(), object()


def _lex(text: bytes, out: list[object]) -> None:
    for opened, closed, quoted, atom in _TOKEN.findall(text):
        if opened:
            out.append(_OPEN)
        elif closed:
            out.append(_CLOSE)
        elif atom:
            out.append(None if atom.upper() == b"NIL" else int(atom) if atom.isdigit() else atom)
        else:  # a quoted string, maybe empty
            out.append(_ESCAPE.sub(rb"\1", quoted) if b"\\" in quoted else quoted)


def parse_fetch(data: list[bytes | tuple[bytes, bytes] | None]) -> dict[int, dict[bytes, object]]:
    """imaplib's untagged FETCH data → {UID: {b"BODY[1]": b"…", b"BODYSTRUCTURE": [...]}}.

    Lists become Python lists, NIL None, numbers int; responses without a UID
    (unsolicited flag updates) are dropped.
    """
    tokens: list[object] = []
    for item in data:
        if isinstance(item, tuple):  # text ending in {size}, then the literal itself
            _lex(_LITERAL.sub(b"", item[0]), tokens)
            tokens.append(item[1])
        elif item:
            _lex(item, tokens)
    stack: list[list[object]] = [[]]
    for token in tokens:
        if token is _OPEN:
            stack.append([])
        elif token is _CLOSE and len(stack) > 1:
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(token)
    out: dict[int, dict[bytes, object]] = {}
    for items in stack[0]:  # "<seq> (<name> <value> ...)" per message
        if isinstance(items, list):
            fields = {k.upper(): v for k, v in zip(items[::2], items[1::2], strict=False)
                      if isinstance(k, bytes)}
            uid = fields.get(b"UID")
            if isinstance(uid, int) and 0 < uid <= MAX_UID:
                out[uid] = fields
    return out


def _params(value: object) -> dict[bytes, bytes]:
    if not isinstance(value, list):
        return {}
    return {k.lower(): v for k, v in zip(value[::2], value[1::2], strict=False)
            if isinstance(k, bytes) and isinstance(v, bytes)}


@dataclass(frozen=True)
class Part:
    """One node of a BODYSTRUCTURE: a multipart with its children, or a single part."""

    type: bytes  # b"multipart/alternative", b"text/plain"
    params: dict[bytes, bytes]
    children: tuple[Part, ...] = ()
    size: int = 0
    attachment: bool = False  # Content-Disposition attachment, or a file name

    @classmethod
    def from_structure(cls, node: list[object], depth: int = 0) -> Part:
        """From the nested lists of a parsed BODYSTRUCTURE (RFC 3501 section 7.4.2).

        Raises ValueError for one nested deeper than MAX_DEPTH (no real mail is).
        """
        if depth > MAX_DEPTH:
            raise ValueError(f"its BODYSTRUCTURE is nested deeper than {MAX_DEPTH} levels")
        if node and isinstance(node[0], list):  # children first, then subtype, parameters
            n = next((i for i, x in enumerate(node) if not isinstance(x, list)), len(node))
            rest = node[n:]
            subtype = rest[0] if rest and isinstance(rest[0], bytes) else b"mixed"
            return cls(b"multipart/" + subtype.lower(), _params(rest[1] if len(rest) > 1 else None),
                       tuple(cls.from_structure(child, depth + 1)  # type: ignore[arg-type]
                             for child in node[:n]))
        kind = b"/".join(x.lower() if isinstance(x, bytes) else b"" for x in node[:2])
        params = _params(node[2] if len(node) > 2 else None)
        # A text part's disposition follows its line count and MD5: index 9.
        disposition = node[9] if kind.startswith(b"text/") and len(node) > 9 else None
        disp_type, disp_params = b"", {}
        if isinstance(disposition, list) and len(disposition) > 1:
            disp_type, disp_params = disposition[0] or b"", _params(disposition[1])
        attachment = ((isinstance(disp_type, bytes) and disp_type.lower() == b"attachment")
                      or b"name" in params or b"filename" in disp_params)
        size = node[6] if len(node) > 6 and isinstance(node[6], int) else 0
        return cls(kind, params, (), size, attachment)

    @property
    def is_multipart(self) -> bool:
        return self.type.startswith(b"multipart/")

    @property
    def is_text(self) -> bool:
        """A body text part: text/plain or text/html, not an attachment, not huge."""
        return (self.type in (b"text/plain", b"text/html") and not self.attachment
                and self.size <= TEXT_LIMIT)


def _leaves(part: Part, path: str = "") -> Iterator[tuple[str, Part]]:
    if part.is_multipart:
        for i, child in enumerate(part.children, 1):
            yield from _leaves(child, f"{path}.{i}" if path else str(i))
    else:
        yield path or "1", part


def _redundant_html(part: Part, path: str = "") -> Iterator[str]:
    """HTML alternatives of a text/plain part: the parser reads the plain one only."""
    children = [(f"{path}.{i}" if path else str(i), c) for i, c in enumerate(part.children, 1)]
    if part.type == b"multipart/alternative" and any(
        c.type == b"text/plain" and c.is_text for _, c in children
    ):
        yield from (p for p, c in children if c.type == b"text/html")
    for child_path, child in children:
        yield from _redundant_html(child, child_path)


def text_sections(structure: Part) -> list[str] | None:
    """Sections to fetch for a message's text, or None when the whole message is wanted.

    None for a single text part (the message is its text); [] for a lone
    attachment (the header is all there is to read).
    """
    if not structure.is_multipart:
        return None if structure.is_text else []
    skip = set(_redundant_html(structure))
    return [s for path, leaf in _leaves(structure) if leaf.is_text and path not in skip
            for s in (f"{path}.MIME", path)]


_BOUNDARY = b"=_mailnet_text_parts"
# A Content-Type or Content-Transfer-Encoding header with its folded lines.
_CONTENT_HEADER = re.compile(rb"^content-(?:type|transfer-encoding):.*\n(?:[ \t].*\n)*",
                             re.IGNORECASE | re.MULTILINE)


def rebuild(header: bytes, texts: list[bytes]) -> bytes:
    """The message as the parser needs it: its header and only its text parts, flat.

    One text part becomes the body itself; several go into one multipart/mixed
    under a fixed boundary. Flat and fixed, because the email package compiles
    a regular expression for every boundary it meets, which costs more than
    parsing the rest of a typical message.
    """
    if not texts:
        return header
    lines = _CONTENT_HEADER.sub(b"", header).rstrip(b"\r\n") + b"\r\n"
    if len(texts) == 1:
        return lines + texts[0]
    boundary = _BOUNDARY
    while any(boundary in text for text in texts):  # never in practice; cheap to rule out
        boundary += b"_"
    return (lines + b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n'
            + b"".join(b"--" + boundary + b"\r\n" + text + b"\r\n" for text in texts)
            + b"--" + boundary + b"--\r\n")


# --- fetching ----------------------------------------------------------------------------


def uid_ranges(uids: Iterable[int]) -> str:
    """`[1, 2, 3, 7, 9, 10]` → `"1:3,7,9:10"`: a UID set whose length grows with gaps only."""
    out: list[str] = []
    start = prev = None
    for uid in sorted(uids):
        if prev is not None and uid == prev + 1:
            prev = uid
            continue
        if start is not None:
            out.append(f"{start}:{prev}" if prev != start else str(start))
        start = prev = uid
    if start is not None:
        out.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(out)


def _uid_fetch(client: IMAPClient, uids: Iterable[int], items: str,
               ) -> dict[int, dict[bytes, object]]:
    """UID FETCH over a range set.

    imapclient's fetch() sends UID lists comma by comma and filters the reply
    by that list, so ranges go through its imaplib object.
    """
    try:
        typ, data = client._imap.uid("FETCH", uid_ranges(uids), items)
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:
        raise ImapError(f"the server refused FETCH: {exc}") from None
    if typ != "OK":
        raise ImapError(f"the server refused FETCH: {data[0]!r}")
    return parse_fetch(data)


@dataclass
class FolderProgress:
    """One folder of a run: how many messages it has to fetch and how far it got."""

    name: str
    uidvalidity: int
    uidnext: int
    uids: list[int]
    done: int = 0  # committed to the store
    bytes: int = 0  # message data downloaded

    @property
    def total(self) -> int:
        return len(self.uids)


@dataclass
class FetchSummary:
    account: str
    folders: list[FolderProgress]
    imported: ImportSummary = field(default_factory=ImportSummary)
    reconnects: int = 0
    seconds: float = 0.0

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.folders)

    @property
    def fetched(self) -> int:
        return sum(f.done for f in self.folders)


class _Connection:
    """A logged-in client that can be opened again after a drop, with backoff."""

    def __init__(self, account: Account, cred: Credential) -> None:
        self.account = account
        self.cred = cred
        self.client = connect(account, cred)
        self.reconnects = 0
        self.failures = 0  # drops since the last completed task
        self.selected: str | None = None

    def examine(self, folder: str, uidvalidity: int) -> None:
        """Open `folder` read-only, unless it is open already."""
        if self.selected == folder:
            return
        info = self.client.select_folder(folder, readonly=True)
        if info.get(b"UIDVALIDITY") != uidvalidity:
            raise ImapError(f"UIDVALIDITY of {folder} changed during the fetch; "
                            "run mailnet fetch again to rescan it")
        self.selected = folder

    def reopen(self, cause: BaseException) -> None:
        """Connect again; give up after RETRIES drops without a completed task."""
        _close(self.client, logout=False)
        self.selected = None
        while self.failures < RETRIES:
            delay = BACKOFF * 2 ** self.failures
            self.failures += 1
            log.warning("connection to %s lost (%s); reconnecting in %.1f s",
                        self.account.host, type(cause).__name__, delay)
            time.sleep(delay)
            try:
                self.client = connect(self.account, self.cred)
            except ImapAuthError:
                raise
            except (ImapConnectError, *_TRANSIENT) as exc:
                cause = exc
                continue
            self.reconnects += 1
            return
        raise ImapConnectError(f"lost the connection to {self.account.host} and could not "
                               f"reconnect ({cause}); what was fetched is stored: run "
                               "mailnet fetch again to resume")

    def fresh(self, folder: str, uidvalidity: int) -> None:
        """A new connection with `folder` open, after the old one fell out of step."""
        _close(self.client, logout=False)
        self.selected = None
        self.client = connect(self.account, self.cred)
        self.reconnects += 1
        self.examine(folder, uidvalidity)

    def close(self, *, logout: bool = True) -> None:
        _close(self.client, logout=logout)


@dataclass(frozen=True)
class _Wanted:
    """What to fetch of one message: its whole text, or its header and text sections."""

    uid: int
    sections: tuple[str, ...]  # ("",): the whole message
    size: int  # about how many bytes that is

    @classmethod
    def from_meta(cls, uid: int, meta: dict[bytes, object]) -> _Wanted:
        body = meta.get(b"BODYSTRUCTURE")
        structure = Part.from_structure(body) if isinstance(body, list) and body else None
        sections = text_sections(structure) if structure is not None else None
        if sections is None:
            size = meta.get(b"RFC822.SIZE")
            return cls(uid, ("",), size if isinstance(size, int) else 0)
        sizes = {path: leaf.size for path, leaf in _leaves(structure)}  # type: ignore[arg-type]
        return cls(uid, ("HEADER", *sections),
                   4096 + sum(sizes.get(s, 0) for s in sections))

    def message(self, data: dict[bytes, object]) -> bytes | None:
        """The message from its FETCH reply; None if the reply lacks it (expunged)."""
        parts = {s: data.get(f"BODY[{s}]".encode()) for s in self.sections}
        if not all(isinstance(p, bytes) for p in parts.values()):
            return None
        if self.sections == ("",):
            return parts[""]  # type: ignore[return-value]
        texts = [parts[mime] + parts[mime[:-5]]  # type: ignore[operator]
                 for mime in self.sections if mime.endswith(".MIME")]
        return rebuild(parts["HEADER"], texts)  # type: ignore[arg-type]


def _runs(wanted: list[_Wanted]) -> Iterator[list[_Wanted]]:
    """Consecutive runs of about FETCH_BYTES (at least one message each)."""
    run: list[_Wanted] = []
    size = 0
    for w in wanted:
        if run and size + w.size > FETCH_BYTES:
            yield run
            run, size = [], 0
        run.append(w)
        size += w.size
    if run:
        yield run


def _fetch_each(conn: _Connection, folder: tuple[str, int], uids: list[int], items: str,
                ) -> tuple[dict[int, dict[bytes, object]], dict[int, str]]:
    """UID FETCH `items` of `uids`, and why it failed for the UIDs it failed for.

    A refused or oversized answer is split in halves down to the message that
    causes it, so one message never costs the others; after an oversized one
    the connection is out of step and is opened again.
    """
    try:
        return _uid_fetch(conn.client, uids, items), {}
    except ImapConnectError:
        raise  # the connection, not a message
    except ImapError as exc:
        if isinstance(exc, ImapResponseTooLarge):
            conn.fresh(*folder)
        if len(uids) == 1:
            return {}, {uids[0]: str(exc)}
    half = len(uids) // 2
    data, failed = _fetch_each(conn, folder, uids[:half], items)
    more, more_failed = _fetch_each(conn, folder, uids[half:], items)
    return data | more, failed | more_failed


def _fetch_messages(conn: _Connection, task: _Task, account: str,
                    seen_gm: set[int]) -> tuple[list[RawMessage], int]:
    """The messages of a task in UID order (one that failed as its `error`), and the bytes
    downloaded."""
    folder = (task.folder, task.uidvalidity)
    gmail = conn.client.has_capability("X-GM-EXT-1")
    items = "(UID RFC822.SIZE BODYSTRUCTURE" + (" X-GM-MSGID)" if gmail else ")")
    meta, failed = _fetch_each(conn, folder, list(task.uids), items)
    wanted: list[_Wanted] = []
    for uid in task.uids:
        if uid not in meta:
            continue  # expunged since the search, or failed
        gm_id = meta[uid].get(b"X-GM-MSGID")
        if gm_id is not None:
            if gm_id in seen_gm:
                continue  # the same Gmail message under another label
            seen_gm.add(gm_id)  # type: ignore[arg-type]
        try:
            wanted.append(_Wanted.from_meta(uid, meta[uid]))
        except ValueError as exc:
            failed[uid] = str(exc)
    fetched: dict[int, bytes] = {}
    size = 0
    for run in _runs(wanted):
        groups: dict[tuple[str, ...], dict[int, _Wanted]] = {}
        for w in run:
            groups.setdefault(w.sections, {})[w.uid] = w
        for sections, group in groups.items():
            replies: dict[int, dict[bytes, object]] = {}
            for i in range(0, len(sections), SECTIONS_PER_COMMAND):
                request = "(" + " ".join(f"BODY.PEEK[{s}]"
                                         for s in sections[i:i + SECTIONS_PER_COMMAND]) + ")"
                asked = [uid for uid in group if uid not in failed]
                data, refused = _fetch_each(conn, folder, asked, request) if asked else ({}, {})
                failed |= refused
                for uid, fields in data.items():
                    replies.setdefault(uid, {}).update(fields)
            for uid, data in replies.items():
                message = group[uid].message(data) if uid in group and uid not in failed else None
                if message is not None:
                    fetched[uid] = message
                    size += sum(len(v) for k, v in data.items()
                                if k.startswith(b"BODY[") and isinstance(v, bytes))
    out: list[RawMessage] = []
    for uid in task.uids:
        origin = Origin(account, task.folder, f"{task.uidvalidity}:{uid}")
        if uid in fetched:
            out.append(RawMessage(fetched[uid], origin))
        elif uid in failed:
            out.append(RawMessage(b"", origin, error=f"not fetched: {failed[uid]}"))
    return out, size


@dataclass(frozen=True)
class _Task:
    """A run of UIDs of one folder: fetched, parsed and then stored as one batch."""

    folder: str
    uidvalidity: int
    uids: tuple[int, ...]


@dataclass
class _Done:
    """What a task gives back: its parse results in UID order and what they cost."""

    task: _Task
    results: list[ParseResult]
    bytes: int
    reconnects: int


class _Fetcher:
    """Runs tasks over one connection, reconnecting after a drop and retrying the task."""

    def __init__(self, conn: _Connection) -> None:
        self.conn = conn
        self.seen_gm: set[int] = set()  # Gmail ids fetched in this run, by this fetcher

    def run(self, task: _Task) -> _Done:
        reconnects = self.conn.reconnects
        while True:
            try:
                self.conn.examine(task.folder, task.uidvalidity)
                fetched, size = _fetch_messages(self.conn, task, self.conn.account.name,
                                                self.seen_gm)
                break
            except _TRANSIENT as exc:
                self.conn.reopen(exc)
        self.conn.failures = 0
        return _Done(task, [parse_safely(raw) for raw in fetched], size,
                     self.conn.reconnects - reconnects)


# A fetch worker process's own login and connection (opened by its first task, so a
# failure to connect reaches the main process as that task's error).
_worker_login: tuple[Account, Credential] | None = None
_worker_fetcher: _Fetcher | None = None


def _init_worker(account: Account, cred: Credential) -> None:
    global _worker_login
    _worker_login = (account, cred)
    # Log out as the worker exits (an abandoned pool's workers just drop the connection).
    multiprocessing.util.Finalize(None, _close_worker, exitpriority=10)


def _close_worker() -> None:
    if _worker_fetcher is not None:
        _worker_fetcher.conn.close(logout=not stopping())


def _run_in_worker(task: _Task) -> _Done:
    global _worker_fetcher
    if _worker_fetcher is None:
        assert _worker_login is not None
        _worker_fetcher = _Fetcher(_Connection(*_worker_login))
    return _worker_fetcher.run(task)


def plan(conn: _Connection, store: Store, folders: list[str],
         since: date | None) -> list[FolderProgress]:
    """Per folder, the UIDs to fetch: none when STATUS shows nothing new since the last run."""
    plans = []
    for name in folders:
        status = conn.client.folder_status(name, [b"UIDNEXT", b"UIDVALIDITY"])
        uidvalidity, uidnext = status.get(b"UIDVALIDITY"), status.get(b"UIDNEXT")
        for key, value in ((b"UIDVALIDITY", uidvalidity), (b"UIDNEXT", uidnext)):
            if not isinstance(value, int) or not 0 < value <= MAX_UID + 1:
                raise ImapError(f"{conn.account.host} sent an invalid {key.decode()} for "
                                f"{name} ({str(value)[:40]}): the server is broken")
        state = store.imap_state(conn.account.name, name)
        start = state[1] + 1 if state and state[0] == uidvalidity else 1
        if state and state[0] != uidvalidity:
            log.warning("%s: UIDVALIDITY changed; rescanning (nothing is stored twice)", name)
        folder = FolderProgress(name, uidvalidity, uidnext, [])
        if start < uidnext:
            conn.client.select_folder(name, readonly=True)
            conn.selected = None
            criteria: list[object] = ["UID", f"{start}:*"]
            if since is not None:
                criteria += ["SINCE", since]
            # "n:*" always matches the last message, even below n.
            folder.uids = sorted(u for u in conn.client.search(criteria)
                                 if start <= u <= MAX_UID)
        plans.append(folder)
    return plans


def _tasks(plans: list[FolderProgress]) -> Iterator[_Task]:
    for f in plans:
        for i in range(0, len(f.uids), META_BATCH):
            yield _Task(f.name, f.uidvalidity, tuple(f.uids[i:i + META_BATCH]))


def fetch_account(store: Store, account: Account, *, folders: Iterable[str] | None = None,
                  since: date | None = None, workers: int = 0,
                  on_progress: Callable[[list[FolderProgress]], None] | None = None,
                  ) -> FetchSummary:
    """Fetch the account's new mail into `store`.

    `folders` (names or roles) replaces the configured ones; `since` fetches
    only messages dated from that day on, and then leaves the incremental
    state alone, so a later full run still fetches the older ones.
    `workers` processes (0: one per core) each fetch and parse over a
    connection of their own; with 1, this process does it over its own.
    `on_progress` hears once the plan is known and after each committed batch.
    """
    started = time.perf_counter()
    cred = credential(account)
    conn = _Connection(account, cred)
    logout = True
    try:
        resolved = resolve_folders(conn.client, account, folders)
        for folder in resolved:
            store.set_folder_roles(account.name, folder.name, folder.roles)
        plans = plan(conn, store, [f.name for f in resolved], since)
        summary = FetchSummary(account.name, plans)
        if on_progress:
            on_progress(plans)
        if any(f.total for f in plans):
            workers = min(workers or os.cpu_count() or 1, len(list(_tasks(plans))))
            if workers > 1:
                conn.close()  # the workers have connections of their own
            summary.imported = _ingest(store, conn, cred, plans, workers, since is None,
                                       on_progress, summary)
        elif since is None:
            _save_state(store, account.name, plans)
    except KeyboardInterrupt:
        logout = False
        raise
    except _TRANSIENT as exc:
        logout = False
        raise ImapConnectError(f"lost the connection to {account.host} ({exc}); what was "
                               "fetched is stored: run mailnet fetch again to resume") from None
    except IMAPClientError as exc:
        raise ImapError(f"{account.host} refused a command: {exc}") from None
    finally:
        conn.close(logout=logout)
    summary.seconds = time.perf_counter() - started
    return summary


def _save_state(store: Store, account: str, folders: Iterable[FolderProgress]) -> None:
    """A completely fetched folder is stored up to UIDNEXT - 1 (a later expunge changes nothing)."""
    for f in folders:
        if f.uidnext > 1 and store.imap_state(account, f.name) != (f.uidvalidity, f.uidnext - 1):
            store.set_imap_state(account, f.name, f.uidvalidity, f.uidnext - 1)


def _ingest(store: Store, conn: _Connection, cred: Credential, plans: list[FolderProgress],
            workers: int, track: bool,
            on_progress: Callable[[list[FolderProgress]], None] | None,
            summary: FetchSummary) -> ImportSummary:
    """Run the tasks and store each one's results as it comes back, in task order.

    In order, so the state saved after each batch (the task's highest UID)
    never runs ahead of what is stored.
    """
    by_name = {f.name: f for f in plans}
    total = ImportSummary()
    start = time.perf_counter()
    before = store.last_id()
    with contextlib.ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(Workers(workers, _init_worker, (conn.account, cred)))
            done: Iterator[_Done] = pool.map(_run_in_worker, _tasks(plans))
        else:
            done = map(_Fetcher(conn).run, _tasks(plans))
        for result in done:
            folder = by_name[result.task.folder]
            part = store_results(store, result.results)
            total += part
            folder.done += part.messages
            folder.bytes += result.bytes
            summary.reconnects += result.reconnects
            if track:
                store.set_imap_state(conn.account.name, folder.name, folder.uidvalidity,
                                     result.task.uids[-1])
            if on_progress:
                on_progress(plans)
    if track:
        _save_state(store, conn.account.name, plans)
    store.infer_parents(after=before)  # replies without reply headers, now their parents may be in
    total.seconds = time.perf_counter() - start
    return total


def summary_line(summary: FetchSummary) -> str:
    per_folder = ", ".join(f"{f.name} {f.done:,}" for f in summary.folders)
    imp = summary.imported
    return (f"{summary.account}: fetched {summary.fetched:,} new messages ({per_folder}), "
            f"{summary.bytes / 1e6:,.1f} MB in {summary.seconds:.1f} s; imported "
            f"{imp.imported:,}, duplicates {imp.duplicates:,}, errors {imp.errors:,}"
            + (f"; reconnected {summary.reconnects}×" if summary.reconnects else ""))
