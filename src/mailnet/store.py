"""The local SQLite store: messages, their recipients, tags, parse errors and fetch state.

One file, WAL mode, schema versioned through `PRAGMA user_version` with
forward-only migrations. A message is stored once per (Message-ID, content
hash): the same mail imported twice, or seen in two folders, adds nothing,
while two different messages that happen to share a Message-ID are both kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mailnet.addresses import shown
from mailnet.errors import MailnetError
from mailnet.parse import ParsedMessage
from mailnet.private import private_dir, private_file, write_private
from mailnet.sources import Origin
from mailnet.threads import ThreadRow, infer_parents, normalise_subject


class StoreError(MailnetError):
    """The store cannot be opened or is from a newer mailnet."""


# Whether a message's own text asks a question, whether it carries an opt-out line
# (a mailer's footer: people don't write one), and whether it hands over a link or a
# document (what fulfils an ask: mailnet.favours), as SQL over its new text.
_QUESTION = "instr({text}, '?') > 0"
# A mailer's opt-out line, as mailers word it (SQLite's LIKE ignores ASCII case only).
_OPT_OUT = ("unsubscribe", "opt out", "opt-out", "rather not receive", "no longer wish to "
            "receive", "wish to be removed", "abbestellen", "désinscri", "desinscri",
            "désabonn", "darse de baja", "配信停止", "退订")
_FOOTER = "(" + " OR ".join(f"{{text}} LIKE '%{phrase}%'" for phrase in _OPT_OUT) + ")"
_LINK = "(instr({text}, '://') > 0 OR instr({text}, 'www.') > 0 OR {text} LIKE '%attach%')"

_MIGRATIONS: list[str] = [
    # 1: messages, recipients, errors
    """
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        date TEXT,                      -- ISO 8601, UTC; NULL when unknown
        from_name TEXT NOT NULL,
        from_addr TEXT NOT NULL,
        subject TEXT NOT NULL,
        in_reply_to TEXT,
        refs TEXT NOT NULL,             -- space-separated Message-IDs
        parent_id TEXT,                 -- In-Reply-To, else the last reference
        list_id TEXT NOT NULL,
        list_post TEXT NOT NULL,
        list_unsubscribe TEXT NOT NULL,
        precedence TEXT NOT NULL,
        auto_submitted TEXT NOT NULL,
        is_bulk INTEGER NOT NULL,
        size INTEGER NOT NULL,
        new_text TEXT NOT NULL,
        source TEXT NOT NULL,
        folder TEXT NOT NULL,
        position TEXT NOT NULL,
        imported_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
        UNIQUE (message_id, content_hash)
    );
    CREATE INDEX messages_message_id ON messages (message_id);
    CREATE INDEX messages_parent ON messages (parent_id);
    CREATE INDEX messages_from ON messages (from_addr);
    CREATE INDEX messages_date ON messages (date);
    CREATE TABLE recipients (
        message INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('to', 'cc', 'reply-to')),
        name TEXT NOT NULL,
        address TEXT NOT NULL
    );
    CREATE INDEX recipients_message ON recipients (message);
    CREATE INDEX recipients_address ON recipients (address);
    CREATE TABLE errors (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        folder TEXT NOT NULL,
        position TEXT NOT NULL,
        reason TEXT NOT NULL,
        seen_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
        UNIQUE (source, folder, position)
    );
    """,
    # 2: intent tags (one row per tagged message) and per-folder IMAP fetch state
    """
    CREATE TABLE tags (
        message INTEGER PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
        request REAL NOT NULL,
        offer REAL NOT NULL,
        thanks REAL NOT NULL,
        sales REAL NOT NULL,
        labels TEXT NOT NULL,           -- the tags over threshold, space-separated
        model_version TEXT NOT NULL,
        tagged_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
    );
    CREATE TABLE imap_folders (
        account TEXT NOT NULL,
        folder TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        highest_uid INTEGER NOT NULL,
        highest_modseq INTEGER,
        PRIMARY KEY (account, folder)
    );
    """,
    # 3: find an already-stored message by its raw bytes before parsing it again
    """
    CREATE INDEX messages_content_hash ON messages (content_hash);
    """,
    # 4: the RFC 6154 roles an IMAP server gives the folders read from it (\\Sent),
    #    so a localised Sent folder counts as sent mail whatever its name
    """
    CREATE TABLE folder_roles (
        source TEXT NOT NULL,
        folder TEXT NOT NULL,
        role TEXT NOT NULL,
        PRIMARY KEY (source, folder, role)
    );
    """,
    # 5: threads without reply headers (mailnet.threads): the normalised subject, whether it
    #    has a reply prefix, and whether parent_id was inferred from them rather than headers
    """
    ALTER TABLE messages ADD COLUMN thread_subject TEXT NOT NULL DEFAULT '';
    ALTER TABLE messages ADD COLUMN reply_subject INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN parent_inferred INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX messages_thread_subject ON messages (thread_subject);
    """,
    # 6: originals read from the quote in a reply when the mailbox lost them (mailnet.quoted)
    """
    ALTER TABLE messages ADD COLUMN recovered INTEGER NOT NULL DEFAULT 0;
    """,
    # 7: marks of the new text read by every report, kept so no report reads all the text
    f"""
    ALTER TABLE messages ADD COLUMN question INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN footer INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN link INTEGER NOT NULL DEFAULT 0;
    UPDATE messages SET question = {_QUESTION.format(text="new_text")},
                        footer = {_FOOTER.format(text="new_text")},
                        link = {_LINK.format(text="new_text")};
    """,
    # 8: a recovered sender's name read up to its address ("Ann Lee [mailto:ann@x" before)
    """
    UPDATE messages SET from_name = rtrim(substr(from_name, 1, instr(from_name, '[') - 1))
        WHERE recovered = 1 AND instr(from_name, '[') > 0;
    UPDATE messages SET from_name = rtrim(substr(from_name, 1, instr(from_name, '(') - 1))
        WHERE recovered = 1 AND instr(from_name, '(') > 0;
    """,
    # 9: a footer's opt-out line in more of the words mailers use ("unsubscribe" only before)
    f"""
    UPDATE messages SET footer = {_FOOTER.format(text="new_text")};
    """,
]
_THREAD_MIGRATION = 5

SCHEMA_VERSION = len(_MIGRATIONS)
# How long a write waits for another process's write to end before the store counts as busy.
BUSY_SECONDS = 30.0
OWNER_SUFFIX = ".owner"  # beside the store: pid and command of the mailnet that opened it
_SIDE_FILES = ("-wal", "-shm", "-journal")


def _owner_pid(owner: Path) -> int | None:
    """The pid in an owner file if that process is still running."""
    try:
        pid = int(owner.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def store_problem(exc: sqlite3.Error, path: Path) -> StoreError:
    """What an SQLite error means for the user of the store at `path`, in one line."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        owner = path.with_name(path.name + OWNER_SUFFIX)
        who = ""
        if (pid := _owner_pid(owner)) is not None and pid != os.getpid():
            command = owner.read_text().split(None, 1)[1:] or [""]
            who = f" by mailnet {command[0].strip()} (pid {pid})".replace("  ", " ")
        return StoreError(f"the store {path} is busy: it has been held{who} for over "
                          f"{BUSY_SECONDS:.0f} s; try again when that run has finished")
    if type(exc) is sqlite3.DatabaseError or "malformed" in text or "not a database" in text:
        return StoreError(f"the store {path} is damaged ({text}): restore it from a backup, "
                          "or move it away and import your mail again")
    return StoreError(f"cannot use store {path}: {text}")


