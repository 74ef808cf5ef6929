"""Raw message → :class:`ParsedMessage`: who, to whom, when, thread links, and the text.

The standard library's `email` (compat32, its fastest policy) splits the
MIME structure; mail-parser's decoders turn the few headers mailnet reads
into text: addresses with their encoded display names, encoded words,
dates in every obsolete form. Only those headers are handed to the
splitter (a list message carries dozens: DKIM, ARC, the Received trace,
of which only the newest date is kept as a fallback), and only the text
parts are decoded, so attachments cost nothing but the split. Building
mail-parser's full forensic view (every header, defects, attachments
re-encoded to base64) would cost more than the rest of the import.
"""

from __future__ import annotations

import email
import email.message
import email.parser
import email.utils
import functools
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from inscriptis import get_text
from mailparser.dates import parse_mail_date
from mailparser.utils import decode_header_part

from mailnet.addresses import Address, is_automated_address, normalise_address
from mailnet.newtext import extract_new_text, split_reply
from mailnet.quoted import original_date, read_quoted, recovered_id, with_resolved
from mailnet.sources import MAX_MESSAGE_BYTES, Origin, RawMessage


class ParseError(Exception):
    """A message that cannot be turned into a record; the reason says why."""


@dataclass
class ParsedMessage:
    """One message as every later stage sees it."""

    message_id: str
    origin: Origin
    sender: Address | None
    to: list[Address]
    cc: list[Address]
    reply_to: list[Address]
    date: datetime | None
    subject: str
    in_reply_to: str | None
    references: list[str]
    list_id: str
    list_post: str
    list_unsubscribe: str
    precedence: str
    auto_submitted: str
    size: int
    new_text: str
    is_bulk: bool
    content_hash: str
    note: str = ""  # why only part of the message was read, recorded with the errors
    recovered: bool = False  # read from the quote in a reply (mailnet.quoted), not stored
    quoted: ParsedMessage | None = None  # the original this reply quotes, recovered

    @property
    def parent_id(self) -> str | None:
        """The message this one answers: In-Reply-To, else the last of References."""
        return self.in_reply_to or (self.references[-1] if self.references else None)


_MSGID = re.compile(r"<([^<>\s]+)>")
# A folded, broken id ("<1a2b@Received: from ..."): its first token is still usable.
_BROKEN_MSGID = re.compile(r"<([^<>\s:]+)")
_TEXT_TYPES = ("text/plain", "text/html")
_KEPT_HEADERS = frozenset({
    b"from", b"sender", b"to", b"cc", b"reply-to", b"date", b"subject", b"message-id",
    b"in-reply-to", b"references", b"list-id", b"list-post", b"list-unsubscribe",
    b"precedence", b"auto-submitted", b"mime-version", b"content-type",
    b"content-transfer-encoding", b"content-disposition",
})


def message_ids(value: str) -> list[str]:
    """Message-IDs in a header value, without angle brackets; a bare id is accepted, and of
    a broken one (no closing bracket) the first token, up to a space or colon."""
    found = _MSGID.findall(value or "")
    if found:
        return found
    bare = (value or "").strip()
    if broken := _BROKEN_MSGID.search(bare):
        return [broken.group(1)]
    return [bare] if bare and " " not in bare and "@" in bare else []


def _slim_headers(data: bytes) -> tuple[bytes, str | None]:
    """The message with only the headers mailnet reads, and the newest Received value.

    mail-parser decodes every header it is handed, and a list message carries
    dozens (DKIM, ARC, Received trace); dropping them before parsing is cheaper
    than deleting them from a parsed message.
    """
    ends = [i for i in (data.find(b"\n\n"), data.find(b"\r\n\r\n")) if i >= 0]
    split = min(ends) if ends else len(data)
    kept: list[bytes] = []
    received: list[bytes] = []
    current: list[bytes] | None = None
    for line in data[:split].splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):  # a folded continuation of the header above
            if current is not None:
                current.append(line)
            continue
        name = line.split(b":", 1)[0].strip().lower()
        if name in _KEPT_HEADERS:
            current = kept
        elif name == b"received" and not received:
            current = received
        else:
            current = None
        if current is not None:
            current.append(line)
    newest = b"".join(received).split(b":", 1)[1].decode("ascii", "replace") if received else None
    return b"".join(kept) + data[split:], newest


