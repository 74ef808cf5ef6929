"""Where raw messages come from: mbox (plain, .gz, .xz), maildir, .eml files.

Every source is an iterable of :class:`RawMessage` that remembers where each
message came from, so the IMAP fetcher and the local importers feed the same
pipeline. Sources only read: nothing here ever writes to a mailbox.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from mailnet.errors import MailnetError


class SourceError(MailnetError):
    """A path that does not exist or holds no mail."""


@dataclass(frozen=True)
class Origin:
    """Where a message was read: the source (file, account), its folder, and its position there."""

    source: str
    folder: str
    position: str


# A message's bytes beyond this are not read: headers and text parts come first, and
# holding more (a decompression bomb is one "message" of gigabytes) would not bound memory.
MAX_MESSAGE_BYTES = 8 << 20


@dataclass(frozen=True)
class RawMessage:
    """A message's bytes; `dropped` bytes beyond the cap were skipped, unread. A message
    that could not be read at all has no data and an `error` saying why."""

    data: bytes
    origin: Origin
    dropped: int = 0
    error: str | None = None


class Source(Protocol):
    """An iterable of raw messages whose progress can be read as bytes consumed of `size`."""

    name: str
    size: int
    consumed: int

    def __iter__(self) -> Iterator[RawMessage]: ...


_OPENERS = {".gz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}
_MBOX_SUFFIXES = (".mbox", ".mbx", ".mbox.gz", ".mbox.xz", ".mbox.bz2")
# A message starts at every line that begins with "From " (mboxrd, and Python's mailbox):
# writers escape such lines in bodies, and not all of them put a blank line before it.
_FROM_LINE = re.compile(rb"\nFrom ")
# What a damaged .gz/.xz/.bz2 raises part-way through.
_DAMAGE = (EOFError, OSError, lzma.LZMAError, zlib.error)
# mboxo/mboxrd escape "From " at a line start with ">" when writing.
_ESCAPED_FROM = re.compile(rb"^>(>*From )", re.M)


def _folder_name(path: Path) -> str:
    """A folder name from a file name: `Sent.mbox.xz` → `Sent`."""
    name = path.name
    for suffix in (".gz", ".xz", ".bz2", ".mbox", ".mbx"):
        name = name.removesuffix(suffix)
    return name or "INBOX"


class _CountingReader:
    """Wraps the on-disk file so progress is measured in compressed bytes read."""

    def __init__(self, raw: BinaryIO, owner: MboxSource) -> None:
        self._raw = raw
        self._owner = owner

    def read(self, n: int = -1) -> bytes:
        chunk = self._raw.read(n)
        self._owner.consumed += len(chunk)
        return chunk

    def readinto(self, buf: bytearray) -> int:
        n = self._raw.readinto(buf)
        self._owner.consumed += n or 0
        return n

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()


class MboxSource:
    """A (possibly compressed) mbox file, read as a stream.

    The standard library's `mailbox.mbox` needs a seekable, uncompressed
    file and builds a table of contents first; streaming the split ourselves
    reads a 360 MB .xz archive in one pass with constant memory.
    """

    def __init__(self, path: Path, folder: str | None = None) -> None:
        self.path = path
        self.name = str(path)
        self.folder = folder or _folder_name(path)
        self.size = path.stat().st_size
        self.consumed = 0

    def _open(self) -> BinaryIO:
        raw = open(self.path, "rb")  # noqa: SIM115 - closed by the caller via the wrapper
        opener = _OPENERS.get(self.path.suffix)
        counted = _CountingReader(raw, self)
        return opener(counted, "rb") if opener else counted  # type: ignore[return-value]

    def __iter__(self) -> Iterator[RawMessage]:
        self.consumed = 0
        fh = self._open()
        try:
            yield from self._split(fh)
        finally:
            fh.close()

    def _split(self, fh: BinaryIO) -> Iterator[RawMessage]:
        """Messages in file order. Each chunk read is searched once (a search of the whole
        pending buffer per chunk was quadratic on one huge message), and only the first
        :data:`MAX_MESSAGE_BYTES` of a message are kept."""
        message = _Pending()
        index = 0
        # read1: a decompressor's output step by step, so damage loses only its own step.
        read = getattr(fh, "read1", fh.read)
        tail = b""  # the end of the last chunk, where a "\nFrom " may have been cut
        cr_only: bool | None = None
        while True:
            try:
                chunk = read(1 << 22)
            except _DAMAGE as exc:
                yield self._damaged(index, exc)
                return
            if cr_only is None and chunk:  # old Mac mail: lines end in CR alone
                cr_only = b"\n" not in chunk and b"\r" in chunk
            if cr_only:
                chunk = chunk.replace(b"\r", b"\n")
            data = tail + chunk
            start = 0
            for match in _FROM_LINE.finditer(data):
                message.add(data[start:match.start() + 1])
                if raw := message.finish(Origin(self.name, self.folder, f"#{index}")):
                    yield raw
                    index += 1
                start = match.start() + 1
            keep = max(start, len(data) - 5) if chunk else len(data)
            message.add(data[start:keep])
            tail = data[keep:]
            if not chunk:
                if raw := message.finish(Origin(self.name, self.folder, f"#{index}")):
                    yield raw
                return

    def _damaged(self, index: int, exc: BaseException) -> RawMessage:
        """The error that ends a damaged archive: what was read before it is kept."""
        reason = (f"damaged archive ({type(exc).__name__}: {exc}) after "
                  f"{self.consumed:,} bytes: message #{index} and everything after it "
                  f"cannot be read; the {index:,} messages before it are kept")
        return RawMessage(b"", Origin(self.name, self.folder, f"#{index}"), error=reason)


class _Pending:
    """The message being read from an mbox, up to the byte cap."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.dropped = 0

    def add(self, data: bytes) -> None:
        room = MAX_MESSAGE_BYTES - self.size
        if room > 0:
            self.parts.append(data[:room])
            self.size += min(room, len(data))
        self.dropped += max(0, len(data) - max(room, 0))

    def finish(self, origin: Origin) -> RawMessage | None:
        """The message read so far (None for the blank space before the first one); resets."""
        piece, dropped = b"".join(self.parts), self.dropped
        self.parts, self.size, self.dropped = [], 0, 0
        if piece.startswith(b"From "):
            piece = piece[piece.find(b"\n") + 1:] if b"\n" in piece else b""
        if not piece.strip() and not dropped:
            return None
        if b">From " in piece:
            piece = _ESCAPED_FROM.sub(rb"\1", piece)
        return RawMessage(piece.rstrip(b"\r\n") + b"\n", origin, dropped)


