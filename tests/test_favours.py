"""The favour ledger and reply debt (mailnet.favours) on small hand-written stores, through
the real CLI: which reply fulfils an ask, thanks and gifts that settle it, what is owed."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailnet.store import Store
from report_fixtures import tag_by_hand

from conftest import make_message

ME = "Sam Rivera <sam@rivera.example>"
ANN = "Ann Lee <ann@corp.example>"
BO = "Bo Diaz <bo@corp.example>"
START = datetime(2001, 1, 1, 9, tzinfo=UTC)
AS_OF = ["--as-of", "2001-07-01"]


def write(root: Path, folder: str, key: str, sender: str, to: str, subject: str, text: str,
          day: float, parent: str | None = None) -> None:
    path = root / folder / f"{key}.eml"
    path.parent.mkdir(parents=True, exist_ok=True)
    headers = {"In_Reply_To": f"<{parent}@x>"} if parent else {}
    path.write_bytes(make_message(sender, to, subject=subject, text=text + "\n",
                                  message_id=f"<{key}@x>", date=START + timedelta(days=day),
                                  **headers))


def mine(root: Path, key: str, to: str, subject: str, text: str, day: float,
         parent: str | None = None) -> None:
    write(root, "Sent", key, ME, to, subject, text, day, parent)


def theirs(root: Path, key: str, sender: str, subject: str, text: str, day: float,
           parent: str | None = None) -> None:
    write(root, "INBOX", key, sender, ME, subject, text, day, parent)


def ledger_mail(tmp_path: Path) -> tuple[Path, dict[str, tuple[str, ...]]]:
    """Sam and Ann over six months. Sam asks four times:
    a1 Ann answers with a link (no offer tag), Sam thanks: thanked;
    a2 Ann answers with an offer, Sam never thanks, but later gives her a tip (g1): returned;
    a3 Ann first writes "let me look" (no gift), then gives: owed (the gift is the favour);
    a4 Ann answers with an offer, never thanked: owed.
    Ann asks once (b1), Sam never answers: an ask waiting on Sam (her out-of-office
    notice is none). Sam asks Bo (c1) and Bo
    never answers; Sam answers Bo's ask (d1) and Bo thanks."""
    root = tmp_path / "mail"
    # (key, Sam writes, to or from, subject, text, day, answers, tags)
    mail = [
        ("a1", True, ANN, "Slides", "Could you send me the slides?", 1, None, "request"),
        ("r1", False, ANN, "Re: Slides", "Sure: https://corp.example/slides", 2, "a1", ""),
        ("t1", True, ANN, "Re: Slides", "Thanks a lot!", 3, "r1", "thanks"),
        ("a2", True, ANN, "Budget", "Can you share the budget sheet?", 20, None, "request"),
        ("r2", False, ANN, "Re: Budget", "Here it is, enjoy.", 21, "a2", "offer"),
        ("g1", True, ANN, "A tip", "Here is a tool you'll like.", 40, None, "offer"),
        ("a3", True, ANN, "Intro", "Could you introduce me to Cy?", 60, None, "request"),
        ("r3a", False, ANN, "Re: Intro", "Let me look into it.", 61, "a3", ""),
        ("r3", False, ANN, "Re: Intro", "Done, I've introduced you.", 63, "r3a", "offer"),
        ("a4", True, ANN, "Review", "Could you review my draft?", 100, None, "request"),
        ("r4", False, ANN, "Re: Review", "Reviewed, comments inside.", 101, "a4", "offer"),
        ("b1", False, ANN, "Your notes", "Could you send me your notes?", 120, None, "request"),
        ("o1", False, ANN, "Out of Office AutoReply: Travel", "Please contact Bo instead.",
         121, None, "request"),  # reads like an ask, asks nothing
        ("c1", True, BO, "Report", "Could you send me the report?", 30, None, "request"),
        ("d1", False, BO, "Help", "Can you fix my script?", 50, None, "request"),
        ("e1", True, BO, "Re: Help", "Fixed: the patch is attached.", 51, "d1", ""),
        ("f1", False, BO, "Re: Help", "Thank you!", 52, "e1", "thanks"),
        ("h1", True, BO, "Lunch", "Lunch is on Friday.", 125, None, ""),  # Sam writes in May
    ]
    for key, sam, who, subject, text, day, parent, _ in mail:
        (mine if sam else theirs)(root, key, who, subject, text, day, parent)
    tags = {f"{m[0]}@x": tuple(m[-1].split()) for m in mail}
    return root, tags


def imported(cli, root: Path, tags: dict[str, tuple[str, ...]]) -> None:
    assert cli("import", str(root)).exit_code == 0
    with Store(cli.db) as store:
        tag_by_hand(store, tags)


def test_asks_are_paired_with_the_reply_that_gives_and_what_settled_it(cli, tmp_path) -> None:
    imported(cli, *ledger_mail(tmp_path))
    result = cli("report", *AS_OF, "--format", "json", "--min-messages", "1")
    data = json.loads(result.output)
    ann = next(r for r in data["contacts"] if r["contact"] == "ann@corp.example")["favours"]
    assert (ann["done_for_you"], ann["thanked_by_you"], ann["returned_by_you"]) == (4, 1, 1)
    owed = [(f["ask"]["subject"], f["reply"]["subject"]) for f in ann["you_owe"]]
    assert owed == [("Intro", "Re: Intro"), ("Review", "Re: Review")]
    assert [f["reply"]["date"][:10] for f in ann["you_owe"]] == ["2001-03-05", "2001-04-12"]
    assert [a["ask"]["subject"] for a in ann["waiting_on_you"]] == ["Your notes"]
    bo = next(r for r in data["contacts"] if r["contact"] == "bo@corp.example")["favours"]
    assert (bo["done_for_them"], bo["thanked_by_them"]) == (1, 1)  # the attached patch
    assert [a["ask"]["subject"] for a in bo["waiting_on_them"]] == ["Report"]
    # What you owe, most overdue first (ages: 118, 80 and 61 days, Sam's usual delay a day).
    assert [(d["kind"], d["subject"]) for d in data["owed"]] == [
        ("favour", "Re: Intro"), ("favour", "Re: Review"), ("ask", "Your notes")]