def _received_date(received: str | None) -> datetime | None:
    if not received or ";" not in received:
        return None
    return parse_mail_date(" ".join(received.rsplit(";", 1)[1].split())).value


_FOLD = re.compile(r"\r?\n(?=[ \t])")
_MAILBOX = re.compile(r"[^@\s\"<>()\[\],;:]+@[^@\s\"<>()\[\],;:]+")


# Decoding encoded words takes time quadratic in a header's length (64 KB: 0.1 s, 1 MB:
# half a minute); no real header mailnet reads comes near this.
MAX_HEADER_CHARS = 16_000
# Bounds on a message's text, so every later step is bounded too: lxml gives up on HTML over
# 10 MB (inscriptis then returns nothing), and no one writes a million characters by hand.
MAX_HTML_CHARS = 1_000_000
MAX_BODY_CHARS = 1_000_000
MAX_NEW_TEXT_CHARS = 100_000


def _capped(name: str, value: str) -> str:
    """At most MAX_HEADER_CHARS of a header, in whole words: the newest end of References,
    else the start."""
    if len(value) <= MAX_HEADER_CHARS:
        return value
    if name == "references":
        return value[-MAX_HEADER_CHARS:].split(None, 1)[-1]  # from a whole Message-ID on
    return value[:MAX_HEADER_CHARS].rsplit(None, 1)[0]  # up to a whole word


def _first_headers(msg: email.message.Message) -> dict[str, str]:
    """Each header's first value as sent, unfolded and capped; 8-bit bytes read as UTF-8."""
    first: dict[str, str] = {}
    for name, value in msg.raw_items():
        first.setdefault(name.lower(), value)
    return {name: _capped(name, _FOLD.sub("", value.encode("utf-8", "surrogateescape")
                                          .decode("utf-8", "replace")))
            for name, value in first.items()}


def _html_text(html: str) -> str:
    """HTML as text; a page over the cap is cut before its last tag that fits."""
    if len(html) > MAX_HTML_CHARS:
        cut = html.rfind("<", 0, MAX_HTML_CHARS)
        html = html[:cut if cut > 0 else MAX_HTML_CHARS]
    return get_text(html)


# Decoding is cached: the same list addresses, list headers and senders come back
# in message after message, and the standard library's address parser reads
# character by character.
@functools.lru_cache(maxsize=8192)
def _mailboxes(value: str) -> tuple[Address, ...]:
    """The mailboxes of an address header, display names decoded; groups and junk dropped."""
    found = []
    for name, addr in email.utils.getaddresses([value]):
        if _MAILBOX.fullmatch(addr):
            name = " ".join(decode_header_part(name).split())
            found.append(Address("" if name.lower() == addr.lower() else name,
                                 normalise_address(addr)))
    return tuple(found)


@functools.lru_cache(maxsize=8192)
def _decoded(value: str) -> str:
    """A header value with its encoded words decoded, on one line."""
    return " ".join(decode_header_part(value).split())


def _part_text(part: email.message.Message) -> str:
    """A text part's payload in its declared charset, else UTF-8 (the usual mislabel).

    NFC, so that "vào" typed with combining accents reads like the precomposed one.
    """
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes) or not payload:
        return ""
    try:
        text = payload.decode(part.get_content_charset() or "utf-8")
    except (LookupError, UnicodeError):
        text = payload.decode("utf-8", "replace")
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def body_text(msg: email.message.Message) -> str:
    """The message's text: its text/plain parts, else (or when they are a short stand-in:
    a list footer, "view it online", a line the HTML says far more than) its HTML as text.

    Attachments are skipped: parts with a file name or an attachment disposition.
    """
    plain: list[str] = []
    html: list[str] = []
    for part in msg.walk():
        kind = part.get_content_type()
        if kind not in _TEXT_TYPES or part.get_filename() or (
                part.get_content_disposition() == "attachment"):
            continue
        if text := _part_text(part):
            (plain if kind == "text/plain" and not _HTML_PAGE.match(text) else html).append(text)
    text = "\n".join(plain)
    if html and (not plain or len(text) <= _STUB_MAX):
        shown = "\n".join(_html_text(h) for h in html)
        if not plain or _says_less(text, shown):
            text = shown
    return text[:MAX_BODY_CHARS]


