"""The reciprocity report, end to end: the real CLI on real SQLite stores of the sample mailbox."""

from __future__ import annotations

import csv
import io
import json
import mailbox
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mailnet import demo
from mailnet.cli import main
from mailnet.config import PATTERNS
from mailnet.ledger import COLUMNS, LABELS, NEGATIVE
from mailnet.store import Store
from report_fixtures import EXPECTED, SAMPLE, make_sample, sample_store, tag_by_hand

from conftest import make_message

AS_OF = ["--as-of", "2025-01-15"]

@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_store(tmp_path_factory.mktemp("sample") / "sample.db")


def run(*args: str, db: Path | None = None, config: Path | None = None) -> Result:
    pre = (["--config", str(config)] if config else []) + (["--db", str(db)] if db else [])
    return CliRunner().invoke(main, [*pre, *args], catch_exceptions=False)


def report_json(db: Path, *args: str, config: Path | None = None) -> list[dict]:
    result = run("report", *AS_OF, "--format", "json", *args, db=db, config=config)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["contacts"]


def flagged(rows: list[dict]) -> dict[str, set[str]]:
    return {r["contact"]: {f["pattern"] for f in r["flags"]} for r in rows}


def test_every_pattern_is_flagged_on_the_contact_written_for_it(db: Path) -> None:
    flags = flagged(report_json(db))
    for pattern, contacts in EXPECTED.items():
        for contact in contacts:
            assert pattern in flags[contact], (pattern, contact, flags.get(contact))


def test_allies_carry_no_negative_flag(db: Path) -> None:
    allies = {c: f for c, f in flagged(report_json(db)).items() if "ally" in f}
    assert set(EXPECTED["ally"]) <= set(allies)
    for contact, flags in allies.items():
        assert not flags & NEGATIVE, (contact, flags)


def test_flags_carry_reasons_with_numbers_and_evidence(db: Path) -> None:
    rows = report_json(db)
    for row in rows:
        for flag in row["flags"]:
            assert any(ch.isdigit() for ch in flag["reason"]), flag
            assert 1 <= len(flag["evidence"]) <= 5
            for e in flag["evidence"]:
                assert e["subject"] and e["snippet"] and e["date"].startswith(("2023", "2024"))
    jordan = next(r for r in rows if r["contact"] == "jordan@pike-ventures.example")
    asks = next(f for f in jordan["flags"] if f["pattern"] == "only_asks")
    assert f"asked {jordan['their_requests']} times" in asks["reason"]
    assert all(e["direction"] == "to_me" and e["tag"] == "request" for e in asks["evidence"])
    dates = [e["date"] for e in asks["evidence"]]
    assert dates == sorted(dates, reverse=True)


def test_ledger_counts_match_the_sample(db: Path) -> None:
    """The counts are the sample's own messages, recounted from make_sample's tags."""
    sample = make_sample()
    rows = {r["contact"]: r for r in report_json(db, "--min-messages", "1")}
    for person, address in sample.PEOPLE.items():
        mine = [m for m in sample.MAILS if m.key.startswith(f"{person}-")]
        theirs = [m for m in mine if m.sender != sample.ME]
        contact = address.split("<")[1].rstrip(">")
        row = rows[contact]
        assert row["from_them"] == len(theirs), contact
        assert row["to_them"] == len(mine) - len(theirs), contact
        assert row["their_requests"] == sum("request" in m.tags for m in theirs), contact
        assert row["my_offers"] == sum("offer" in m.tags for m in mine if m not in theirs)


def test_on_a_list_the_question_you_answered_counts(db: Path) -> None:
    hana = next(r for r in report_json(db) if r["contact"] == "hana.kim@uni-sdr.example")
    assert (hana["from_them"], hana["to_them"], hana["their_requests"]) == (2, 2, 2)
    assert hana["requests_answered"] == 2 and hana["threads_they_started"] == 2


def test_csv_schema_is_stable_and_matches_json(db: Path) -> None:
    result = run("report", *AS_OF, "--format", "csv", db=db)
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == [*COLUMNS, "reasons"]
    as_json = report_json(db)
    assert [r["contact"] for r in rows] == [r["contact"] for r in as_json]
    # Most taking first: contacts with a pattern of taking, then by imbalance.
    order = [(bool(NEGATIVE & set(r["flags"].split())), int(r["imbalance"])) for r in rows]
    assert order == sorted(order, reverse=True)
    jordan = rows[0]
    assert set(jordan["flags"].split()) == flagged(as_json)[jordan["contact"]]
    assert "only_asks: asked" in jordan["reasons"]


