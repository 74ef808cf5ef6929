"""Tagging the store: request / offer / thanks / sales for every message.

The model's input frame is read from the store in SQL (the sender's counts
once per sender), tagged in worker processes, and written back a batch per
transaction.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mailnet.errors import MailnetError
from mailnet.features import SENDER_CAP, THREAD_OTHERS, THREAD_OWN
from mailnet.model import IntentModel
from mailnet.store import TAGS, Store
from mailnet.tokens import MAX_CHARS
from mailnet.workers import Workers

_THREAD_START = ("coalesce(nullif(substr(m.refs, 1, instr(m.refs || ' ', ' ') - 1), ''), "
                 "m.parent_id)")


def _written_to(who: str, tagged_only: bool = False) -> str:
    """SQL: some (tagged) message of someone else has address `who` in To or Cc."""
    tagged = " AND o.id IN (SELECT message FROM tags)" if tagged_only else ""
    return ("EXISTS (SELECT 1 FROM recipients r JOIN messages o ON o.id = r.message "
            f"WHERE r.address = {who} AND r.kind != 'reply-to' AND o.from_addr != {who}{tagged})")


# Per sender of the messages read, once each: how many messages they wrote (their first
# SENDER_CAP stored count), how many of those answer someone else's message in the store,
# and whether anyone else in the store writes to them (a pitch or a subscription is mail
# nobody answers or copies in).
_FIRST = ("(SELECT s.parent_id FROM messages s WHERE s.from_addr = a.from_addr "
          f"ORDER BY s.id LIMIT {SENDER_CAP})")
_SENDERS = f"""sender AS MATERIALIZED (
    SELECT a.from_addr, (SELECT count(*) FROM {_FIRST}) AS n,
        (SELECT count(*) FROM {_FIRST} f WHERE EXISTS (SELECT 1 FROM messages p
            WHERE p.message_id = f.parent_id AND p.from_addr != a.from_addr)) AS replies,
        {_written_to("a.from_addr")} AS addressed
    FROM (SELECT DISTINCT m.from_addr FROM messages m JOIN picked ON picked.id = m.id
          WHERE m.from_addr != '') a)"""
_FRAME_COLUMNS = f"""m.id, m.message_id, m.subject,
        substr(m.new_text, 1, {MAX_CHARS}) AS new_text, m.parent_id IS NOT NULL AS is_reply,
        m.list_id, m.precedence, m.from_addr, m.auto_submitted,
        coalesce((SELECT group_concat(r.address, ' ') FROM recipients r
                  WHERE r.message = m.id AND r.kind != 'reply-to'), '') AS recipients,
        CASE WHEN m.parent_id IS NULL THEN 0 ELSE coalesce(
            (SELECT CASE WHEN s.from_addr = m.from_addr THEN {THREAD_OWN} ELSE {THREAD_OTHERS} END
             FROM messages s WHERE s.message_id = {_THREAD_START} LIMIT 1), 0) END AS thread_role,
        coalesce(w.n, 1) AS sender_messages, coalesce(w.replies, 0) AS sender_replies,
        coalesce(w.addressed, 0) AS sender_addressed"""


# Tagged messages whose sender features the untagged mail changes: the sender has untagged
# mail and fewer than SENDER_CAP tagged messages, or untagged mail of someone else is the
# first to write to them.
_SENDER_CHANGED = f"""SELECT m.id FROM (
        SELECT DISTINCT from_addr FROM messages
        WHERE from_addr != '' AND id NOT IN (SELECT message FROM tags)) fresh
    JOIN messages m ON m.from_addr = fresh.from_addr JOIN tags t ON t.message = m.id
    WHERE (SELECT count(*) FROM (SELECT 1 FROM messages s JOIN tags ts ON ts.message = s.id
                                 WHERE s.from_addr = fresh.from_addr LIMIT {SENDER_CAP}))
          < {SENDER_CAP}
    UNION SELECT m.id FROM (
        SELECT DISTINCT r.address FROM messages o CROSS JOIN recipients r ON r.message = o.id
        WHERE o.id NOT IN (SELECT message FROM tags) AND r.kind != 'reply-to'
        AND o.from_addr != r.address) fresh
    JOIN messages m ON m.from_addr = fresh.address JOIN tags t ON t.message = m.id
    WHERE NOT {_written_to("fresh.address", tagged_only=True)}"""


def message_frame(store: Store, where: str = "", params: Sequence[object] = ()) -> pd.DataFrame:
    """Stored messages as the model's input frame (plus id and message_id), by row id."""
    return pd.read_sql_query(
        f"""WITH picked AS (SELECT m.id FROM messages m {where}), {_SENDERS}
            SELECT {_FRAME_COLUMNS} FROM messages m JOIN picked ON picked.id = m.id
            LEFT JOIN sender w ON w.from_addr = m.from_addr ORDER BY m.id""",
        store.db, params=tuple(params))