# A "text/plain" part that is an HTML page (an old client's mislabel, or an archive that
# typed every body as plain text): its words are what the sender wrote, not its tags.
_HTML_PAGE = re.compile(r"\s*<(!doctype\s+html|html[\s>]|head>)", re.IGNORECASE)
# "View this e-mail in your browser" and the like: a plain part that only points at the HTML.
_STUB = re.compile(
    r"view (this|it|the) (e-?mail|message|newsletter)|(view|read|see) (it )?(online|in (your|a) "
    r"(web )?browser)|html version|(e-?mail|mail client|program) (does not|doesn't|cannot) "
    r"(support|display)|can(no|')t (see|read|view) this|enable html",
    re.IGNORECASE)
_STUB_MAX = 600  # characters: a longer plain part says something of its own
# A short plain part whose HTML says this many times more (and some) is a stand-in for it:
# "This is a plain-text message body", or the like in any language.
_STUB_RATIO, _STUB_SLACK = 4, 100


def _says_less(plain: str, shown: str) -> bool:
    """A short plain part that is only a list footer, a "view it online" stub or a line
    standing in for the HTML (`shown`, as text), which holds the message."""
    said = extract_new_text(plain)
    return not said or bool(_STUB.search(plain)) or (
        len(extract_new_text(shown)) >= _STUB_RATIO * len(said) + _STUB_SLACK)


def _unmunged(sender: Address | None, reply_to: list[Address], list_post: str) -> Address | None:
    """The real author of a list message whose From was rewritten to the list (DMARC).

    Mailman sends "Rob via USRP-users <usrp-users@lists…>" with the author in Reply-To.
    """
    if sender is None or not list_post or sender.address != list_post:
        return sender
    authors = [a for a in reply_to if a.address != list_post]
    if len(authors) == 1:
        return authors[0]
    name = re.sub(r"\s+via\s+\S+$", "", sender.name)
    return Address(name, sender.address)


def _list_wrapped(msg: email.message.Message, author: Address | None) -> email.message.Message:
    """The author's own message when the list wrapped it whole (Mailman's DMARC "wrap":
    a notice of the list's, then the original attached), else `msg`.

    Only an attached message from the author counts: one from anyone else is a
    forward, whose text around it is the author's.
    """
    for part in msg.walk():
        if part.get_content_type() == "message/rfc822" and part.is_multipart():
            inner = part.get_payload(0)
            inner_from = list(_mailboxes(str(inner.get("from", ""))))
            if author and inner_from and inner_from[0].address == author.address:
                return inner
    return msg


def content_hash(data: bytes) -> str:
    """Identity of a message's exact bytes: a second delivery differs, a re-import does not."""
    return hashlib.sha256(data).hexdigest()


def _stable_id(raw: bytes) -> str:
    headers = raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    return "mailnet-" + hashlib.sha256(headers).hexdigest()[:32] + "@generated"


def _is_bulk(sender: Address | None, precedence: str, auto_submitted: str,
             list_unsubscribe: str) -> bool:
    """Machines and mass mailings; a discussion list (Precedence: list) is people talking."""
    precedence = precedence.lower()
    if auto_submitted and auto_submitted.lower() != "no":
        return True
    if sender is None or is_automated_address(sender.address):
        return True
    return precedence == "junk" or (precedence == "bulk" and bool(list_unsubscribe))