class FileSource:
    """A list of one-message files (.eml or maildir entries), each its own message."""

    def __init__(self, name: str, files: list[tuple[Path, str]]) -> None:
        self.name = name
        self.files = files
        self.size = sum(p.stat().st_size for p, _ in files)
        self.consumed = 0

    def __iter__(self) -> Iterator[RawMessage]:
        self.consumed = 0
        for path, folder in self.files:
            with open(path, "rb") as fh:
                data = fh.read(MAX_MESSAGE_BYTES)
            size = path.stat().st_size
            self.consumed += size
            yield RawMessage(data, Origin(self.name, folder, str(path)),
                             max(0, size - len(data)))


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() and (path / "new").is_dir()


def _maildir_files(root: Path) -> list[tuple[Path, str]]:
    """Messages of a maildir and its Maildir++ subfolders (`.Sent`, `.Work.Clients`)."""
    folders = [(root, "INBOX")]
    folders += [(sub, sub.name[1:].replace(".", "/")) for sub in sorted(root.iterdir())
                if sub.name.startswith(".") and sub.is_dir() and _is_maildir(sub)]
    files = []
    for folder_path, folder in folders:
        for part in ("cur", "new"):
            files += [(p, folder) for p in sorted((folder_path / part).iterdir()) if p.is_file()]
    return files


def _looks_like_mbox(path: Path) -> bool:
    """Whether `path` is an mbox: it starts with a "From " line, or it is empty and named
    like one. A file named like one that is not one is a :class:`SourceError` saying why."""
    named = path.name.lower().endswith(_MBOX_SUFFIXES)
    opener = _OPENERS.get(path.suffix)
    head = b""
    try:
        with (opener or open)(path, "rb") as fh:
            while len(head) < 4096 and (step := fh.read1(4096)):
                head += step
    except _DAMAGE as exc:
        if named and not head:
            raise SourceError(f"{path}: damaged archive, nothing in it can be read "
                              f"({type(exc).__name__}: {exc})") from None
        return False
    if head.lstrip().startswith(b"From ") or (named and not head.strip()):
        return True
    if named:
        raise SourceError(f'{path}: not an mbox file (it does not start with a "From " line)')
    return False


def _looks_like_message(path: Path) -> bool:
    if path.suffix.lower() == ".eml":
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    first = head.split(b"\n", 1)[0]
    return b":" in first and not first.startswith((b" ", b"\t")) and first.split(b":")[0].isascii()


def open_source(path: Path) -> list[Source]:
    """The sources a path holds, or a :class:`SourceError` saying why it holds none."""
    if not path.exists():
        raise SourceError(f"{path}: no such file or directory")
    if path.is_file():
        if _looks_like_mbox(path):
            return [MboxSource(path)]
        if _looks_like_message(path):
            return [FileSource(str(path), [(path, path.parent.name or "INBOX")])]
        raise SourceError(f"{path}: not an mbox file or an email message")
    if _is_maildir(path):
        return [FileSource(str(path), _maildir_files(path))]
    sources: list[Source] = []
    emls: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        here = Path(dirpath)
        if _is_maildir(here) and here != path:
            sources.append(FileSource(str(here), _maildir_files(here)))
            dirnames.clear()
            continue
        for fname in sorted(filenames):
            fpath = here / fname
            if fname.lower().endswith(".eml"):
                rel = here.relative_to(path)
                emls.append((fpath, str(rel) if str(rel) != "." else "INBOX"))
            elif _looks_like_mbox(fpath):
                sources.append(MboxSource(fpath))
    if emls:
        sources.append(FileSource(str(path), emls))
    if not sources:
        raise SourceError(f"{path}: no mbox, maildir or .eml files found")
    return sources


def open_sources(paths: Iterable[Path]) -> list[Source]:
    """All sources of all paths, checked up front so a bad path fails before any import."""
    return [source for path in paths for source in open_source(Path(path))]
