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


@dataclass(frozen=True)
class RawMessage:
    data: bytes
    origin: Origin


class Source(Protocol):
    """An iterable of raw messages whose progress can be read as bytes consumed of `size`."""

    name: str
    size: int
    consumed: int

    def __iter__(self) -> Iterator[RawMessage]: ...


_OPENERS = {".gz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}
_MBOX_SUFFIXES = (".mbox", ".mbx", ".mbox.gz", ".mbox.xz", ".mbox.bz2")
# A message ends at a blank line followed by a "From " line.
_SEPARATOR = re.compile(rb"\n\r?\n(?=From )")
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
        index = 0
        pending = b""
        while True:
            chunk = fh.read(1 << 22)
            pieces = _SEPARATOR.split(pending + chunk)
            # Until the end of the file the last piece may be cut mid-message.
            pending = pieces.pop() if chunk else b""
            for piece in pieces:
                if piece.startswith(b"From "):
                    piece = piece[piece.find(b"\n") + 1:] if b"\n" in piece else b""
                if not piece.strip():
                    continue
                if b">From " in piece:
                    piece = _ESCAPED_FROM.sub(rb"\1", piece)
                yield RawMessage(piece.rstrip(b"\r\n") + b"\n",
                                 Origin(self.name, self.folder, f"#{index}"))
                index += 1
            if not chunk:
                return


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
            data = path.read_bytes()
            self.consumed += len(data)
            yield RawMessage(data, Origin(self.name, folder, str(path)))


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
    if path.name.lower().endswith(_MBOX_SUFFIXES):
        return True
    opener = _OPENERS.get(path.suffix)
    try:
        with (opener or open)(path, "rb") as fh:
            return fh.read(5) == b"From "
    except (OSError, EOFError, lzma.LZMAError):
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
