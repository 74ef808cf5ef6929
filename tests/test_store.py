"""The SQLite store: schema versions, WAL, deduplication, errors and threads."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mailnet.parse import parse_message
from mailnet.sources import Origin, RawMessage
from mailnet.store import SCHEMA_VERSION, Store, StoreError

from conftest import make_message


def parsed(data: bytes, position: str = "#0"):
    return parse_message(RawMessage(data, Origin("test", "INBOX", position)))


def test_new_store_is_migrated_and_in_wal_mode(tmp_path: Path) -> None:
    with Store(tmp_path / "sub" / "m.db") as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with Store(tmp_path / "sub" / "m.db") as again:  # reopening runs no migration twice
        assert again.schema_version == SCHEMA_VERSION


def test_a_store_from_a_newer_mailnet_is_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "new.db")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer mailnet"):
        Store(tmp_path / "new.db")


def test_same_message_twice_is_stored_once_but_a_different_one_with_its_id_is_kept(
        tmp_path: Path) -> None:
    with Store(tmp_path / "m.db") as store:
        first = store.add_messages([parsed(make_message(to="a@x.org, b@x.org", Cc="c@x.org"))])
        assert (first.added, first.duplicates) == (1, 0)
        again = store.add_messages([parsed(make_message(to="a@x.org, b@x.org", Cc="c@x.org"))])
        assert (again.added, again.duplicates) == (0, 1)
        clash = store.add_messages([parsed(make_message(text="other body, same id\n"))])
        assert clash.added == 1
        assert store.count() == 2
        assert store.count("recipients") == 3 + 1


def test_errors_are_recorded_once_per_position(tmp_path: Path) -> None:
    with Store(tmp_path / "m.db") as store:
        origin = Origin("box.mbox", "INBOX", "#7")
        store.add_error(origin, "no headers")
        store.add_error(origin, "no headers")
        assert [tuple(r) for r in store.errors()] == [("box.mbox", "INBOX", "#7", "no headers")]


def test_threads_resolve_through_in_reply_to_and_references(tmp_path: Path) -> None:
    root = make_message(message_id="<r@x>", subject="q")
    reply = make_message(message_id="<a@x>", In_Reply_To="<r@x>", References="<r@x>")
    # In-Reply-To points outside the store; References still leads home.
    late = make_message(message_id="<b@x>", In_Reply_To="<missing@x>",
                        References="<r@x> <a@x>")
    other = make_message(message_id="<o@x>")
    with Store(tmp_path / "m.db") as store:
        store.add_messages([parsed(d, f"#{i}") for i, d in enumerate([root, reply, late, other])])
        ids = dict(store.db.execute("SELECT message_id, id FROM messages"))
        assert store.parent(ids["a@x"]) == ids["r@x"]
        assert store.parent(ids["b@x"]) == ids["a@x"]
        assert store.parent(ids["r@x"]) is None
        assert store.thread(ids["a@x"]) == [ids["r@x"], ids["a@x"], ids["b@x"]]
        assert store.thread(ids["o@x"]) == [ids["o@x"]]


def test_tags_are_replaced_not_duplicated(tmp_path: Path) -> None:
    with Store(tmp_path / "m.db") as store:
        store.add_messages([parsed(make_message())])
        probs = {"request": 0.9, "offer": 0.1, "thanks": 0.0, "sales": 0.0}
        store.set_tags([(1, probs, ["request"])], "v1")
        store.set_tags([(1, {**probs, "thanks": 0.8}, ["request", "thanks"])], "v2")
        rows = store.db.execute("SELECT labels, model_version FROM tags").fetchall()
        assert rows == [("request thanks", "v2")]


def test_text_marks_are_kept_at_import_and_filled_in_for_an_older_store(tmp_path: Path) -> None:
    """Whether a message asks a question, carries an unsubscribe line or hands over a link
    is stored with it (reports read these marks, not all the text); migrating an older
    store fills them in."""
    messages = [parsed(make_message(text="Can you send it?\n", message_id="<q@x>")),
                parsed(make_message(text="News.\nTo unsubscribe, click here.\n",
                                    message_id="<f@x>")),
                parsed(make_message(text="The plan: https://plan.example\n",
                                    message_id="<l@x>")),
                parsed(make_message(text="Plain news.\n", message_id="<n@x>"))]
    with Store(tmp_path / "m.db") as store:
        store.add_messages(messages)

    def marks() -> dict[str, tuple[int, int, int]]:
        db = sqlite3.connect(tmp_path / "m.db")
        return {m: (q, f, k) for m, q, f, k in db.execute(
            "SELECT message_id, question, footer, link FROM messages")}

    expected = {"q@x": (1, 0, 0), "f@x": (0, 1, 0), "l@x": (0, 0, 1), "n@x": (0, 0, 0)}
    assert marks() == expected
    db = sqlite3.connect(tmp_path / "m.db")
    db.executescript("ALTER TABLE messages DROP COLUMN question; "
                     "ALTER TABLE messages DROP COLUMN footer; "
                     "ALTER TABLE messages DROP COLUMN link; PRAGMA user_version = 6;")
    db.close()
    with Store(tmp_path / "m.db") as store:
        assert store.schema_version == SCHEMA_VERSION
    assert marks() == expected


def test_migration_8_reads_recovered_names_up_to_their_address(tmp_path: Path) -> None:
    with Store(tmp_path / "m.db") as store:
        store.add_messages([parsed(make_message(message_id="<k@x>"))])
    db = sqlite3.connect(tmp_path / "m.db")
    db.executescript(
        "UPDATE messages SET recovered = 1, from_name = 'Ann Lee [mailto:ann.lee'; "
        "INSERT INTO messages (message_id, content_hash, date, from_name, from_addr, subject, "
        "refs, list_id, list_post, list_unsubscribe, precedence, auto_submitted, is_bulk, "
        "size, new_text, source, folder, position) SELECT 'kept@x', 'h', date, "
        "'Bo Stone [Finance]', from_addr, subject, refs, list_id, list_post, list_unsubscribe, "
        "precedence, auto_submitted, is_bulk, size, new_text, source, folder, 'p2' "
        "FROM messages; PRAGMA user_version = 7;")
    db.close()
    with Store(tmp_path / "m.db") as store:
        assert store.schema_version == SCHEMA_VERSION
        names = dict(store.db.execute("SELECT message_id, from_name FROM messages"))
    # Only recovered originals were named from a quote; a stored message keeps its name.
    assert names == {"k@x": "Ann Lee", "kept@x": "Bo Stone [Finance]"}


@pytest.mark.parametrize("footer", [
    "If you'd rather not receive these offers by email, tell us here.",  # no "unsubscribe"
    "To opt out of these alerts, reply STOP.",
    "Si no desea recibir más correos, haga clic aquí para darse de baja.",
    "配信停止はこちら",
])
def test_a_mailers_opt_out_line_is_a_footer_in_its_own_words(tmp_path: Path,
                                                              footer: str) -> None:
    """Not every mailer says "unsubscribe"; migration 9 marks what older stores missed."""
    with Store(tmp_path / "m.db") as store:
        store.add_messages([parsed(make_message(text=f"Deals.\n\n{footer}\n",
                                                message_id="<o@x>")),
                            parsed(make_message(text="I'll opt in.\n", message_id="<p@x>"))])
    db = sqlite3.connect(tmp_path / "m.db")
    assert dict(db.execute("SELECT message_id, footer FROM messages")) == {"o@x": 1, "p@x": 0}
    db.executescript("UPDATE messages SET footer = 0; PRAGMA user_version = 8;")
    db.close()
    with Store(tmp_path / "m.db") as store:
        assert store.schema_version == SCHEMA_VERSION
        assert dict(store.db.execute("SELECT message_id, footer FROM messages")) == {
            "o@x": 1, "p@x": 0}