def test_report_filters(db: Path) -> None:
    only = report_json(db, "--pattern", "vanishes")
    assert {r["contact"] for r in only} == set(EXPECTED["vanishes"]) | {
        "jordan@pike-ventures.example"}
    assert len(report_json(db, "--limit", "3")) == 3
    assert [r["contact"] for r in report_json(db, "--contact", "becker")] == [
        "tom@becker.example"]
    everyone = report_json(db, "--min-messages", "1")
    assert "lee@chen-consulting.example" in {r["contact"] for r in everyone}
    assert "lee@chen-consulting.example" not in {r["contact"] for r in report_json(db)}
    people = report_json(db, "--kind", "person")
    assert all(r["kind"] == "person" for r in people) and len(people) < len(report_json(db))


def test_terminal_table_sorted_by_imbalance(db: Path) -> None:
    result = run("report", *AS_OF, db=db)
    assert result.exit_code == 0
    text = result.stdout
    assert text.index("Jordan Pike") < text.index("Dana Okafor") < text.index("Ines Duarte")
    for label in ("only writes when asking", "surfaces only when in need", "ally"):
        assert label in text


def test_window_changes_the_ledger(db: Path) -> None:
    full = {r["contact"]: r for r in report_json(db)}
    early = {r["contact"]: r for r in report_json(db, "--until", "2024-01-01")}
    dana = "dana.okafor@lumen.example"
    assert 0 < early[dana]["from_them"] < full[dana]["from_them"]
    assert early[dana]["last"] < "2024-01-01"
    # Ines wrote every month until March 2024: not lost as of then, lost by 2025.
    then = flagged(report_json(db, "--as-of", "2024-03-20"))
    assert "lost_touch" not in then["ines@duarte.example"]
    late = {r["contact"]: r for r in report_json(db, "--since", "2024-06-01")}
    assert "ines@duarte.example" not in late


def test_contact_shows_ledger_flags_evidence_and_timeline(db: Path) -> None:
    result = run("contact", "Tom@Becker.example", *AS_OF, db=db)
    assert result.exit_code == 0, result.output
    for text in ("Tom Becker", "surfaces only when in need", "Hey stranger",
                 "Could you help me move", "Asks and gives", "reply rate"):
        assert text in result.stdout
    data = json.loads(run("contact", "tom@becker.example", *AS_OF, "--format", "json",
                          db=db).stdout)
    assert data["contact"] == "tom@becker.example"
    assert len(data["timeline"]) == data["from_them"] + data["to_them"]
    assert "surfaces_in_need" in {f["pattern"] for f in data["flags"]}


def test_contact_why_and_messages_take_the_name_the_report_shows(db: Path) -> None:
    """The terminal report shows a contact's name: pasted back (any case), it finds them."""
    by_address = json.loads(run("contact", "tom@becker.example", *AS_OF, "--format", "json",
                                db=db).stdout)
    result = run("contact", "tom BECKER", *AS_OF, "--format", "json", db=db)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == by_address
    result = run("why", "Tom Becker", *AS_OF, "--format", "json", db=db)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["contact"] == "tom@becker.example"
    listed = [json.loads(run("messages", "--contact", who, "--format", "json", db=db).stdout)
              for who in ("tom@becker.example", "Tom Becker")]
    assert listed[0] and listed[1] == listed[0]


def test_a_name_two_contacts_share_asks_for_an_address(tmp_path: Path) -> None:
    inbox = tmp_path / "INBOX"
    inbox.mkdir()
    for i, host in enumerate(("a.example", "b.example")):
        (inbox / f"{i}.eml").write_bytes(make_message(
            f"Pat Lee <pat@{host}>", "Sam Rivera <sam@rivera.example>",
            message_id=f"<{i}@{host}>"))
    config = tmp_path / "config.toml"
    config.write_text('[identity]\naddresses = ["sam@rivera.example"]\n')
    db = tmp_path / "m.db"
    assert run("import", str(inbox), db=db, config=config).exit_code == 0
    result = run("contact", "Pat Lee", db=db, config=config)
    assert result.exit_code == 2
    assert result.stderr.strip() == ("mailnet: error: 2 contacts are called Pat Lee: give one "
                                     "of pat@a.example, pat@b.example")


