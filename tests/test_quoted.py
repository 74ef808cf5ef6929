"""The original a header-less reply quotes, recovered when the mailbox lost it."""

from __future__ import annotations

import json
import sqlite3
import time
import warnings
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from mailnet.addresses import Address
from mailnet.newtext import split_reply
from mailnet.quoted import original_date, read_quoted, resolve, with_resolved

from conftest import make_message

ME = "Sam Rivera <sam.rivera@corp.example>"
PST = timezone(timedelta(hours=-8))
DAY = datetime(2001, 11, 27, 15, 40, tzinfo=PST)  # the replies are dated -0800

OUTLOOK = """Yes, I can take it on Friday.

 -----Original Message-----
From: \tLee, Ann
Sent:\tTuesday, November 27, 2001 3:10 PM
To:\tRivera, Sam; Park, Jo
Cc:\tStone, Bo
Subject:\tBudget review

Could you review the budget before Friday?

Ann Lee
Finance
"""

NOTES = """Sure, send it over.




Ann Lee@CORP
11/27/2001 03:10 PM
To: Sam Rivera/HOU/CORP@CORP
cc:
Subject: Re: Budget review

Can you send me the list of open items?
"""

PEOPLE = [Address("", a) for a in ("sam.rivera@corp.example", "ann.lee@corp.example",
                                   "jo.park@corp.example", "b..stone@corp.example")]


@pytest.mark.parametrize(("body", "to", "text"), [
    (OUTLOOK, ["Rivera, Sam", "Park, Jo"], "Could you review the budget before Friday?"),
    (NOTES, ["Sam Rivera/HOU/CORP@CORP"], "Can you send me the list of open items?"),
])
def test_the_quoted_header_block_is_read(body: str, to: list[str], text: str) -> None:
    q = read_quoted(split_reply(body)[1])
    assert q is not None
    assert resolve(q.sender, PEOPLE) == Address("", "ann.lee@corp.example")
    assert q.to == to and q.text.startswith(text)
    assert "11/27/2001" in q.date or "November 27, 2001" in q.date


def test_names_resolve_only_when_they_can_mean_one_person() -> None:
    assert resolve("Stone, Bo", PEOPLE) == Address("", "b..stone@corp.example")
    assert resolve("Bo Stone <bo@else.example>", PEOPLE) == Address("", "bo@else.example")
    assert resolve("Lee, Mary", PEOPLE) is None  # no such person among them
    twins = [*PEOPLE, Address("", "a.lee@corp.example")]
    assert resolve("Lee, Ann", twins) is None  # two could be meant
    forward = "FYI\n\n---------------------- Forwarded by Sam Rivera/HOU/CORP on 11/28/2001\n"
    # A forward is not a reply's original.
    assert read_quoted(split_reply(forward + OUTLOOK)[1]) is None


def reply(body: str = OUTLOOK, **headers: str) -> bytes:
    return make_message(ME, "Ann Lee <ann.lee@corp.example>, jo.park@corp.example",
                        subject="RE: Budget review", text=body, message_id="<r1@corp.example>",
                        date=DAY, Cc="b..stone@corp.example", **headers)


