"""`mailnet demo`: the whole job on the sample mailbox that ships inside the package."""

from __future__ import annotations

import tempfile
from importlib.resources import as_file, files
from pathlib import Path

from rich.console import Console

from mailnet.config import Config
from mailnet.contacts import contact_summary, exchanges
from mailnet.ingest import import_sources, summary_line
from mailnet.output import emit
from mailnet.sources import open_source
from mailnet.store import Store


def run(out: Console, err: Console, keep: Path | None = None) -> None:
    """Import the sample mailbox into a fresh store and show who gives and who takes."""
    with tempfile.TemporaryDirectory(prefix="mailnet-demo-") as tmp, \
            as_file(files("mailnet") / "data" / "sample") as sample:
        db = keep or Path(tmp) / "demo.db"
        config = Config(db_path=db)
        with Store(db) as store:
            summary = import_sources(store, open_source(Path(sample)), workers=1)
            err.print(f"sample mailbox: {summary_line(summary)}")
            table = contact_summary(exchanges(store, config))
        emit(table[table["kind"] == "person"], "table", out, title="Contacts")