def test_prune_exports_takers_not_allies(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "prune.csv"
    result = run("prune", *AS_OF, "--output", str(out), db=db)
    assert result.exit_code == 0, result.output
    rows = {r["contact"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    assert {"jordan@pike-ventures.example", "brad@leadsurge.example",
            "elena.marsh@bigco.example"} <= set(rows)
    assert not set(EXPECTED["ally"]) & set(rows)
    assert "ines@duarte.example" not in rows  # lost touch is not a reason to let go
    assert all(r["reasons"] for r in rows.values())


def test_patterns_config_changes_thresholds(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[patterns]\nonly_asks_min_requests = 50\nprune = [\"only_sales\"]\n")
    flags = flagged(report_json(db, config=config))
    assert "only_asks" not in flags["jordan@pike-ventures.example"]
    pruned = run("prune", *AS_OF, db=db, config=config).stdout
    assert "brad@leadsurge.example" in pruned and "jordan@" not in pruned


@pytest.mark.parametrize("body, message", [
    ("[patterns]\nmin_mesages = 3\n", "unknown key 'min_mesages'"),
    ("[patterns]\nignores_share = 3\n", "ignores_share is a share"),
    ("[patterns]\nmin_messages = 2.5\n", "min_messages must be a whole number"),
    ("[patterns]\nprune = [\"rude\"]\n", "unknown pattern(s) rude"),
])
def test_bad_patterns_config_is_one_line(db: Path, tmp_path: Path, body: str,
                                         message: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(body)
    result = run("report", db=db, config=config)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_aliases_merge_a_contact(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[aliases]\n"dana.okafor@lumen.example" = ["ravi.patel@lumen.example"]\n')
    before = {r["contact"]: r for r in report_json(db, "--min-messages", "1")}
    after = {r["contact"]: r for r in report_json(db, "--min-messages", "1", config=config)}
    dana, ravi = "dana.okafor@lumen.example", "ravi.patel@lumen.example"
    assert ravi not in after
    assert after[dana]["from_them"] == before[dana]["from_them"] + before[ravi]["from_them"]


@pytest.mark.parametrize("args, message", [
    (["contact", "nobody@nowhere.example"], "no mail exchanged with nobody@nowhere.example"),
    (["report", "--since", "2030-01-01"], "no mail exchanged with anyone from 2030-01-01"),
    (["report", "--format", "html", "--output", "/nonexistent/dir/r.html"],
     "cannot write /nonexistent/dir/r.html"),
    (["prune", "--output", "/nonexistent/dir/p.csv"], "cannot write /nonexistent/dir/p.csv"),
    (["report", "--format", "html"], "--format html needs --output"),
])
def test_bad_input_is_one_clear_line(db: Path, args: list[str], message: str) -> None:
    result = run(*args, *AS_OF, db=db)
    assert result.exit_code == 2
    assert message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_mail_with_no_known_owner_says_whose_addresses_to_name(tmp_path: Path) -> None:
    """A list archive imported with no Sent folder and no [identity]: nothing is mine."""
    inbox = tmp_path / "INBOX"
    inbox.mkdir()
    (inbox / "a.eml").write_bytes(make_message("Ann <ann@x.example>", "list@lists.example"))
    db = tmp_path / "m.db"
    assert run("import", str(inbox), db=db).exit_code == 0
    for args in (["report"], ["prune"], ["owed"]):
        result = run(*args, db=db)
        assert result.exit_code == 2
        assert "[identity] addresses" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_empty_store_is_one_clear_line(tmp_path: Path) -> None:
    Store(tmp_path / "empty.db").close()
    for args in (["report"], ["contact", "a@b.example"], ["prune"]):
        result = run(*args, db=tmp_path / "empty.db")
        assert result.exit_code == 2
        assert "holds no mail yet" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_sample_is_generated_deterministically(tmp_path: Path) -> None:
    make_sample().write(tmp_path)
    for name in ("INBOX.mbox", "Sent.mbox"):
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), name
    assert demo.AS_OF.date() == make_sample().AS_OF


def test_demo_shows_every_pattern(tmp_path: Path) -> None:
    """The demo's import → classify (the shipped model) → report shows every pattern."""
    result = run("demo", "--keep", str(tmp_path / "demo.db"))
    assert result.exit_code == 0, result.output
    for pattern in PATTERNS:
        assert LABELS[pattern] in result.stdout, pattern


def forged_inbox(path: Path) -> Path:
    """An inbox mbox written by an outsider: mail that reuses the Message-IDs of all of
    Sam's replies to Dana (with other text), and mail forged From: Sam to Dana."""
    dana = "Dana Okafor <dana.okafor@lumen.example>"
    sam = "Sam Rivera <sam@rivera.example>"
    out = mailbox.mbox(path)
    sent = mailbox.mbox(SAMPLE / "Sent.mbox")
    replies = [m for m in sent if "dana.okafor@lumen.example" in m["To"]]
    assert len(replies) >= 5
    for n, real in enumerate(replies):
        for sender, mid in ((dana, real["Message-ID"]),  # hides the reply if it wins
                            (sam, f"<forged-{n}@evil.example>")):  # counts as mine if trusted
            fake = mailbox.mboxMessage()
            fake["From"], fake["To"] = sender, dana if sender == sam else sam
            fake["Subject"], fake["Message-ID"] = "Buy now", mid
            fake["Date"], fake["In-Reply-To"] = real["Date"], real["In-Reply-To"] or mid
            fake.set_payload("Click here for a great offer.\n")
            out.add(fake)
    out.flush()
    return path


def _without_ids(value: object) -> object:
    """A JSON report with the store's message ids left out."""
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


@pytest.mark.parametrize("forged_first", [True, False])
def test_no_outside_message_rewrites_the_ledger(db: Path, tmp_path: Path,
                                                forged_first: bool) -> None:
    forged = forged_inbox(tmp_path / "INBOX.mbox")
    attacked = tmp_path / "attacked.db"
    for source in ([forged, SAMPLE] if forged_first else [SAMPLE, forged]):
        result = run("import", "--workers", "1", str(source), db=attacked)
        assert result.exit_code == 0, result.output
    with Store(attacked) as store:
        tag_by_hand(store, make_sample().message_tags())
        # Every forged message is kept (same ID, other content: another message) ...
        assert store.count() == len(make_sample().MAILS) + len(mailbox.mbox(forged))
    # ... and none changes a figure, a flag or a favour of anyone (the store numbers its
    # messages in the order they were imported: only those ids differ).
    clean = report_json(db, "--min-messages", "1")
    assert _without_ids(report_json(attacked, "--min-messages", "1")) == _without_ids(clean)
    dana = next(r for r in clean if r["contact"] == "dana.okafor@lumen.example")
    assert dana["to_them"] > 5 and "ally" in {f["pattern"] for f in dana["flags"]}


def test_the_report_says_when_its_tags_are_missing_or_from_two_models(tmp_path: Path) -> None:
    """Mail imported and never classified has no asks, gives or thanks to count, and tags
    of two models don't compare: the report says so (its caption, the JSON's note) rather
    than show a mailbox of people who give nothing."""
    db = tmp_path / "sample.db"
    assert run("import", "--workers", "1", str(SAMPLE), db=db).exit_code == 0

    def note() -> str:
        result = run("report", *AS_OF, "--format", "json", db=db)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["period"]["note"]

    assert "305 of 305 messages not tagged yet" in note()
    table = " ".join(run("report", *AS_OF, "--limit", "1", db=db).output.split())
    assert "not tagged yet, so their asks, gives and thanks are not counted: run " \
           "`mailnet classify`" in table
    with Store(db) as store:
        assert tag_by_hand(store, make_sample().message_tags()) == 305
        store.db.execute("UPDATE tags SET model_version = '[red]old[/red]' WHERE message IN "
                         "(SELECT message FROM tags ORDER BY message LIMIT 5)")
        store.db.commit()
    assert "tags from 2 models (300 by hand, 5 by [red]old[/red]): `mailnet classify " \
           "--retag` tags every message with one" in note()
    table = " ".join(run("report", *AS_OF, "--limit", "1", db=db).output.split())
    assert "5 by [red]old[/red]" in table and "not tagged" not in table
    with Store(db) as store:
        store.db.execute("UPDATE tags SET model_version = 'hand'")
        store.db.commit()
    assert "tag" not in note()
