"""Raw messages in, stored records out.

Parsing is the cost (about a millisecond a message), so an import parses in a
process pool while this process reads the source and writes the store. Each
batch is committed on its own, so an interrupted run keeps what it had stored
and a re-run adds only the rest. IMAP fetch parses in its own fetch workers
and stores through the same :func:`parse_safely` and :func:`store_results`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import TypeVar

from mailnet.parse import ParsedMessage, ParseError, content_hash, parse_message
from mailnet.sources import Origin, RawMessage, Source
from mailnet.store import Store
from mailnet.workers import Workers

BATCH = 500
_CHUNK = 16  # messages per task sent to a worker
_AHEAD = 8  # tasks per worker in flight: enough to keep parsing while a batch is stored

T = TypeVar("T")


@dataclass
class ImportSummary:
    imported: int = 0
    duplicates: int = 0
    errors: int = 0
    seconds: float = 0.0
    error_reasons: list[tuple[Origin, str]] = field(default_factory=list)
    notes: list[tuple[Origin, str]] = field(default_factory=list)  # stored, but only in part

    @property
    def messages(self) -> int:
        return self.imported + self.duplicates + self.errors

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    def __iadd__(self, other: ImportSummary) -> ImportSummary:
        self.imported += other.imported
        self.duplicates += other.duplicates
        self.errors += other.errors
        self.seconds += other.seconds
        self.error_reasons += other.error_reasons
        self.notes += other.notes
        return self


@dataclass(frozen=True)
class _Known:
    """A message whose exact bytes are already stored: it goes through the pool unparsed,
    so results (and what each committed batch covers) keep the order of the input."""

    origin: Origin


ParseResult = ParsedMessage | tuple[Origin, str] | _Known


def parse_safely(item: RawMessage | _Known) -> ParseResult:
    """Never raises: one bad message must not end the run."""
    if isinstance(item, _Known):
        return item
    if item.error is not None:
        return item.origin, item.error
    try:
        return parse_message(item)
    except ParseError as exc:
        return item.origin, str(exc)
    except Exception as exc:  # a bug or hostile input deep in a parser
        return item.origin, f"unexpected {type(exc).__name__}: {exc}"


def _parse_chunk(items: list[RawMessage | _Known]) -> list[ParseResult]:
    return [parse_safely(item) for item in items]


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


class Ingester:
    """Parses in `workers` processes (0: one per core; 1: in this process) and stores."""

    def __init__(self, store: Store, workers: int = 0) -> None:
        self.store = store
        self.workers = workers or os.cpu_count() or 1
        self._pool = Workers(self.workers, ahead=_AHEAD) if self.workers > 1 else None

    def __enter__(self) -> Ingester:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if self._pool is not None:
            self._pool.close(abandon=exc_type is not None)

    def _parsed(self, items: Iterable[RawMessage | _Known]) -> Iterator[ParseResult]:
        if self._pool is None:
            return map(parse_safely, items)
        return chain.from_iterable(self._pool.map(_parse_chunk, _batches(items, _CHUNK)))

    def _marked(self, raws: Iterable[RawMessage]) -> Iterator[RawMessage | _Known]:
        """Messages whose exact bytes are stored already are marked: a re-import parses nothing.

        Looked up _CHUNK * 4 at a time: one query per message costs more than its parse.
        """
        for chunk in _batches(raws, _CHUNK * 4):
            hashes = [content_hash(raw.data) for raw in chunk]
            known = self.store.known_contents(hashes)
            for raw, digest in zip(chunk, hashes, strict=True):
                yield _Known(raw.origin) if digest in known else raw

    def add(self, raws: Iterable[RawMessage], *, batch: int = BATCH,
            on_batch: Callable[[ImportSummary], None] | None = None) -> ImportSummary:
        """Parse and store `raws`, committing every `batch` messages, in their order."""
        total = ImportSummary()
        start = time.perf_counter()
        for results in _batches(self._parsed(self._marked(raws)), batch):
            part = store_results(self.store, results)
            total += part
            if on_batch:
                on_batch(part)
        total.seconds = time.perf_counter() - start
        return total


def store_results(store: Store, results: Iterable[ParseResult]) -> ImportSummary:
    """Store a batch of parse results in one transaction; errors are recorded with the reason."""
    part = ImportSummary()
    good = []
    for result in results:
        if isinstance(result, ParsedMessage):
            good.append(result)
            if result.note:
                store.add_error(result.origin, result.note)
                part.notes.append((result.origin, result.note))
        elif isinstance(result, _Known):
            part.duplicates += 1
        else:
            origin, reason = result
            store.add_error(origin, reason)
            part.errors += 1
            part.error_reasons.append((origin, reason))
    added = store.add_messages(good)
    part.imported, part.duplicates = added.added, part.duplicates + added.duplicates
    return part


def import_sources(store: Store, sources: list[Source], *, workers: int = 0,
                   on_progress: Callable[[Source, ImportSummary], None] | None = None,
                   ) -> ImportSummary:
    """Import every source into `store`; `on_progress` hears after each committed batch."""
    total = ImportSummary()
    before = store.last_id()
    with Ingester(store, workers) as ingester:
        for source in sources:
            total += ingester.add(
                source, on_batch=(lambda part, s=source: on_progress(s, part)) if on_progress
                else None,
            )
    # Once everything is in: a reply may be read before the message it answers.
    store.infer_parents(after=before)
    return total


def summary_line(summary: ImportSummary) -> str:
    return (f"imported {summary.imported:,}, duplicates {summary.duplicates:,}, "
            f"errors {summary.errors:,} in {summary.seconds:.1f} s "
            f"({summary.rate:,.0f} messages/s)")