def test_owed_lists_your_debts_most_overdue_first(cli, tmp_path) -> None:
    imported(cli, *ledger_mail(tmp_path))
    rows = list(csv.DictReader(io.StringIO(cli("owed", *AS_OF, "--format", "csv").output)))
    assert [r["subject"] for r in rows] == ["Re: Intro", "Re: Review", "Your notes"]
    intro = rows[0]
    # Sam's usual reply delay to Ann is a day (his one reply to her came a day later).
    assert (intro["ask_subject"], float(intro["usual_days"])) == ("Intro", 1.0)
    assert float(intro["age_days"]) == float(intro["overdue"]) > 100
    table = cli("owed", *AS_OF).output
    assert "Ann Lee" in table and "thank or return their help" in table
    assert "answer their ask" in table
    # The window: before the third favour, only what was owed by then (nothing: the tip
    # returned the budget sheet); --limit keeps the most overdue.
    assert "You owe nobody" in cli("owed", "--until", "2001-03-01").output
    assert len(json.loads(cli("owed", *AS_OF, "--format", "json", "--limit", "1").output)[
        "owed"]) == 1


def test_contact_shows_its_favours_in_a_few_lines(cli, tmp_path) -> None:
    imported(cli, *ledger_mail(tmp_path))
    text = " ".join(cli("contact", "ann@corp.example", *AS_OF).output.split())
    assert "they did for you 4 (you thanked 1, returned 1)" in text
    assert "you owe them (2):" in text and "their asks you never answered (1):" in text
    record = json.loads(cli("contact", "ann@corp.example", *AS_OF, "--format", "json").output)
    assert len(record["favours"]["you_owe"]) == 2


def test_owed_output_is_escaped_for_its_medium(cli, tmp_path) -> None:
    root = tmp_path / "mail"
    mine(root, "a", ANN, "Plan", "Could you send the plan?", 1)
    theirs(root, "r", ANN, "=HYPERLINK(\"http://evil\")\x1b]0;owned\x07", "Here you go.", 2, "a")
    imported(cli, root, {"a@x": ("request",), "r@x": ("offer",)})
    rows = list(csv.DictReader(io.StringIO(cli("owed", *AS_OF, "--format", "csv").output)))
    assert rows[0]["subject"].startswith("'=HYPERLINK") and "\x1b" not in rows[0]["subject"]
    assert "\x1b" not in cli("owed", *AS_OF).output


def ignoring(tmp_path: Path, request_replies: int, question_replies: int) -> tuple[Path, dict]:
    """Sam asks Bo four things and six questions that are not asks (no request tag); Bo
    answers the first `request_replies` asks and the first `question_replies` questions."""
    root = tmp_path / "mail"
    tags = {}
    # Bo's own news every week, one of which Sam answers: both sides of the mailbox and
    # the links between replies are there, so replies can be judged.
    for n in range(12):
        theirs(root, f"n{n}", BO, f"News {n}", "The weekly news.", 5 * n + 2)
    mine(root, "rn", BO, "Re: News 0", "Noted.", 3, "n0")
    for n in range(6):
        if n < 4:
            mine(root, f"q{n}", BO, f"Ask {n}", "Could you send me the file?", 10 * n)
            tags[f"q{n}@x"] = ("request",)
        mine(root, f"w{n}", BO, f"Question {n}", "Did the launch go well?", 10 * n + 3)
        if n < min(request_replies, 4):
            theirs(root, f"rq{n}", BO, f"Re: Ask {n}", "Here it is.", 10 * n + 1, f"q{n}")
        if n < question_replies:
            theirs(root, f"rw{n}", BO, f"Re: Question {n}", "It did.", 10 * n + 4, f"w{n}")
    return root, tags


def flags_of_bo(cli) -> set[str]:
    data = json.loads(cli("report", *AS_OF, "--format", "json", "--min-messages", "1").output)
    bo = next(r for r in data["contacts"] if r["contact"] == "bo@corp.example")
    return {f["pattern"] for f in bo["flags"]}


def test_ignoring_your_requests_while_answering_the_rest_is_ignoring_you(cli, tmp_path) -> None:
    imported(cli, *ignoring(tmp_path, request_replies=0, question_replies=6))
    assert "ignores_you" in flags_of_bo(cli)
    text = " ".join(cli("report", *AS_OF, "--min-messages", "1").output.split())
    assert ("4 of your 4 requests to them got no reply (they answered 0); they answered 6 of "
            "your 6 other messages that call for an answer") in text


def test_a_busy_contact_who_answers_every_ask_is_not_ignoring_you(cli, tmp_path) -> None:
    imported(cli, *ignoring(tmp_path, request_replies=4, question_replies=0))
    assert "ignores_you" not in flags_of_bo(cli)


def test_someone_who_answers_nothing_is_not_singling_out_your_asks(cli, tmp_path) -> None:
    imported(cli, *ignoring(tmp_path, request_replies=0, question_replies=0))
    assert "ignores_you" not in flags_of_bo(cli)
