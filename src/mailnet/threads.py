"""Threads without reply headers: a "Re:" message linked to the message it answers.

Many real archives (Lotus Notes and PST exports, the whole Enron corpus) carry
no In-Reply-To or References. Mail clients then thread by subject (the
fallback of JWZ threading); mailnet does the same, more cautiously: a message
whose subject has a reply or forward prefix (`Re:`, `RE:`, `Fw:`, `AW:`,
`SV:`, `回复:` ...) answers the latest earlier message of the same normalised
subject *between the same people* (the earlier sender is among this message's
recipients, or this sender among the earlier one's), written at most
:data:`MAX_DAYS` days before. Such links are stored as inferred; a link from
reply headers always wins.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_DAYS = 30  # an answer comes within a month; older same-subject mail is another exchange
_FORWARDS = r"fwd?|wg|tr|rv|转发|轉寄"
_REPLIES = r"re|aw|sv|vs|vb|antw|odp|ynt|回复|回覆|答复|答覆"
_PREFIX = re.compile(
    rf"^\s*(?:(?:{_REPLIES}|{_FORWARDS})\s*(?:\[\d+\]|\(\d+\))?\s*[:：]|\[[^\]]{{1,60}}\])\s*",
    re.IGNORECASE,
)
# A subject that starts with a forward prefix: an FYI forward, which asks no answer.
FORWARD_SUBJECT = rf"^\s*(?:{_FORWARDS})\s*[:：]"
_REPLY_ONLY = re.compile(r"\[[^\]]*\]")  # a list tag alone does not make a reply


def normalise_subject(subject: str) -> tuple[str, bool]:
    """The subject without reply/forward prefixes and list tags, lower-cased, and whether
    it had a reply or forward prefix."""
    rest, reply = subject, False
    while match := _PREFIX.match(rest):
        reply |= not _REPLY_ONLY.fullmatch(match.group(0).strip())
        rest = rest[match.end():]
    return " ".join(rest.lower().split()), reply


@dataclass(frozen=True)
class ThreadRow:
    """What subject threading needs of one stored message."""

    id: int
    message_id: str
    date: datetime | None
    sender: str
    recipients: frozenset[str]
    subject: str  # normalised
    reply: bool  # the subject has a reply or forward prefix
    needs_parent: bool  # a reply without a header link


def infer_parents(rows: Iterable[ThreadRow]) -> dict[int, str]:
    """Row id of each reply without a header link -> Message-ID of the message it answers."""
    by_subject: dict[str, list[ThreadRow]] = defaultdict(list)
    for row in rows:
        if row.date is not None and row.subject:
            by_subject[row.subject].append(row)
    found: dict[int, str] = {}
    window = timedelta(days=MAX_DAYS)
    for group in by_subject.values():
        if not any(r.needs_parent for r in group):
            continue
        group.sort(key=lambda r: (r.date, r.id))
        for k, child in enumerate(group):
            if not child.needs_parent:
                continue
            for j in range(k - 1, -1, -1):  # the latest earlier message first
                parent = group[j]
                if child.date - parent.date > window:
                    break
                if parent.message_id != child.message_id and parent.sender != child.sender \
                        and parent.date < child.date and (
                            parent.sender in child.recipients
                            or child.sender in parent.recipients):
                    found[child.id] = parent.message_id
                    break
    return found
