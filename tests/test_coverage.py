"""What the mailbox can see: judged months, the archive's "now", who is asked, who is copied."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailnet.store import Store
from report_fixtures import tag_by_hand

from conftest import make_message

ME = "Sam Rivera <sam@rivera.example>"
START = datetime(2001, 1, 1, 9, tzinfo=UTC)


def write(folder: Path, name: str, data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.eml").write_bytes(data)


def archive(tmp_path: Path, received_months: range) -> Path:
    """A year of mail with Ann both ways every week, but received mail kept only for
    `received_months` (0-based months of 2001), as in a real export."""
    root = tmp_path / "mail"
    for week in range(52):
        day = START + timedelta(weeks=week)
        write(root / "Sent", f"s{week}", make_message(
            ME, "Ann Lee <ann@corp.example>", subject=f"Plan {week}",
            text="Could you send me the figures?\n", message_id=f"<s{week}@x>", date=day))
        if day.month - 1 in received_months:
            write(root / "INBOX", f"r{week}", make_message(
                "Ann Lee <ann@corp.example>", ME, subject=f"Figures {week}",
                text="Here are the figures you asked for.\n", message_id=f"<r{week}@x>",
                date=day + timedelta(hours=3)))
    return root


def report(cli, *args: str) -> dict:
    result = cli("report", "--format", "json", "--min-messages", "1", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_one_sided_months_are_not_judged_and_now_is_the_archives_end(cli, tmp_path) -> None:
    assert cli("import", str(archive(tmp_path, range(0, 3)))).exit_code == 0
    data = report(cli)
    period = data["period"]
    assert (period["judged_from"], period["judged_to"]) == ("2001-01-01", "2001-03-31")
    assert period["one_sided"] == [{"from": "2001-04", "to": "2001-12", "side": "sent only"}]
    # Not today: the newest message of this 2001 archive.
    assert period["as_of"] == "2001-12-24" and "not current" in period["as_of_reason"]
    ann = next(r for r in data["contacts"] if r["contact"] == "ann@corp.example")
    # Her received mail stops with the export, not with her: no silence is read into it.
    assert ann["flags"] == []
    table = " ".join(cli("report", "--min-messages", "1").output.split())
    assert "judged 2001-01-01 to 2001-03-31" in table and "sent only 2001-04 to 2001-12" in table


def test_a_mailbox_with_almost_no_received_mail_says_so_and_flags_nothing(cli, tmp_path) -> None:
    assert cli("import", str(archive(tmp_path, range(0)))).exit_code == 0
    data = report(cli)
    assert data["period"]["judged_from"] is None
    assert "almost no mail on one side" in data["period"]["note"]
    assert all(r["flags"] == [] for r in data["contacts"])


def test_until_without_as_of_is_now(cli, tmp_path) -> None:
    assert cli("import", str(archive(tmp_path, range(12)))).exit_code == 0
    data = report(cli, "--until", "2001-06-01")
    assert (data["period"]["as_of"], data["period"]["as_of_reason"]) == ("2001-06-01", "--until")


def test_only_a_one_to_one_ask_calls_for_an_answer(cli, tmp_path) -> None:
    """Asks to Bo in To are unanswered; Cy is only ever on Cc; a broadcast asks nobody
    (Di answers it, so the store links replies and silences can be judged)."""
    root = tmp_path / "mail"
    crowd = ", ".join(f"p{i}@corp.example" for i in range(10))
    for n in range(6):
        day = START + timedelta(days=7 * n)
        write(root / "Sent", f"a{n}", make_message(
            ME, "Bo <bo@corp.example>", subject=f"Question {n}", text="Can you check this?\n",
            message_id=f"<a{n}@x>", date=day, Cc="Cy <cy@corp.example>"))
        write(root / "Sent", f"b{n}", make_message(
            ME, f"Di <di@corp.example>, {crowd}", subject=f"All hands {n}",
            text="Can everyone fill in the survey?\n", message_id=f"<b{n}@x>", date=day))
        write(root / "INBOX", f"c{n}", make_message(
            "Bo <bo@corp.example>", ME, subject=f"News {n}", text="FYI, the report is out.\n",
            message_id=f"<c{n}@x>", date=day + timedelta(days=1)))
        write(root / "INBOX", f"d{n}", make_message(
            "Di <di@corp.example>", ME, subject=f"Note {n}", text="Our numbers are in.\n",
            message_id=f"<d{n}@x>", date=day + timedelta(days=2), In_Reply_To=f"<b{n}@x>"))
    assert cli("import", str(root)).exit_code == 0
    assert cli("classify").exit_code == 0
    rows = {r["contact"]: r for r in report(cli, "--as-of", "2001-06-01")["contacts"]}
    flags = {c: {f["pattern"] for f in r["flags"]} for c, r in rows.items()}
    assert "ignores_you" in flags["bo@corp.example"]
    assert flags["cy@corp.example"] == set()  # only ever copied: not judged
    assert "ignores_you" not in flags["di@corp.example"]  # the broadcast asked nobody
    assert rows["di@corp.example"]["my_requests"] == 0


def test_an_assistant_writing_from_my_sent_folder_is_me_shown_as_them(cli, tmp_path) -> None:
    root = tmp_path / "mail"
    write(root / "Sent", "a", make_message(ME, "Ann <ann@corp.example>", subject="Plan",
                                           text="Could you send the plan?\n", message_id="<a@x>",
                                           date=START))
    write(root / "Sent", "b", make_message("Kim Assistant <kim@corp.example>",
                                           "Ann <ann@corp.example>", subject="Plan, for Sam",
                                           text="Here is the agenda Sam promised.\n",
                                           message_id="<b@x>", date=START + timedelta(1)))
    write(root / "INBOX", "c", make_message("Ann <ann@corp.example>", ME, subject="Re: Plan",
                                            text="Here it is.\n", message_id="<c@x>",
                                            date=START + timedelta(2)))
    config = tmp_path / "config.toml"
    config.write_text('[identity]\naddresses = ["sam@rivera.example"]\n', encoding="utf-8")
    assert cli("import", str(root), config=config).exit_code == 0
    result = cli("contact", "ann@corp.example", "--format", "json", config=config)
    timeline = json.loads(result.output)["timeline"]
    assert [(e["direction"], e["sent_by"]) for e in timeline] == [
        ("from_me", "sam@rivera.example"), ("from_me", "kim@corp.example"),
        ("to_me", "ann@corp.example")]
    assert "kim@corp.example" not in cli("contacts", "--format", "csv", config=config).output


def lost_inbox(tmp_path: Path, originals_kept: int) -> Path:
    """Sam asks Bo one-to-one six times and Bo never answers; Sam also answered twelve
    messages of Bo's, of which the mailbox kept `originals_kept` (a deleted inbox)."""
    root = tmp_path / "mail"
    for n in range(12):
        day = START + timedelta(days=7 * n)
        if n < 6:
            write(root / "Sent", f"a{n}", make_message(
                ME, "Bo <bo@corp.example>", subject=f"Question {n}",
                text="Can you check this?\n", message_id=f"<a{n}@x>", date=day))
        if n < originals_kept:
            write(root / "INBOX", f"t{n}", make_message(
                "Bo <bo@corp.example>", ME, subject=f"Topic {n}", text="Our numbers are in.\n",
                message_id=f"<t{n}@x>", date=day + timedelta(days=1)))
        write(root / "Sent", f"r{n}", make_message(
            ME, "Bo <bo@corp.example>", subject=f"Re: Topic {n}", text="Noted, good work.\n",
            message_id=f"<r{n}@x>", date=day + timedelta(days=2)))
    # Bo's mail is there in every month, so each month holds both sides.
    for month in range(3):
        write(root / "INBOX", f"m{month}", make_message(
            "Bo <bo@corp.example>", ME, subject=f"Monthly {month}", text="The monthly note.\n",
            message_id=f"<m{month}@x>", date=START + timedelta(days=30 * month + 3)))
    return root


