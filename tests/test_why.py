"""`mailnet why CONTACT`: figures against thresholds, the strongest messages, what would clear
a flag, and near misses; through the real CLI on the sample mailbox and hand-written stores."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner, Result

from mailnet.cli import main
from mailnet.config import PATTERNS, load_config
from mailnet.ledger import NEGATIVE, Window, build_ledger
from mailnet.store import TAGS, Store
from mailnet.why import TESTS
from report_fixtures import EXPECTED, sample_store

from conftest import make_message

AS_OF = ["--as-of", "2025-01-15"]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_store(tmp_path_factory.mktemp("sample") / "sample.db")


def run(db: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", str(db), *args], catch_exceptions=False)


def why_json(db: Path, contact: str, *args: str) -> dict:
    result = run(db, "why", contact, *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_figures_agree_with_the_ledger_on_every_contact(db: Path) -> None:
    """why restates each pattern's test: on every judged contact, its figures all hold
    exactly where the ledger flagged the pattern (an ally also needs no taker's flag)."""
    with Store(db, create=False) as store:
        ledger = build_ledger(store, load_config(None, db=db),
                              Window(as_of=datetime(2025, 1, 15, tzinfo=UTC)))
    f = ledger.figures
    direct = f["addressed"] + f["direct_from_them"]
    checked = 0
    for contact in f.index[f["eligible"].astype(bool)]:
        facts = SimpleNamespace(**f.loc[contact].to_dict(), busiest=float(direct.max()),
                                threaded="vanishes" not in ledger.unjudged)
        flags = {fl.pattern for fl in ledger.flags.get(contact, [])}
        for pattern in PATTERNS:
            test = TESTS[pattern]
            holds = all(x.holds for x in test.figures(test.values(facts), ledger.settings))
            taker = pattern == "ally" and bool(flags & NEGATIVE)
            assert holds == (pattern in flags) or (holds and taker), (contact, pattern)
            checked += 1
    assert checked >= 9 * 12  # every pattern on a dozen people


def test_a_flag_shows_its_figures_against_the_thresholds(db: Path) -> None:
    result = run(db, "why", "jordan@pike-ventures.example", *AS_OF)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "only writes when asking" in out
    assert "requests 12 ≥ 3, share 1.00 ≥ 0.75 (12 of 12 messages), offers 0.00 ≤ 0.10" in out
    assert "would clear it: 2 more offers from them or 5 more messages from them that ask " \
           "for nothing" in out
    assert "their thanks 0 = 0" in out and "1 thank-you from them" in out
    assert "Contract review" in out and "1.00" in out  # the strongest messages, with p


def test_ignoring_is_cleared_by_replies(db: Path) -> None:
    why = why_json(db, "elena.marsh@bigco.example", *AS_OF)
    flag = next(v for v in why["flags"] if v["pattern"] == "ignores_you")
    asked, unanswered = (x for x in flag["figures"])
    assert asked["name"] == "your asks" and asked["holds"] and unanswered["holds"]
    # The fewest replies that bring the unanswered share under the threshold.
    share = 0.6
    total = asked["value"]
    open_ = round(unanswered["value"] * total)
    k = next(k for k in range(1, open_ + 1) if open_ - k < share * total)
    assert flag["clear"] == f"a reply to {k} more of your {total:.0f} asks"
    assert flag["messages"] and all(m["direction"] == "from_me" for m in flag["messages"])


def test_every_sample_flag_has_figures_messages_and_a_way_out(db: Path) -> None:
    for pattern, contacts in EXPECTED.items():
        for contact in contacts:
            why = why_json(db, contact, *AS_OF)
            flag = next(v for v in why["flags"] if v["pattern"] == pattern)
            assert flag["figures"] and all(x["holds"] for x in flag["figures"]), flag
            assert flag["messages"], (contact, pattern)
            assert all(m["probability"] == 1.0 for m in flag["messages"]
                       if m["tag"] in TAGS)  # the sample is tagged by hand: p = 1
            assert flag["reason"]
            assert flag["clear"] or pattern == "ally", (contact, pattern)


def test_lost_touch_is_cleared_by_one_message(db: Path) -> None:
    flag = next(v for v in why_json(db, "ines@duarte.example", *AS_OF)["flags"]
                if v["pattern"] == "lost_touch")
    assert flag["clear"] == "1 message from them"
    assert any("their usual gap" in x["text"] for x in flag["figures"])


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ann asks three times (the model sure to different degrees) and gets one answer;
    Bob asks twice, answered both times (and vanishes): one ask short of "only writes
    when asking"."""
    tmp = tmp_path_factory.mktemp("why")
    mails = tmp / "mail"
    mails.mkdir()
    day = datetime(2024, 3, 1, 12, tzinfo=UTC)
    written = []
    for n, (who, subject) in enumerate([("Ann Example <ann@example.org>", "Budget"),
                                        ("Ann Example <ann@example.org>", "Slides"),
                                        ("Ann Example <ann@example.org>", "Intro"),
                                        ("Bob Bee <bob@bee.example>", "Laptop"),
                                        ("Bob Bee <bob@bee.example>", "Keys")]):
        mid = f"<q{n}@x.example>"
        written.append(mid.strip("<>"))
        (mails / f"q{n}.eml").write_bytes(make_message(
            sender=who, subject=subject, text=f"Could you help with the {subject.lower()}?\n",
            message_id=mid, date=day + timedelta(days=n)))
        if n in (0, 3, 4):
            (mails / f"r{n}.eml").write_bytes(make_message(
                sender="Sam Rivera <sam@rivera.example>", to=who, subject=f"Re: {subject}",
                text="Done.\n", message_id=f"<r{n}@rivera.example>",
                date=day + timedelta(days=n, hours=2), In_Reply_To=mid))
    config = tmp / "config.toml"
    config.write_text('[identity]\naddresses = ["sam@rivera.example"]\n')
    store = tmp / "s.db"
    args = ["--db", str(store), "--config", str(config)]
    assert CliRunner().invoke(main, [*args, "import", "--workers", "1", str(mails)]).exit_code == 0
    probs = dict(zip(written, (0.71, 0.95, 0.88, 0.9, 0.9), strict=True))
    with Store(store) as s:
        rows = [(i, {t: (probs[m] if t == "request" else 0.02) for t in TAGS}, ["request"])
                for i, m in s.db.execute("SELECT id, message_id FROM messages") if m in probs]
        s.set_tags(rows, "hand")
    return tmp


def small_why(tmp: Path, contact: str, fmt: str = "json") -> Result:
    return CliRunner().invoke(main, ["--db", str(tmp / "s.db"), "--config",
                                     str(tmp / "config.toml"), "why", contact, "--as-of",
                                     "2024-03-20", "--format", fmt], catch_exceptions=False)


def test_the_strongest_messages_come_first_with_the_models_probability(small: Path) -> None:
    result = small_why(small, "ann@example.org")
    assert result.exit_code == 0, result.output
    flag = next(v for v in json.loads(result.stdout)["flags"] if v["pattern"] == "only_asks")
    assert [m["probability"] for m in flag["messages"]] == [0.95, 0.88, 0.71]
    assert [m["subject"] for m in flag["messages"]] == ["Slides", "Intro", "Budget"]
    assert flag["clear"] == "1 more offer from them or 2 more messages from them that ask " \
                            "for nothing"
    table = " ".join(small_why(small, "ann@example.org", "table").output.split())
    assert "0.95" in table and "Slides" in table and "would clear it" in table


def test_a_pattern_nearly_shown_is_one_line(small: Path) -> None:
    result = small_why(small, "bob@bee.example")
    assert result.exit_code == 0, result.output
    why = json.loads(result.stdout)
    assert "only_asks" not in {v["pattern"] for v in why["flags"]}
    near = {v["pattern"]: v for v in why["near_misses"]}
    assert near["only_asks"]["would_hold_with"] == "1 more ask from them"
    assert near["only_asks"]["figures"][0]["text"] == "requests 2 < 3"
    table = " ".join(small_why(small, "bob@bee.example", "table").output.split())
    assert "Nearly:" in table and "would hold with 1 more ask from them" in table


def test_unknown_contact_is_one_line(small: Path) -> None:
    result = small_why(small, "nobody@nowhere.example")
    assert result.exit_code == 2
    assert result.output.startswith("mailnet: error: no mail exchanged with nobody@")
    assert "Traceback" not in result.output
