"""`mailnet demo`: the whole job on the sample mailbox that ships inside the package."""

from __future__ import annotations

import tempfile
from datetime import datetime
from importlib.resources import as_file, files
from pathlib import Path

from rich.console import Console

from mailnet.classify import classify_store
from mailnet.config import Config
from mailnet.ingest import import_sources, summary_line
from mailnet.ledger import Window, build_ledger, select
from mailnet.model import load_model
from mailnet.report import terminal_table
from mailnet.sources import open_source
from mailnet.store import Store

# The sample's "today" (scripts/make_sample.py AS_OF), so the demo's silences never change.
AS_OF = datetime(2025, 1, 15)


def run(out: Console, err: Console, keep: Path | None = None) -> None:
    """Import the sample mailbox, tag it, and show who gives and who only takes."""
    with tempfile.TemporaryDirectory(prefix="mailnet-demo-") as tmp, \
            as_file(files("mailnet") / "data" / "sample") as sample:
        db = keep or Path(tmp) / "demo.db"
        config = Config(db_path=db)
        with Store(db) as store:
            summary = import_sources(store, open_source(Path(sample)), workers=1)
            err.print(f"sample mailbox: {summary_line(summary)}")
            tagged = classify_store(store, load_model(), workers=1)
            err.print(f"tagged {tagged.tagged} messages with the default model")
            ledger = build_ledger(store, config, Window(as_of=AS_OF))
        out.print(terminal_table(ledger, select(ledger)))
        hint = (f"mailnet --db {keep} contact jordan@pike-ventures.example --as-of 2025-01-15"
                if keep else "mailnet demo --keep demo.db")
        out.print(f"\nExplore further: {hint}", highlight=False)