@pytest.mark.parametrize(("kept", "complete"), [(12, True), (2, False)])
def test_a_mailbox_that_lost_what_i_answered_does_not_judge_silence(cli, tmp_path, kept,
                                                                    complete) -> None:
    """Where the inbox kept the messages Sam answered, Bo's silence is seen; where it
    lost most of them (2 of 12 kept), whether Bo answers cannot be told."""
    assert cli("import", str(lost_inbox(tmp_path, kept))).exit_code == 0
    assert cli("classify").exit_code == 0  # Sam's questions are requests
    period = report(cli, "--as-of", "2001-06-01")["period"]
    assert (period["replies"], period["replies_seen"]) == (12, kept)
    assert period["received_complete"] is complete
    bo = next(r for r in report(cli, "--as-of", "2001-06-01")["contacts"]
              if r["contact"] == "bo@corp.example")
    assert ("ignores_you" in {f["pattern"] for f in bo["flags"]}) is complete
    table = " ".join(cli("report", "--as-of", "2001-06-01", "--min-messages", "1").output.split())
    assert ("received mail incomplete: 2 of your 12 replies answer a message the mailbox "
            "holds" in table) is not complete


def test_one_to_one_mailers_are_bulk_by_their_footer_or_host(cli, tmp_path) -> None:
    root = tmp_path / "mail"
    write(root / "Sent", "s", make_message(ME, "Ann <ann@corp.example>", subject="Plan",
                                           message_id="<s@x>", date=START))
    for n in range(4):
        day = START + timedelta(days=n + 1)
        write(root / "INBOX", f"w{n}", make_message(
            "Weather <forecast@weather.example>", ME, subject=f"Sam, your forecast for day {n}",
            text="Sunny, 24 degrees.\n\nTo unsubscribe from these forecasts, click here.\n",
            message_id=f"<w{n}@x>", date=day))
        write(root / "INBOX", f"o{n}", make_message(
            "Shop <shop@retail.example>", ME, subject=f"Sam, this week's offer {n}",
            text="Half price on all shoes.\n\nIf you'd rather not receive these offers by "
            "email, tell us here.\n", message_id=f"<o{n}@x>", date=day))
        write(root / "INBOX", f"r{n}", make_message(
            "AR System <arsystem@mailman.corp.example>", ME, subject=f"Approval {n} overdue",
            text="Please approve the access request.\n", message_id=f"<r{n}@x>", date=day))
        write(root / "INBOX", f"a{n}", make_message(
            "Ann <ann@corp.example>", ME, subject=f"Plan {n}",
            text="Here is the plan; tell me if I should unsubscribe us from the vendor list.\n"
            if n == 0 else "Here is the plan.\n", message_id=f"<a{n}@x>", date=day))
    assert cli("import", str(root)).exit_code == 0
    kinds = {r["contact"]: r["kind"] for r in report(cli)["contacts"]}
    assert kinds["forecast@weather.example"] == "bulk"
    assert kinds["shop@retail.example"] == "bulk"  # an opt-out line without "unsubscribe"
    assert kinds["arsystem@mailman.corp.example"] == "bulk"
    assert kinds["ann@corp.example"] == "person"


