"""Trajectories and the network at a glance, through the real CLI: on hand-written
stores whose story is known quarter by quarter, and on the sample mailbox."""

from __future__ import annotations

import json
import mailbox
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path

import pytest
from click.testing import Result

from report_fixtures import sample_store

from conftest import make_message

ME = "Sam Rivera <sam@rivera.example>"
CAROL = "Carol Steady <carol@steady.example>"
ANN = "Ann Cool <ann@cool.example>"
BOB = "Bob Burst <bob@burst.example>"
WES = "Wes Warm <wes@warm.example>"
START = datetime(2023, 1, 5, 10, 0, tzinfo=UTC)


def _write(folder: Path, mails: list[tuple[str, bytes]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    boxes = {name: mailbox.mbox(folder / f"{name}.mbox") for name in ("INBOX", "Sent")}
    for name, data in mails:
        boxes[name].add(mailbox.mboxMessage(message_from_bytes(data)))
    for box in boxes.values():
        box.close()
    return folder


def _exchange(mails: list[tuple[str, bytes]], who: str, when: datetime, n: int) -> None:
    """One message from `who` to me and my answer, `n`-th of its kind."""
    key = who.split("<")[1].split("@")[0]
    first = f"<{key}-{n}@x.example>"
    mails.append(("INBOX", make_message(who, ME, f"Note {n}", "Hi Sam.\n", first, when)))
    mails.append(("Sent", make_message(ME, who, f"Re: Note {n}", "Hi.\n",
                                       f"<{key}-{n}-r@x.example>", when + timedelta(hours=5),
                                       In_Reply_To=first)))


def story() -> list[tuple[str, bytes]]:
    """Two years: Carol writes every month throughout (the mailbox's both sides are
    present every month); Ann four times a month in 2023, once a quarter in 2024 (cooled
    from 2024Q1); Bob once a quarter, with one burst of ten in 2023Q3 (no change); Wes
    once a quarter in 2023, three times a month in 2024 (warmed from 2024Q1)."""
    mails: list[tuple[str, bytes]] = []
    for month in range(24):
        when = START + timedelta(days=30.4 * month)
        _exchange(mails, CAROL, when, month)
        if month < 12:
            for week in range(4):
                _exchange(mails, ANN, when + timedelta(days=1 + 6 * week), month * 4 + week)
        elif month % 3 == 1:
            _exchange(mails, ANN, when + timedelta(days=2), 100 + month)
        if month % 3 == 1:
            _exchange(mails, BOB, when + timedelta(days=3), month)
        if month == 7:
            for n in range(10):
                _exchange(mails, BOB, when + timedelta(days=4 + n), 100 + n)
        if month >= 12 or month % 3 == 2:
            for week in range(1 if month < 12 else 3):
                _exchange(mails, WES, when + timedelta(days=5 + 7 * week), month * 4 + week)
    return mails


@pytest.fixture
def story_cli(cli: Callable[..., Result], tmp_path: Path) -> Callable[..., Result]:
    result = cli("import", "--workers", "1", str(_write(tmp_path / "mail", story())))
    assert result.exit_code == 0, result.output
    return cli


def _report(cli: Callable[..., Result], *args: str) -> dict:
    result = cli("report", "--format", "json", "--min-messages", "1", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_change_point_found_where_the_mail_changed_level(story_cli) -> None:
    out = _report(story_cli, "--as-of", "2025-01-10")
    paths = {r["contact"]: r["trajectory"] for r in out["contacts"]}
    ann = paths["ann@cool.example"]
    assert [q["quarter"] for q in ann["quarters"]] == [
        f"{y}Q{q}" for y in (2023, 2024) for q in range(1, 5)]
    volume = [q["from_them"] + q["to_them"] for q in ann["quarters"]]
    assert volume[:4] == [24, 24, 24, 24] and volume[4:] == [2, 2, 2, 2]
    assert ann["change"]["kind"] == "cooled" and ann["change"]["since"] == "2024Q1"
    assert ann["change"]["before"] == 24 and ann["change"]["after"] == 2
    assert ann["change"]["text"] == "cooling since 2024Q1: 24.0 → 2.0 messages a quarter"
    wes = paths["wes@warm.example"]["change"]
    assert (wes["kind"], wes["since"], wes["before"], wes["after"]) == ("warmed", "2024Q1", 2, 18)
    assert wes["text"].startswith("warmed from 2024Q1")
    # One burst quarter is not a change of level (the medians do not move), nor is steady mail.
    assert paths["bob@burst.example"]["change"] is None
    assert paths["carol@steady.example"]["change"] is None
    # Replies come five hours later: their delay is mine here (I answer), theirs unseen.
    assert ann["quarters"][0]["my_reply_days"] == pytest.approx(5 / 24, abs=0.01)
    assert ann["quarters"][0]["their_reply_days"] is None


def test_only_quarters_wholly_inside_the_judged_period_count(story_cli) -> None:
    # Measured mid-February 2024, 2024Q1 is cut short: it is not a quarter of the series,
    # and with three 2023 quarters at least on each side no change can be claimed yet.
    out = _report(story_cli, "--as-of", "2024-02-15")
    ann = next(r["trajectory"] for r in out["contacts"] if r["contact"] == "ann@cool.example")
    assert out["period"]["judged_to"] == "2024-02-15"
    assert [q["quarter"] for q in ann["quarters"]] == ["2023Q1", "2023Q2", "2023Q3", "2023Q4"]
    assert ann["change"] is None
    # From 2023-02-10 on, 2023Q1 is cut short too.
    out = _report(story_cli, "--since", "2023-02-10", "--as-of", "2025-01-10")
    ann = next(r["trajectory"] for r in out["contacts"] if r["contact"] == "ann@cool.example")
    assert ann["quarters"][0]["quarter"] == "2023Q2"


def test_contact_shows_the_trajectory_in_a_few_lines(story_cli) -> None:
    result = story_cli("contact", "ann@cool.example", "--as-of", "2025-01-10")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "Trajectory, by judged quarter" in line)
    header = lines[start + 1].split()
    assert header[:2] == ["23Q1", "23Q2"] and header[-1] == "24Q4"
    assert lines[start + 2].split()[-8:] == ["12/12"] * 4 + ["1/1"] * 4
    assert "cooling since 2024Q1: 24.0 → 2.0 messages a quarter" in result.stdout
    quiet = story_cli("contact", "carol@steady.example", "--as-of", "2025-01-10")
    assert "no change of level" in quiet.stdout


def test_network_counts_blasts_and_giving(cli, tmp_path: Path) -> None:
    """Dee reaches me only through mail to a dozen people; Eve one-to-one."""
    crowd = ", ".join(f"p{n}@crowd.example" for n in range(12))
    mails: list[tuple[str, bytes]] = []
    for month in range(6):
        when = START + timedelta(days=30 * month)
        mails.append(("INBOX", make_message("Dee <dee@blast.example>", f"{ME}, {crowd}",
                                            f"Update {month}", "News for all.\n",
                                            f"<d{month}@x>", when)))
        _exchange(mails, "Eve <eve@direct.example>", when + timedelta(days=1), month)
        mails.append(("Sent", make_message(ME, "Dee <dee@blast.example>", f"Hi {month}",
                                           "Hello.\n", f"<s{month}@x>", when)))
    result = cli("import", "--workers", "1", str(_write(tmp_path / "mail", mails)))
    assert result.exit_code == 0, result.output
    net = _report(cli, "--as-of", "2023-07-01")["network"]
    assert (net["senders"], net["mainly_blasts"], net["mainly_direct"]) == (2, 1, 1)
    assert net["blast_message_share"] == 0.5
    assert [(b["contact"], b["messages"], b["blast_share"]) for b in net["blasters"]] == [
        ("dee@blast.example", 6, 1.0)]
    assert net["people"] == 2 and net["my_offers"] == 0 and net["top_share"] == 0
    assert {p["pattern"]: p["contacts"] for p in net["patterns"]}["none"] == 2
    table = cli("report", "--as-of", "2023-07-01", "--min-messages", "1")
    assert "Your network at a glance" in table.stdout
    assert "1 of the 2 who write to you reach you mainly through one-to-many" in table.stdout


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_store(tmp_path_factory.mktemp("traj") / "sample.db")


def test_sample_network_adds_up(sample_db: Path) -> None:
    from click.testing import CliRunner

    from mailnet.cli import main

    result = CliRunner().invoke(main, ["--db", str(sample_db), "report", "--as-of",
                                       "2025-01-15", "--format", "json"])
    out = json.loads(result.stdout)
    net, people = out["network"], [r for r in out["contacts"] if r["kind"] == "person"]
    assert net["people"] == len(people)
    offers = sorted((r["my_offers"] for r in people), reverse=True)
    assert net["my_offers"] == sum(offers)
    assert net["top_share"] == round(sum(offers[:10]) / sum(offers), 3)
    assert [r["offers"] for r in net["top"]] == offers[:10]
    counts = {p["pattern"]: p["contacts"] for p in net["patterns"]}
    for pattern, n in counts.items():
        flagged = [r for r in people if (pattern in {f["pattern"] for f in r["flags"]})
                   or (pattern == "none" and not r["flags"])]
        assert len(flagged) == n, pattern
    lumen = next(o for o in net["organisations"] if o["domain"] == "lumen.example")
    assert (lumen["people"], lumen["allies"], lumen["takers"]) == (2, 1, 0)  # Dana, Ravi
    assert [b["contact"] for b in net["blasters"]] == ["noreply@growthhub.example"]
    # "Surfaces only when in need" and "vanishes after help" are marked on the series.
    paths = {r["contact"]: r["trajectory"] for r in out["contacts"]}
    tom = [q["quarter"] for q in paths["tom@becker.example"]["quarters"]
           if "surfaces_in_need" in q["marks"]]
    assert tom and all(paths["tom@becker.example"]["quarters"][i]["from_them"] > 0
                       for i, q in enumerate(paths["tom@becker.example"]["quarters"])
                       if q["quarter"] in tom)
    assert any("vanishes" in q["marks"] for q in paths["chris.dunn@fastmail.example"]["quarters"])
