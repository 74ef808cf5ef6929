"""Threads without reply headers: subject fallback, stored as inferred, header links win."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from mailnet.store import _MIGRATIONS, SCHEMA_VERSION, Store
from mailnet.threads import MAX_DAYS, normalise_subject

from conftest import CORPORA, make_message


@pytest.mark.parametrize(("subject", "expected"), [
    ("Re: Gas Trading  Vision", ("gas trading vision", True)),
    ("RE: FW: Re[2]: budget", ("budget", True)),
    ("AW: SV: Angebot", ("angebot", True)),
    ("回复: 测试", ("测试", True)),
    ("回复：[Intel-wired-lan] [PATCH] igc: fix", ("igc: fix", True)),
    ("[PATCH v2] igc: fix", ("igc: fix", False)),
    ("Budget", ("budget", False)),
    ("Regarding the budget", ("regarding the budget", False)),
])
def test_normalise_subject(subject: str, expected: tuple[str, bool]) -> None:
    assert normalise_subject(subject) == expected


T0 = datetime(2001, 5, 1, 9, 0, tzinfo=UTC)


def _links(cli, *messages: bytes, tmp_path) -> dict[str, tuple[str | None, int]]:
    folder = tmp_path / "mail"
    folder.mkdir()
    for i, data in enumerate(messages):
        (folder / f"{i}.eml").write_bytes(data)
    assert cli("import", str(folder)).exit_code == 0
    with Store(cli.db) as store:
        return {m: (p, inferred) for m, p, inferred in store.db.execute(
            "SELECT message_id, parent_id, parent_inferred FROM messages")}


def test_reply_without_headers_links_to_the_latest_earlier_message_between_them(
        cli, tmp_path) -> None:
    ann, bob, cy = "ann@x.example", "bob@x.example", "cy@x.example"
    links = _links(
        cli,
        make_message(ann, bob, "Budget", message_id="<old@x>", date=T0 - timedelta(days=2)),
        make_message(ann, bob, "Budget", message_id="<ask@x>", date=T0),
        make_message(cy, "dee@x.example", "Budget", message_id="<other@x>",
                     date=T0 + timedelta(hours=1)),  # same subject, other people
        make_message(bob, ann, "RE: Budget", message_id="<answer@x>",
                     date=T0 + timedelta(hours=2)),
        make_message(ann, bob, "Re: RE: Budget", message_id="<thanks@x>",
                     date=T0 + timedelta(hours=3)),
        make_message(bob, ann, "Re: Budget", message_id="<late@x>",
                     date=T0 + timedelta(days=MAX_DAYS + 5)),  # too long after
        make_message(bob, ann, "Re: Budget", message_id="<headed@x>",
                     date=T0 + timedelta(hours=4), In_Reply_To="<old@x>"),
        tmp_path=tmp_path,
    )
    assert links["answer@x"] == ("ask@x", 1)
    assert links["thanks@x"] == ("answer@x", 1)
    assert links["late@x"] == (None, 0)
    assert links["headed@x"] == ("old@x", 0)  # the header link wins
    assert links["ask@x"] == (None, 0)  # no reply prefix: a new thread


def test_a_parent_imported_later_is_found(cli, tmp_path) -> None:
    first = tmp_path / "reply.eml"
    first.write_bytes(make_message("bob@x.example", "ann@x.example", "Re: Budget",
                                   message_id="<answer@x>", date=T0 + timedelta(hours=1)))
    assert cli("import", str(first)).exit_code == 0
    links = _links(cli, make_message("ann@x.example", "bob@x.example", "Budget",
                                     message_id="<ask@x>", date=T0), tmp_path=tmp_path)
    assert links["answer@x"] == ("ask@x", 1)


def test_a_store_from_before_is_migrated_and_linked(tmp_path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for script in _MIGRATIONS[:4]:
        db.executescript(script)
    for rowid, mid, sender, subject, date in ((1, "ask@x", "ann@x.example", "Budget", "09:00"),
                                              (2, "answer@x", "bob@x.example", "RE: Budget",
                                               "10:00")):
        db.execute(
            """INSERT INTO messages (id, message_id, content_hash, date, from_name, from_addr,
                   subject, refs, list_id, list_post, list_unsubscribe, precedence,
                   auto_submitted, is_bulk, size, new_text, source, folder, position)
               VALUES (?, ?, ?, ?, '', ?, ?, '', '', '', '', '', '', 0, 1, '', 's', 'f', ?)""",
            (rowid, mid, mid, f"2001-05-01T{date}:00Z", sender, subject, str(rowid)))
        db.execute("INSERT INTO recipients VALUES (?, 'to', '', ?)",
                   (rowid, "bob@x.example" if rowid == 1 else "ann@x.example"))
    db.execute("PRAGMA user_version = 4")
    db.commit()
    db.close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.db.execute(
            "SELECT thread_subject, reply_subject, parent_id, parent_inferred FROM messages "
            "WHERE id = 2").fetchone() == ("budget", 1, "ask@x", 1)


def test_real_enron_reply_links_to_its_parent(cli) -> None:
    """keavey-p has no reply headers at all. David Forster's "Re: EOL is 1 yr old today"
    quotes Peter Keavey's note of 11/29/2000 03:20 PM (read by hand): it is its parent."""
    folder = CORPORA / "enron" / "keavey-p"
    if not folder.exists():
        pytest.skip("needs ../shared/corpora/enron/keavey-p (the shared corpora are absent)")
    assert cli("import", *map(str, sorted(folder.glob("*.mbox.xz")))).exit_code == 0
    with Store(cli.db) as store:
        row = store.db.execute(
            "SELECT parent_id, parent_inferred FROM messages WHERE message_id = ?",
            ("31724262.1075855641468.JavaMail.evans@thyme",)).fetchone()
        replies, linked = store.db.execute(
            "SELECT count(*), sum(parent_id IS NOT NULL) FROM messages WHERE reply_subject"
        ).fetchone()
    assert row == ("11644878.1075855645732.JavaMail.evans@thyme", 1)
    print(f"keavey-p: {linked} of {replies} Re:/Fw: messages linked")
    assert linked >= 10