def parse_message(raw: RawMessage) -> ParsedMessage:
    """Parse one raw message, or raise :class:`ParseError` with the reason."""
    if not raw.data.strip():
        raise ParseError("empty message")
    size = len(raw.data) + raw.dropped
    # Sources cut a message at the cap as they read it; a fetched one is cut here.
    slim, newest_received = _slim_headers(raw.data[:MAX_MESSAGE_BYTES])
    note = ""
    try:
        msg = email.message_from_bytes(slim)
    except RecursionError:  # MIME parts nested thousands deep: keep who, when and what about
        msg = email.parser.BytesParser().parsebytes(slim, headersonly=True)
        msg.set_payload("")
        note = "MIME parts nested too deep to read: only its headers were read"
    except Exception as exc:  # the email package raises anything on hostile input
        raise ParseError(f"unreadable MIME structure: {exc}") from None
    if not msg.keys():
        raise ParseError("no headers")
    headers = _first_headers(msg)

    def text(name: str) -> str:
        return _decoded(headers[name]) if name in headers else ""

    def mailboxes(name: str) -> list[Address]:
        return list(_mailboxes(headers[name])) if name in headers else []

    senders = mailboxes("from") or mailboxes("sender")
    sender = senders[0] if senders else None
    ids = message_ids(text("message-id"))
    message_id = ids[0] if ids else _stable_id(raw.data)
    references = message_ids(text("references"))
    in_reply = message_ids(text("in-reply-to"))
    list_id, list_unsub = text("list-id"), text("list-unsubscribe")
    precedence, auto = text("precedence"), text("auto-submitted")
    post = text("list-post")
    list_post = normalise_address(post.split("mailto:", 1)[1].split(">", 1)[0].split("?")[0]) \
        if "mailto:" in post else ""
    reply_to = mailboxes("reply-to")
    listed, sender = sender, _unmunged(sender, reply_to, list_post)
    subject = text("subject")
    stamp = parse_mail_date(headers.get("date"))
    date = stamp.value or _received_date(newest_received)
    body = body_text(_list_wrapped(msg, sender) if sender != listed else msg)
    new_text, original = split_reply(body)
    new_text = new_text[:MAX_NEW_TEXT_CHARS]
    to, cc = mailboxes("to"), mailboxes("cc")
    # The sender's own clock: a quoted date is written in it, without a zone.
    clock = timezone(timedelta(hours=float(stamp.timezone))) if stamp.value else None
    quoted = _recovered(original, raw.origin, clock, date, [
        a for a in [sender, *to, *cc] if a]) if date and not (in_reply or references) else None
    return ParsedMessage(
        message_id=message_id,
        origin=raw.origin,
        sender=sender,
        to=to,
        cc=cc,
        reply_to=reply_to,
        date=date,
        subject=subject,
        in_reply_to=in_reply[0] if in_reply else None,
        references=references,
        list_id=list_id,
        list_post=list_post,
        list_unsubscribe=list_unsub,
        precedence=precedence,
        auto_submitted=auto,
        size=size,
        new_text=new_text,
        is_bulk=_is_bulk(sender, precedence, auto, list_unsub),
        content_hash=content_hash(raw.data),
        note=(f"{size:,} bytes, over the {MAX_MESSAGE_BYTES >> 20} MiB cap: only its start "
              "was read (attachments beyond it skipped)")
        if size > MAX_MESSAGE_BYTES else note,
        quoted=quoted,
    )


def _recovered(original: list[str] | None, origin: Origin, clock: timezone | None,
               date: datetime, people: list[Address]) -> ParsedMessage | None:
    """The original a reply without reply headers quotes (mailnet.quoted), as a message
    of its own: from one of the reply's own people, dated by its quoted header, read
    on the reply's `clock`."""
    q = read_quoted(original)
    who = with_resolved(q, people) if q and q.text else None
    if not who:
        return None
    sender, to, cc = who
    reply = date.astimezone(clock) if clock else date
    when = original_date(q.date, reply).astimezone(date.tzinfo)
    text = q.text[:MAX_NEW_TEXT_CHARS]
    return ParsedMessage(
        message_id=recovered_id(sender.address, when, q.subject),
        origin=Origin(origin.source, origin.folder, f"{origin.position}#quoted"),
        sender=sender, to=to, cc=cc, reply_to=[], date=when, subject=q.subject,
        in_reply_to=None, references=[], list_id="", list_post="", list_unsubscribe="",
        precedence="", auto_submitted="", size=len(text), new_text=text, is_bulk=False,
        content_hash=content_hash(text.encode("utf-8", "replace")), recovered=True)
