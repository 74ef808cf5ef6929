"""The sample mailbox tells its intended story with the shipped model (not hand-made tags).

scripts/make_sample.py writes each contact for one verdict: three allies, one
contact per taking pattern, an ally who lost touch, ordinary contacts and a bulk
sender. `mailnet demo` classifies the text with the default model; this checks
what a reader of the demo sees, contact by contact.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailnet.cli import main
from report_fixtures import SAMPLE

AS_OF = ["--as-of", "2025-01-15"]
# contact -> the pattern written for them (None: an ordinary contact, no pattern).
INTENDED = {
    "dana.okafor@lumen.example": "ally",
    "kofi@mensah.example": "ally",
    "maria@santos.example": "ally",
    "jordan@pike-ventures.example": "only_asks",
    "priya@nair-data.example": "gives_more",
    "victor@halecorp.example": "never_thanks",
    "chris.dunn@fastmail.example": "vanishes",
    "hana.kim@uni-sdr.example": "vanishes",
    "brad@leadsurge.example": "only_sales",
    "elena.marsh@bigco.example": "ignores_you",
    "tom@becker.example": "surfaces_in_need",
    "ines@duarte.example": "lost_touch",
    "ravi.patel@lumen.example": None,
    "omar@haddad.example": None,
    "lee@chen-consulting.example": None,
    "noor@aziz.example": "ally",  # an ally who cooled: see test_the_cooled_contact_...
}
NEGATIVE = {"only_asks", "gives_more", "never_thanks", "vanishes", "only_sales",
            "ignores_you", "surfaces_in_need"}


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("demo") / "demo.db"
    for args in (["import", "--workers", "1", str(SAMPLE)], ["classify"]):
        result = CliRunner().invoke(main, ["--db", str(db), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    return db


def _cli(db: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["--db", str(db), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_every_contact_gets_the_verdict_written_for_it(demo_db: Path) -> None:
    rows = {r["contact"]: r for r in json.loads(
        _cli(demo_db, "report", *AS_OF, "--format", "json", "--min-messages", "1"))["contacts"]}
    for contact, pattern in INTENDED.items():
        flags = {f["pattern"] for f in rows[contact]["flags"]} if contact in rows else set()
        if pattern is None:
            assert not flags, (contact, flags)
        else:
            assert pattern in flags, (contact, pattern, flags)
        if pattern in ("ally", "lost_touch"):  # an ally, also one who lost touch, takes nothing
            assert not flags & NEGATIVE, (contact, flags)
    # Priya is given to, not a giver: you give her more than she gives you.
    priya = rows["priya@nair-data.example"]
    assert priya["my_offers"] > 2 * priya["their_offers"]
    givers = sorted(rows.values(), key=lambda r: r["their_offers"], reverse=True)
    assert givers[0]["contact"] != "priya@nair-data.example"
    # The bulk sender is bulk, with no person pattern.
    assert rows["noreply@growthhub.example"]["kind"] == "bulk"
    assert not rows["noreply@growthhub.example"]["flags"]
    # All nine patterns show up somewhere.
    shown = {f["pattern"] for r in rows.values() for f in r["flags"]}
    assert len(shown) == 9, shown


def test_prune_lists_takers_and_pitches_never_allies(demo_db: Path) -> None:
    pruned = {r["contact"] for r in csv.DictReader(io.StringIO(_cli(demo_db, "prune", *AS_OF)))}
    takers = {c for c, p in INTENDED.items() if p in NEGATIVE}
    assert takers <= pruned
    assert "noreply@growthhub.example" in pruned  # nothing but pitches
    assert not pruned & {c for c, p in INTENDED.items() if p in ("ally", "lost_touch", None)}


def test_takers_rank_above_allies(demo_db: Path) -> None:
    order = [r["contact"] for r in json.loads(
        _cli(demo_db, "report", *AS_OF, "--format", "json"))["contacts"]]
    last_taker = max(order.index(c) for c, p in INTENDED.items()
                     if p in NEGATIVE and c in order)
    first_ally = min(order.index(c) for c, p in INTENDED.items()
                     if p in ("ally", "lost_touch"))
    assert last_taker < first_ally, order


def test_the_cooled_contact_cools_where_it_was_written_to(demo_db: Path) -> None:
    """Noor: warm two-way mail every month of 2023, one short note a quarter from 2024Q1."""
    rows = {r["contact"]: r for r in json.loads(
        _cli(demo_db, "report", *AS_OF, "--format", "json"))["contacts"]}
    change = rows["noor@aziz.example"]["trajectory"]["change"]
    assert (change["kind"], change["since"]) == ("cooled", "2024Q1"), change
    assert change["after"] < change["before"] / 2
    for steady in ("dana.okafor@lumen.example", "kofi@mensah.example", "maria@santos.example"):
        assert rows[steady]["trajectory"]["change"] is None, steady
