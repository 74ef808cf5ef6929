"""FETCH responses and message structure: which parts of a message are its text.

BODYSTRUCTURE says which parts are text; a message with attachments is fetched
as its header plus its text parts and rebuilt (:func:`rebuild`) into a smaller
MIME message the ordinary parser reads, so attachment bytes are neither
downloaded nor parsed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

TEXT_LIMIT = 2 << 20  # a text part larger than this is treated as an attachment
MAX_UID = 2**32 - 1  # RFC 3501: UIDs, UIDVALIDITY and UIDNEXT are 32-bit
MAX_DEPTH = 64  # nesting of a BODYSTRUCTURE beyond which the message is refused


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


def leaves(part: Part, path: str = "") -> Iterator[tuple[str, Part]]:
    """Each part that is not multipart, with its section number (1, 2.1, …)."""
    if part.is_multipart:
        for i, child in enumerate(part.children, 1):
            yield from leaves(child, f"{path}.{i}" if path else str(i))
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
    return [s for path, leaf in leaves(structure) if leaf.is_text and path not in skip
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