def test_a_one_off_pitch_is_no_pattern_for_the_prune_list(cli, tmp_path) -> None:
    """A mailer pruned as "nearly all pitches" needs as many pitches as a person's
    only_sales: a single stray message (a public letter, a one-off ad) is no pattern."""
    root = tmp_path / "mail"
    write(root / "Sent", "s", make_message(ME, "Ann <ann@corp.example>", subject="Plan",
                                           message_id="<s@x>", date=START))
    senders = {"deals@fares.example": 3, "once@promo.example": 1}
    pitches = []
    for sender, n in senders.items():
        for k in range(n):
            mid = f"<{sender.split('@')[0]}{k}@x>"
            pitches.append(mid.strip("<>"))
            write(root / "INBOX", mid.strip("<>"), make_message(
                f"Deals <{sender}>", ", ".join([ME, *(f"p{i}@corp.example" for i in range(8))]),
                subject=f"Fares from $99 ({k})", text="Book now.\n", message_id=mid,
                date=START + timedelta(days=k + 1)))
    assert cli("import", str(root)).exit_code == 0
    with Store(cli.db) as store:
        assert tag_by_hand(store, {mid: ("sales",) for mid in pitches}) == 4
    result = cli("prune")
    assert result.exit_code == 0, result.output
    pruned = {row["contact"] for row in csv.DictReader(io.StringIO(result.output))}
    assert pruned == {"deals@fares.example"}
