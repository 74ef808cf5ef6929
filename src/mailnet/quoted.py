"""The message a reply quotes, recovered when the mailbox lost it.

Archives without reply headers (Lotus Notes and PST exports, the whole Enron
corpus) often keep the owner's replies but not what they answered. An Outlook
or Notes reply quotes that original under a header block (From / Sent / To /
Subject): read from the reply, it is the other person's own message: who wrote
it, when, to whom, and what. A careful reader of such a mailbox reads those
quotes; so does mailnet. The original is stored as a *recovered* message
(`messages.recovered`): it counts like any other, except that it is no sign of
what the mailbox kept (mailnet.ledger), and a stored copy of the same message
wins over it (mailnet.contacts.exchanges).

Only replies without reply headers are read this way: where there are headers,
the original is found by its Message-ID.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dateutil import parser as dateparser

from mailnet.addresses import Address, normalise_address
from mailnet.newtext import extract_new_text
from mailnet.threads import normalise_subject

_FIELD = re.compile(r"^\s*\*?(From|Sent|Date|To|Cc|Subject)\s*:\*?\s*(.*)$", re.IGNORECASE)
_SEPARATOR = re.compile(r"^\s*-{2,}.*-{2,}\s*$|^\s*_{10,}\s*$")
_NOTES_ON = re.compile(r"\s+on\s+(\d{1,2}/\d{1,2}/\d{2,4}.*)$", re.IGNORECASE)
_NOTES_DATE = re.compile(r"\d{1,2}/\d{1,2}/\d{2,4}(\s+\d{1,2}:\d{2}(:\d{2})?\s*([AP]M)?)?",
                         re.IGNORECASE)
_ADDRESS = re.compile(r"[\w.+'-]+@[\w-]+(\.[\w-]+)+")
_WORD = re.compile(r"[^\W\d_]+")
# Where a written sender's name ends: "Lee, Ann [mailto:ann@x]", "Ann Lee/HOU/ECT@ECT",
# "Ann Lee <ann@x>", "ann@x (Ann Lee)".
_NAME_END = re.compile(r"[/@<(\[]")
_HEADER_LINES = 20  # a header block (with a wrapped To: list) is no longer than this
_MAX_TEXT = 20_000  # characters of the quoted text read


@dataclass(frozen=True)
class Quoted:
    """What a reply's quoted header block says of the original, and its text."""

    sender: str  # as written: "Lavorato, John", "John Lavorato@ECT", an address
    date: str
    to: list[str]
    cc: list[str]
    subject: str
    text: str  # what the original's sender wrote (its own quotes cut)


def _split_names(value: str) -> list[str]:
    """"Presto, Kevin M.; Belden, Tim" → the names (Outlook separates them with ";")."""
    parts = value.split(";") if ";" in value else [value] if value.count(",") == 1 \
        else value.split(",")
    return [p.strip() for p in parts if p.strip()]


def read_quoted(lines: list[str] | None) -> Quoted | None:
    """The original under an Outlook or Notes header block: the lines
    :func:`mailnet.newtext.split_reply` found it in."""
    if not lines:
        return None
    i = 1 if _SEPARATOR.match(lines[0]) else 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    fields: dict[str, str] = {}
    lead: list[str] = []  # a Notes header's name and date lines, above "To:"
    key = ""
    end = min(len(lines), i + _HEADER_LINES)
    while i < end and lines[i].strip():
        match = _FIELD.match(lines[i])
        if match:
            key = match.group(1).lower()
            key = "sent" if key == "date" else key
            fields[key] = match.group(2).strip()
        elif key and key != "subject":  # a wrapped To:/Cc: list
            fields[key] += " " + lines[i].strip()
        elif not fields:
            lead.append(lines[i].strip())
        i += 1
    if "from" not in fields and lead:  # Lotus Notes: "Name@ORG on DATE" or two lines
        joined = " ".join(lead)
        on = _NOTES_ON.search(joined)
        fields["from"] = joined[:on.start()] if on else lead[0]
        date = _NOTES_DATE.search(joined[on.start():] if on else " ".join(lead[1:]))
        fields["sent"] = date.group(0) if date else ""
    if not fields.get("from") or "subject" not in fields:
        return None
    text = extract_new_text("\n".join(lines[i:])[:_MAX_TEXT])
    return Quoted(fields["from"], fields.get("sent", ""), _split_names(fields.get("to", "")),
                  _split_names(fields.get("cc", "")), fields["subject"], text)


def _tokens(text: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(text)]


def resolve(name: str, candidates: list[Address]) -> Address | None:
    """The one candidate `name` can only mean: by its address if it shows one, else by
    name: every word of the candidate's address (before the @) is a word of the name,
    a one-letter word its initial. Ambiguous or unknown: None."""
    address = _ADDRESS.search(name)
    if address and "." in address.group(0).rpartition("@")[2]:
        found = normalise_address(address.group(0))
        return next((c for c in candidates if c.address == found), Address("", found))
    bare = _NAME_END.split(name, maxsplit=1)[0]
    words = _tokens(bare)
    initials = {w[0] for w in words}
    if not words:
        return None
    matches = []
    for c in candidates:
        local = [w for w in re.split(r"[._\-+']+", c.address.rpartition("@")[0].casefold()) if w]
        if any(len(w) > 1 for w in local) and all(
                (w in words) if len(w) > 1 else (w in initials) for w in local):
            matches.append(c)
    return matches[0] if len({m.address for m in matches}) == 1 else None


def recovered_id(sender: str, date: datetime, subject: str) -> str:
    """One Message-ID for one original, whichever reply it was read from."""
    key = f"{sender}|{date:%Y-%m-%dT%H:%M}|{normalise_subject(subject)[0]}"
    return f"recovered.{hashlib.sha1(key.encode()).hexdigest()[:24]}@mailnet.invalid"


# The zone names mail headers may carry (RFC 5322's obsolete zones), as UTC offsets.
_ZONES = {"UT": 0, "UTC": 0, "GMT": 0, "Z": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5,
          "MST": -7, "MDT": -6, "PST": -8, "PDT": -7}


def _zone(name: str | None, offset: int | None) -> int | None:
    """A written zone as seconds east of UTC: a numeric offset, a known name, or None (the
    reply's zone). Never the machine's own zone, which dateutil would take for its names."""
    if offset is not None:
        return offset
    hours = _ZONES.get((name or "").upper())
    return None if hours is None else hours * 3600


def original_date(written: str, reply: datetime) -> datetime:
    """The quoted "Sent:" date in the reply's own time zone (the writer's clock and the
    replier's are one office's, or unknown); never after the reply."""
    latest = reply - timedelta(minutes=1)
    try:
        local = dateparser.parse(written, fuzzy=True, default=reply.replace(tzinfo=None),
                                 tzinfos=_zone)
    except (ValueError, OverflowError):
        return latest
    when = local.replace(tzinfo=reply.tzinfo) if local.tzinfo is None else local
    return min(when, latest) if when > reply - timedelta(days=366) else latest


def with_resolved(q: Quoted, candidates: list[Address]
                  ) -> tuple[Address, list[Address], list[Address]] | None:
    """Sender, To and Cc of the quoted original as addresses among `candidates` (the
    reply's own sender and recipients); None when the sender cannot be told."""
    sender = resolve(q.sender, candidates)
    if sender is None:
        return None
    sender = replace(sender, name=sender.name
                     or _NAME_END.split(q.sender, maxsplit=1)[0].strip().strip('"'))

    def each(names: list[str]) -> list[Address]:
        return [w for w in (resolve(n, candidates) for n in names) if w]

    return sender, each(q.to), each(q.cc)