def write(folder: Path, name: str, data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.eml").write_bytes(data)


def ann(cli) -> dict:
    result = cli("report", "--format", "json", "--min-messages", "1", "--as-of", "2002-01-01")
    assert result.exit_code == 0, result.output
    return next(r for r in json.loads(result.output)["contacts"]
                if r["contact"] == "ann.lee@corp.example")


def test_a_lost_original_is_recovered_from_my_reply(cli, tmp_path: Path) -> None:
    write(tmp_path / "mail" / "Sent", "r1", reply())
    assert cli("import", str(tmp_path / "mail")).exit_code == 0
    db = sqlite3.connect(cli.db)
    (sender, date, subject, text, recovered, to), = db.execute(
        "SELECT from_addr, date, subject, new_text, recovered, (SELECT group_concat(address) "
        "FROM recipients WHERE message = m.id AND kind = 'to') FROM messages m "
        "WHERE recovered")
    # Her 3:10 PM is the reply's own zone (-0800): 23:10 UTC, half an hour before it.
    assert (sender, date, subject, recovered) == ("ann.lee@corp.example",
                                                  "2001-11-27T23:10:00Z", "Budget review", 1)
    assert text.startswith("Could you review the budget") and "Yes, I can" not in text
    assert set(to.split(",")) == {"sam.rivera@corp.example", "jo.park@corp.example"}
    (parent,), = db.execute("SELECT parent_id FROM messages WHERE message_id = 'r1@corp.example'")
    assert parent == db.execute("SELECT message_id FROM messages WHERE recovered").fetchone()[0]
    assert ann(cli)["from_them"] == 1
    # Importing again adds nothing: the recovered original has one id.
    assert cli("import", str(tmp_path / "mail")).exit_code == 0
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 2


def test_a_kept_original_wins_over_its_quote(cli, tmp_path: Path) -> None:
    write(tmp_path / "mail" / "Sent", "r1", reply())
    write(tmp_path / "mail" / "INBOX", "o1", make_message(
        "Ann Lee <ann.lee@corp.example>", f"{ME}, jo.park@corp.example",
        subject="Budget review", text="Could you review the budget before Friday?\n",
        message_id="<o1@corp.example>", date=DAY - timedelta(minutes=31)))
    assert cli("import", str(tmp_path / "mail")).exit_code == 0
    row = ann(cli)
    assert row["from_them"] == 1  # the stored message, counted once
    result = cli("report", "--format", "json", "--min-messages", "1", "--as-of", "2002-01-01")
    period = json.loads(result.output)["period"]
    assert (period["replies"], period["replies_seen"]) == (1, 1)


def test_replies_with_headers_and_unknown_quoted_senders_recover_nothing(cli,
                                                                         tmp_path: Path) -> None:
    write(tmp_path / "mail" / "Sent", "r1", reply(In_Reply_To="<o1@corp.example>"))
    write(tmp_path / "mail" / "Sent", "r2", make_message(
        ME, "jo.park@corp.example", subject="RE: Budget review", text=OUTLOOK,
        message_id="<r2@corp.example>", date=DAY))  # Ann is not among its people
    assert cli("import", str(tmp_path / "mail")).exit_code == 0
    db = sqlite3.connect(cli.db)
    assert db.execute("SELECT count(*) FROM messages WHERE recovered").fetchone()[0] == 0


def test_a_quoted_senders_name_stops_where_its_address_starts() -> None:
    body = OUTLOOK.replace("From: \tLee, Ann", "From: \tAnn Lee [mailto:ann.lee@corp.example]")
    q = read_quoted(split_reply(body)[1])
    assert q is not None
    who = with_resolved(q, PEOPLE)
    assert who is not None and who[0] == Address("Ann Lee", "ann.lee@corp.example")


@pytest.mark.parametrize(("written", "utc"), [
    ("Tuesday, November 27, 2001 3:10 PM EST", datetime(2001, 11, 27, 20, 10, tzinfo=UTC)),
    ("Tuesday, November 27, 2001 3:10 PM -0600", datetime(2001, 11, 27, 21, 10, tzinfo=UTC)),
    ("Tuesday, November 27, 2001 3:10 PM", datetime(2001, 11, 27, 23, 10, tzinfo=UTC)),
    ("Tuesday, November 27, 2001 3:10 PM XYZT", datetime(2001, 11, 27, 23, 10, tzinfo=UTC)),
])
def test_a_quoted_date_is_read_in_its_written_zone_or_the_replys(
        written: str, utc: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    """A zone name is read as mail means it, never as this machine's zone (dateutil takes a
    name that matches the local zone's for it: here a machine whose zone is also called
    EST, ten hours east, as Australia's once was), and one it does not know is the
    reply's, silently: an import prints no warning per message."""
    monkeypatch.setenv("TZ", "EST-10")
    time.tzset()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert original_date(written, DAY) == utc
    finally:
        monkeypatch.undo()
        time.tzset()