TAGS = ("request", "offer", "thanks", "sales")


@dataclass(frozen=True)
class MessageView:
    """One stored message as a reader sees it again (every field written by its sender)."""

    id: int
    date: str
    sender: str
    to: list[str]
    cc: list[str]
    subject: str
    message_id: str
    folder: str
    text: str  # the sender's new text
    cut: bool  # the text was longer and is cut


@dataclass(frozen=True)
class AddResult:
    added: int
    duplicates: int


class Store:
    """A mailnet database file. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: Path | str, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and str(path) != ":memory:" and not self.path.is_file():
            # A read command on a mistyped --db must not leave an empty store behind.
            raise StoreError(f"no store at {path}: make one with `mailnet import PATH` "
                             "or `mailnet fetch` (or pass --db to the right file)")
        self._owner: Path | None = None
        try:
            if str(path) != ":memory:":
                private_dir(self.path.parent)
                private_file(self.path)  # SQLite gives its -wal and -shm files the same mode
                for extra in _SIDE_FILES:
                    if (side := self.path.with_name(self.path.name + extra)).exists():
                        private_file(side)
                self._claim()
            # The ingest pipeline checks for known messages from the pool's feeder thread;
            # SQLite is built serialized (sqlite3.threadsafety == 3), so sharing is safe.
            self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                                      timeout=BUSY_SECONDS)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._release()
            raise store_problem(exc, self.path) from None
        except OSError as exc:
            self._release()
            raise StoreError(f"cannot open store {path}: {exc}") from None

    def _claim(self) -> None:
        """Leave this process's pid and command beside the store, so a run that finds the
        store busy can say who holds it; a file left by a process that is gone is replaced."""
        owner = self.path.with_name(self.path.name + OWNER_SUFFIX)
        if _owner_pid(owner) is None:
            with contextlib.suppress(OSError):
                write_private(owner, f"{os.getpid()} {' '.join(sys.argv[1:])}\n".encode())
                self._owner = owner

    def _release(self) -> None:
        if self._owner is not None:
            with contextlib.suppress(OSError):
                if _owner_pid(self._owner) == os.getpid():
                    self._owner.unlink()
            self._owner = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()
        self._release()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer mailnet (schema {version} > {SCHEMA_VERSION})"
            )
        for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
            self.db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
        if version and version < _THREAD_MIGRATION:  # normalise the subjects stored before
            with self.db:
                self.db.execute("BEGIN")
                self.db.executemany(
                    "UPDATE messages SET thread_subject = ?, reply_subject = ? WHERE id = ?",
                    [(*normalise_subject(subject), rowid) for rowid, subject in
                     self.db.execute("SELECT id, subject FROM messages")])
            self.infer_parents()

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def add_messages(self, messages: Iterable[ParsedMessage]) -> AddResult:
        """Store a batch in one transaction; a message already stored counts as a duplicate.
        The original a reply quotes (`quoted`, recovered) is stored beside it."""
        added = duplicates = 0
        with self.db:
            self.db.execute("BEGIN")
            for m in messages:
                if not self._insert(m):
                    duplicates += 1
                    continue
                added += 1
                if m.quoted:
                    self._insert(m.quoted)
        return AddResult(added, duplicates)

    def _insert(self, m: ParsedMessage) -> bool:
        cur = self.db.execute(
            """INSERT OR IGNORE INTO messages (message_id, content_hash, date, from_name,
                from_addr, subject, in_reply_to, refs, parent_id, list_id, list_post,
                list_unsubscribe, precedence, auto_submitted, is_bulk, size, new_text,
                source, folder, position, thread_subject, reply_subject, recovered, question,
                footer, link)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, """
            f"{_QUESTION.format(text='?17')}, {_FOOTER.format(text='?17')}, "
            f"{_LINK.format(text='?17')})",
            (m.message_id, m.content_hash,
             m.date.strftime("%Y-%m-%dT%H:%M:%SZ") if m.date else None,
             m.sender.name if m.sender else "", m.sender.address if m.sender else "",
             m.subject, m.in_reply_to, " ".join(m.references), m.parent_id,
             m.list_id, m.list_post, m.list_unsubscribe, m.precedence,
             m.auto_submitted, int(m.is_bulk), m.size, m.new_text,
             m.origin.source, m.origin.folder, m.origin.position,
             *normalise_subject(m.subject), int(m.recovered)),
        )
        if not cur.rowcount:
            return False
        self.db.executemany(
            "INSERT INTO recipients (message, kind, name, address) VALUES (?, ?, ?, ?)",
            [(cur.lastrowid, kind, a.name, a.address)
             for kind, addrs in (("to", m.to), ("cc", m.cc), ("reply-to", m.reply_to))
             for a in addrs],
        )
        return True

    def last_id(self) -> int:
        """The newest message's row id (0: none): what an import adds comes after it."""
        return self.db.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]

    def infer_parents(self, after: int = 0) -> int:
        """Link replies without reply headers to the message they answer (mailnet.threads).

        The inferred parent goes where a header parent goes (`parent_id`), with
        `parent_inferred = 1`, so everything that follows threads reads it alike; a
        header link is never replaced. Only subjects with an unlinked reply are read,
        and with `after` (a :meth:`last_id` from before an import) only the subjects of
        the messages imported since: a new message can only answer, or be answered by,
        mail of its own subject. Returns how many replies are linked now.
        """
        rows = self.db.execute(
            """SELECT m.id, m.message_id, m.date, m.from_addr, m.thread_subject, m.reply_subject,
                      m.reply_subject AND (m.parent_id IS NULL OR m.parent_inferred),
                      group_concat(r.address, ' ')
               FROM messages m LEFT JOIN recipients r ON r.message = m.id AND r.kind != 'reply-to'
               WHERE m.thread_subject IN (
                   SELECT thread_subject FROM messages WHERE reply_subject AND thread_subject != ''
                       AND (parent_id IS NULL OR parent_inferred))
                 AND m.thread_subject IN (SELECT thread_subject FROM messages WHERE id > ?)
               GROUP BY m.id""", (after,)).fetchall()
        found = infer_parents(
            ThreadRow(rowid, message_id,
                      datetime.strptime(date, "%Y-%m-%dT%H:%M:%SZ") if date else None,
                      sender, frozenset((recipients or "").split()), subject, bool(reply),
                      bool(needs))
            for rowid, message_id, date, sender, subject, reply, needs, recipients in rows)
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(
                """UPDATE messages SET parent_id = ?, parent_inferred = 1
                   WHERE id = ? AND (parent_id IS NULL OR parent_inferred)""",
                [(parent, child) for child, parent in found.items()])
        return len(found)

    def set_tags(self, rows: Iterable[tuple[int, dict[str, float], list[str]]],
                 model_version: str) -> None:
        """Store (message rowid, probability per tag, tags over threshold), replacing old tags."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(
                """INSERT OR REPLACE INTO tags (message, request, offer, thanks, sales, labels,
                       model_version) VALUES (?, ?, ?, ?, ?, ?, ?)""",
                [(rowid, *(float(probs[t]) for t in TAGS), " ".join(labels), model_version)
                 for rowid, probs, labels in rows],
            )

    def tag_versions(self) -> dict[str | None, int]:
        """How many messages each model tagged, most first; None counts those not tagged."""
        return dict(self.db.execute(
            "SELECT t.model_version, count(*) FROM messages m LEFT JOIN tags t ON t.message = m.id "
            "GROUP BY t.model_version ORDER BY count(*) DESC, t.model_version").fetchall())

    def tagged_by_others(self, model_version: str) -> dict[str, int]:
        """How many messages keep the tags of each model other than `model_version`."""
        return {version: n for version, n in self.tag_versions().items()
                if version is not None and version != model_version}

    def add_error(self, origin: Origin, reason: str) -> None:
        """Record a message that could not be parsed; recording it again changes nothing."""
        with self.db:
            self.db.execute(
                """INSERT OR REPLACE INTO errors (source, folder, position, reason)
                   VALUES (?, ?, ?, ?)""",
                (origin.source, origin.folder, origin.position, reason),
            )

    def imap_state(self, account: str, folder: str) -> tuple[int, int] | None:
        """(UIDVALIDITY, highest UID stored) of an IMAP folder, or None before its first fetch."""
        row = self.db.execute(
            "SELECT uidvalidity, highest_uid FROM imap_folders WHERE account = ? AND folder = ?",
            (account, folder),
        ).fetchone()
        return (row[0], row[1]) if row else None

    def set_imap_state(self, account: str, folder: str, uidvalidity: int,
                       highest_uid: int) -> None:
        """Record how far a folder is stored; call only once the messages up to it are committed."""
        with self.db:
            self.db.execute(
                """INSERT OR REPLACE INTO imap_folders (account, folder, uidvalidity, highest_uid)
                   VALUES (?, ?, ?, ?)""",
                (account, folder, uidvalidity, highest_uid),
            )

    def set_folder_roles(self, source: str, folder: str, roles: Iterable[str]) -> None:
        """Record the roles (`\\Sent`, ...) a server gives a folder, replacing earlier ones."""
        with self.db:
            self.db.execute("DELETE FROM folder_roles WHERE source = ? AND folder = ?",
                            (source, folder))
            self.db.executemany("INSERT INTO folder_roles (source, folder, role) VALUES (?, ?, ?)",
                                [(source, folder, role) for role in roles])

    def folders_with_role(self, role: str) -> set[tuple[str, str]]:
        """(source, folder) of every folder a server gave `role`."""
        rows = self.db.execute("SELECT source, folder FROM folder_roles WHERE role = ?", (role,))
        return set(rows)

    def errors(self) -> list[tuple[str, str, str, str]]:
        cur = self.db.execute("SELECT source, folder, position, reason FROM errors ORDER BY id")
        return cur.fetchall()

    def count(self, table: str = "messages") -> int:
        """Rows of a table; for messages, the mail stored (originals recovered from a
        reply's quote are read from another message, not stored mail)."""
        if table not in ("messages", "recipients", "errors", "tags"):
            raise ValueError(table)
        where = " WHERE NOT recovered" if table == "messages" else ""
        return self.db.execute(f"SELECT count(*) FROM {table}{where}").fetchone()[0]

    def known_contents(self, content_hashes: Iterable[str]) -> set[str]:
        """Which of these content hashes are stored already."""
        hashes = list(content_hashes)
        marks = ",".join("?" * len(hashes))
        cur = self.db.execute(
            f"SELECT content_hash FROM messages WHERE content_hash IN ({marks})", hashes)
        return {h for (h,) in cur}

    def parent(self, message_rowid: int) -> int | None:
        """The stored message this one replies to, through In-Reply-To or References."""
        row = self.db.execute(
            "SELECT parent_id, refs FROM messages WHERE id = ?", (message_rowid,)
        ).fetchone()
        if row is None:
            return None
        candidates = [row[0], *reversed(row[1].split())] if row[0] else row[1].split()[::-1]
        for message_id in candidates:
            found = self.db.execute(
                "SELECT id FROM messages WHERE message_id = ? ORDER BY id LIMIT 1", (message_id,)
            ).fetchone()
            if found:
                return found[0]
        return None

    def thread(self, message_rowid: int) -> list[int]:
        """Every stored message of the thread `message_rowid` belongs to, oldest first."""
        root, climbed = message_rowid, {message_rowid}
        while (up := self.parent(root)) is not None and up not in climbed:
            climbed.add(up)
            root = up
        seen, members, frontier = {root}, [root], [root]
        while frontier:
            ids = self.db.execute(
                f"""SELECT c.id FROM messages p JOIN messages c
                      ON c.parent_id = p.message_id
                      OR instr(' ' || c.refs || ' ', ' ' || p.message_id || ' ')
                    WHERE p.id IN ({",".join("?" * len(frontier))})""",
                frontier,
            ).fetchall()
            frontier = [i for (i,) in ids if i not in seen]
            seen.update(frontier)
            members += frontier
        order = self.db.execute(
            f"SELECT id FROM messages WHERE id IN ({','.join('?' * len(members))}) "
            "ORDER BY date, id", members,
        ).fetchall()
        return [i for (i,) in order]

    def tag_scores(self, ids: Iterable[int]) -> dict[int, tuple[dict[str, float], set[str]]]:
        """Per message: the model's probability of each tag, and the tags over threshold."""
        rows = self.db.execute(
            f"SELECT message, {', '.join(TAGS)}, labels FROM tags "
            "WHERE message IN (SELECT value FROM json_each(?))", (json.dumps(sorted(set(ids))),))
        return {r[0]: (dict(zip(TAGS, r[1:-1], strict=True)), set(r[-1].split())) for r in rows}

    def message_views(self, ids: Iterable[int], max_text: int) -> dict[int, MessageView]:
        """What a reader needs to see a message again: its headers and the sender's new text
        (cut at `max_text` characters)."""
        wanted = json.dumps(sorted(set(ids)))
        rows = self.db.execute(
            "SELECT id, date, from_name, from_addr, subject, message_id, new_text, folder "
            "FROM messages WHERE id IN (SELECT value FROM json_each(?))", (wanted,)).fetchall()
        recips: dict[int, dict[str, list[str]]] = {}
        for message, kind, name, address in self.db.execute(
                "SELECT message, kind, name, address FROM recipients "
                "WHERE message IN (SELECT value FROM json_each(?)) AND kind IN ('to', 'cc') "
                "ORDER BY rowid", (wanted,)):
            recips.setdefault(message, {}).setdefault(kind, []).append(shown(name, address))
        return {i: MessageView(i, date or "", shown(name, addr),
                               recips.get(i, {}).get("to", []), recips.get(i, {}).get("cc", []),
                               subject, message_id, folder, text[:max_text],
                               len(text) > max_text)
                for i, date, name, addr, subject, message_id, text, folder in rows}
