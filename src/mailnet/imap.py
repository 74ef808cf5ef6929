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
import logging
import multiprocessing.util
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from mailnet.config import Account
from mailnet.imap_connect import (
    TRANSIENT,
    Credential,
    ImapAuthError,
    ImapConnectError,
    ImapError,
    ImapResponseTooLarge,
    connect,
    credential,
    disconnect,
    resolve_folders,
)
from mailnet.imap_structure import MAX_UID, Part, leaves, parse_fetch, rebuild, text_sections
from mailnet.ingest import ImportSummary, ParseResult, parse_safely, store_results
from mailnet.sources import Origin, RawMessage
from mailnet.store import Store
from mailnet.workers import Workers, stopping

log = logging.getLogger(__name__)


META_BATCH = 500  # UIDs per BODYSTRUCTURE request (bounds the command and the response)
FETCH_BYTES = 8 << 20  # estimated bytes per content request
SECTIONS_PER_COMMAND = 100  # BODY.PEEK items per FETCH: keeps the command line far below 8 KB
RETRIES = 5  # reconnects after a dropped connection, waiting BACKOFF s, then twice as long, …
BACKOFF = 0.5


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
        disconnect(self.client, logout=False)
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
            except (ImapConnectError, *TRANSIENT) as exc:
                cause = exc
                continue
            self.reconnects += 1
            return
        raise ImapConnectError(f"lost the connection to {self.account.host} and could not "
                               f"reconnect ({cause}); what was fetched is stored: run "
                               "mailnet fetch again to resume")

    def fresh(self, folder: str, uidvalidity: int) -> None:
        """A new connection with `folder` open, after the old one fell out of step."""
        disconnect(self.client, logout=False)
        self.selected = None
        self.client = connect(self.account, self.cred)
        self.reconnects += 1
        self.examine(folder, uidvalidity)

    def close(self, *, logout: bool = True) -> None:
        disconnect(self.client, logout=logout)


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
        sizes = {path: leaf.size for path, leaf in leaves(structure)}  # type: ignore[arg-type]
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
            except TRANSIENT as exc:
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
    except TRANSIENT as exc:
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
