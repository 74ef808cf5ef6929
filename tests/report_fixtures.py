"""Shared fixtures of the report tests: the sample mailbox, imported and tagged by hand.

The classifier is not used here: each sample message is tagged with the tags
scripts/make_sample.py wrote its text to carry, so these tests judge the
ledger alone.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from click.testing import CliRunner

from mailnet.cli import main
from mailnet.store import TAGS, Store

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "src" / "mailnet" / "data" / "sample"

# Who the sample was written to show each pattern (scripts/make_sample.py, PEOPLE).
EXPECTED = {
    "only_asks": ["jordan@pike-ventures.example"],
    "gives_more": ["priya@nair-data.example"],
    "never_thanks": ["victor@halecorp.example"],
    "vanishes": ["chris.dunn@fastmail.example", "hana.kim@uni-sdr.example"],
    "only_sales": ["brad@leadsurge.example"],
    "ignores_you": ["elena.marsh@bigco.example"],
    "surfaces_in_need": ["tom@becker.example"],
    "lost_touch": ["ines@duarte.example"],
    "ally": ["dana.okafor@lumen.example", "kofi@mensah.example", "maria@santos.example"],
}


def make_sample() -> ModuleType:
    """scripts/make_sample.py as a module (it is a script, not part of the package)."""
    path = ROOT / "scripts" / "make_sample.py"
    spec = importlib.util.spec_from_file_location("make_sample", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_sample"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def tag_by_hand(store: Store, tags: dict[str, tuple[str, ...]]) -> int:
    """Tag every stored message whose Message-ID is in `tags`; returns how many."""
    rows = [(rowid, {t: float(t in tags[mid]) for t in TAGS}, list(tags[mid]))
            for rowid, mid in store.db.execute("SELECT id, message_id FROM messages")
            if mid in tags]
    store.set_tags(rows, "hand")
    return len(rows)


def sample_store(db: Path) -> Path:
    """Import the sample mailbox through the real CLI and tag it by hand."""
    result = CliRunner().invoke(main, ["--db", str(db), "import", "--workers", "1", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    with Store(db) as store:
        assert tag_by_hand(store, make_sample().message_tags()) > 200
    return db