@dataclass(frozen=True)
class ClassifySummary:
    tagged: int
    seconds: float
    model_version: str
    # Messages still tagged by another model (one mailnet shipped before, or the user's
    # earlier one): `classify` tags only new mail, so a report would mix the two.
    other_models: dict[str, int]


_WORKER_MODEL: IntentModel | None = None  # the model, in a classify worker process


def _init_worker(model: IntentModel) -> None:
    global _WORKER_MODEL
    _WORKER_MODEL = model


def _tagged(model: IntentModel, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Row ids and their tag probabilities (the frame itself need not travel back)."""
    return frame["id"].to_numpy(), model.probabilities(frame)


def _worker_tagged(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    assert _WORKER_MODEL is not None
    return _tagged(_WORKER_MODEL, frame)


def classify_store(store: Store, model: IntentModel, *, retag: bool = False,
                   batch: int = 2500, workers: int = 0,
                   on_progress: Callable[[int, int], None] | None = None) -> ClassifySummary:
    """Tag every untagged message (every message with `retag`), a batch per transaction.

    The tagged messages of a sender with new mail are tagged again while that
    sender has fewer than :data:`SENDER_CAP` of them, and those of a sender
    new mail is the first to write to: their sender features changed, and a
    store tagged bit by bit is tagged as if all at once.
    Batches are tagged in `workers` processes (0: one per core) while this
    process reads and writes the store; each batch is committed on its own,
    so an interrupted run keeps its work.
    """
    start = time.perf_counter()
    todo_sql = ("SELECT id FROM messages" if retag else
                "SELECT id FROM messages WHERE id NOT IN (SELECT message FROM tags) "
                f"UNION {_SENDER_CHANGED}")
    todo = [i for (i,) in store.db.execute(f"{todo_sql} ORDER BY 1")]
    frames = (message_frame(store, f"WHERE m.id IN ({','.join(map(str, todo[lo:lo + batch]))})")
              for lo in range(0, len(todo), batch))
    workers = min(workers or os.cpu_count() or 1, math.ceil(len(todo) / batch))
    done = 0
    with contextlib.ExitStack() as stack:
        if workers > 1:
            model.pipeline.named_steps["features"].prepare()  # once here, inherited on fork
            pool = stack.enter_context(Workers(workers, _init_worker, (model,), ahead=1))
            results = pool.map(_worker_tagged, frames)
        else:
            results = (_tagged(model, frame) for frame in frames)
        for ids, probs in results:
            store.set_tags(((int(i), dict(zip(TAGS, p.tolist(), strict=True)), t)
                            for i, p, t in zip(ids, probs, model.tags(probs), strict=True)),
                           model.version)
            done += len(ids)
            if on_progress:
                on_progress(done, len(todo))
    return ClassifySummary(done, time.perf_counter() - start, model.version,
                           store.tagged_by_others(model.version))


def list_messages(store: Store, tag: str | None = None,
                  ids: Iterable[int] | None = None) -> pd.DataFrame:
    """Stored messages with their tags and tag probabilities, newest first.

    `tag` keeps messages carrying that tag; `ids` keeps only those row ids.
    Untagged messages (not yet classified) show no tags and no probabilities.
    """
    if tag is not None and tag not in TAGS:
        raise MailnetError(f"unknown tag {tag!r} (tags are {', '.join(TAGS)})")
    frame = pd.read_sql_query(
        f"""SELECT m.id, m.date, m.from_addr AS sender, m.subject, t.labels AS tags,
                   {", ".join(f"t.{t}" for t in TAGS)}, t.model_version, m.message_id
            FROM messages m LEFT JOIN tags t ON t.message = m.id
            ORDER BY m.date DESC, m.id DESC""", store.db)
    if ids is not None:
        frame = frame[frame["id"].isin(set(ids))]
    frame["tags"] = [t.split() if isinstance(t, str) else [] for t in frame["tags"]]
    if tag is not None:
        frame = frame[np.array([tag in t for t in frame["tags"]], dtype=bool)]
    frame["date"] = pd.to_datetime(frame["date"], utc=True, errors="coerce")
    return frame.drop(columns="id").reset_index(drop=True)


def uncertainty(model: IntentModel, probabilities: np.ndarray) -> np.ndarray:
    """How close a message's least clear tag is to its threshold (lower: less sure).

    Measured in log-odds, so 0.02 against a 0.01 threshold counts as far.
    """
    p = np.clip(probabilities, 1e-6, 1 - 1e-6)
    t = np.clip(model.pipeline[-1].thresholds_, 1e-6, 1 - 1e-6)
    return np.abs(np.log(p / (1 - p)) - np.log(t / (1 - t))).min(axis=1)
