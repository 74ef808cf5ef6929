"""Direction and counterparts: who is me, who is the contact, on direct mail and on lists."""

from __future__ import annotations

from pathlib import Path

from mailnet.config import Config, Identity
from mailnet.contacts import FROM_ME, TO_ME, contact_summary, exchanges, my_addresses
from mailnet.parse import parse_message
from mailnet.sources import Origin, RawMessage
from mailnet.store import Store

from conftest import make_message

ME = "Sam Rivera <sam@rivera.example>"
LIST = dict(List_Id="Users <users.lists.example>", List_Post="<mailto:users@lists.example>")


def store_with(tmp_path: Path, mails: list[tuple[str, bytes]]) -> Store:
    store = Store(tmp_path / "m.db")
    store.add_messages([parse_message(RawMessage(data, Origin("t", folder, f"#{i}")))
                        for i, (folder, data) in enumerate(mails)])
    return store


def links(store: Store, config: Config) -> set[tuple[str, str, str]]:
    ex = exchanges(store, config)
    ids = ex.messages["message_id"]
    return {(ids[r.id], r.contact, r.direction) for r in ex.links.itertuples()}


def test_sent_folder_defines_me_and_direction(tmp_path: Path) -> None:
    store = store_with(tmp_path, [
        ("INBOX", make_message("Ann <Ann@Example.org>", ME, message_id="<a1@x>")),
        ("Sent", make_message(ME, "Ann <ann+work@example.org>, Bo <bo@x.org>",
                              message_id="<s1@x>", In_Reply_To="<a1@x>")),
    ])
    config = Config(db_path=store.path)
    assert my_addresses(store, config) == {"sam@rivera.example"}
    assert links(store, config) == {
        ("a1@x", "ann@example.org", TO_ME),
        ("s1@x", "ann@example.org", FROM_ME),
        ("s1@x", "bo@x.org", FROM_ME),
    }


def test_configured_identity_and_aliases(tmp_path: Path) -> None:
    store = store_with(tmp_path, [
        ("INBOX", make_message("Ann <ann@home.example>", "sam@work.example", message_id="<1@x>")),
        ("INBOX", make_message("Ann <ann@corp.example>", "sam@work.example", message_id="<2@x>")),
        ("Archive", make_message("sam@work.example", "ann@corp.example", message_id="<3@x>")),
    ])
    config = Config(db_path=store.path,
                    identity=Identity(addresses=frozenset({"sam@work.example"})),
                    aliases={"ann@home.example": "ann@corp.example"})
    summary = contact_summary(exchanges(store, config))
    assert summary[["contact", "from_them", "to_them"]].values.tolist() == [
        ["ann@corp.example", 2, 1]]


def test_list_reply_counts_toward_the_author_answered_not_the_list(tmp_path: Path) -> None:
    store = store_with(tmp_path, [
        ("INBOX", make_message("Joe <joe@x.org>", "users@lists.example", message_id="<q@x>",
                               **LIST)),
        ("INBOX", make_message(ME, "users@lists.example", message_id="<r@x>",
                               In_Reply_To="<q@x>", **LIST)),
        ("INBOX", make_message("Joe <joe@x.org>", "users@lists.example", message_id="<t@x>",
                               In_Reply_To="<r@x>", **LIST)),
        # a list conversation between others is neither to me nor from me
        ("INBOX", make_message("Kim <kim@x.org>", "users@lists.example", message_id="<k@x>",
                               In_Reply_To="<q@x>", **LIST)),
    ])
    config = Config(db_path=store.path,
                    identity=Identity(addresses=frozenset({"sam@rivera.example"})))
    assert links(store, config) == {
        ("r@x", "joe@x.org", FROM_ME),
        ("t@x", "joe@x.org", TO_ME),
    }


def test_bulk_senders_are_kept_apart(tmp_path: Path) -> None:
    store = store_with(tmp_path, [
        ("INBOX", make_message("Deals <noreply@shop.example>", ME, message_id="<d@x>")),
        ("INBOX", make_message("Ann <ann@x.org>", ME, message_id="<a@x>")),
    ])
    summary = contact_summary(exchanges(store, Config(db_path=store.path)))
    kinds = dict(zip(summary["contact"], summary["kind"], strict=True))
    assert kinds == {"noreply@shop.example": "bulk", "ann@x.org": "person"}


def test_my_display_name_from_another_address_is_me(tmp_path: Path) -> None:
    store = store_with(tmp_path, [
        ("Sent", make_message(ME, "Ann <ann@x.org>", message_id="<s1@x>")),
        ("INBOX", make_message("Sam Rivera <sam.rivera@home.example>", ME, message_id="<h@x>")),
        ("INBOX", make_message("Sam <sam@elsewhere.example>", ME, message_id="<o@x>")),
    ])
    me = my_addresses(store, Config(db_path=store.path))
    # The same full name is me; a bare first name is too weak to tell.
    assert me == {"sam@rivera.example", "sam.rivera@home.example"}


def test_suggest_aliases_prints_merges_to_paste_and_merges_nothing(cli, tmp_path: Path) -> None:
    mails = tmp_path / "mail"
    mails.mkdir()
    senders = ["Dana Okafor <dana@work.example>", "Dana Okafor <dana@work.example>",
               "dana okafor <dana.o@home.example>", "Bo <bo@x.org>"]
    for n, sender in enumerate(senders):
        (mails / f"{n}.eml").write_bytes(make_message(sender, ME, message_id=f"<m{n}@x>"))
    assert cli("import", str(mails)).exit_code == 0
    out = cli("contacts", "--suggest-aliases").output
    assert out == '[aliases]\n"dana@work.example" = ["dana.o@home.example"]\n'
    listed = cli("contacts", "--format", "csv").output
    assert "dana.o@home.example" in listed and "dana@work.example" in listed


def test_one_way_mass_senders_are_bulk_without_list_headers(tmp_path: Path) -> None:
    crowd = ", ".join(f"p{i}@corp.example" for i in range(12))
    store = store_with(tmp_path, [
        ("Sent", make_message(ME, "Ann <ann@corp.example>", message_id="<s@x>")),
        *[("INBOX", make_message("Memo <jane.roe@corp.example>", f"{ME}, {crowd}",
                                 message_id=f"<b{i}@x>")) for i in range(3)],
        *[("INBOX", make_message("Deals <deals@fares.example>", ME, message_id=f"<d{i}@x>"))
          for i in range(3)],
        ("INBOX", make_message("Ann <ann@corp.example>", ME, message_id="<a@x>")),
    ])
    summary = contact_summary(exchanges(store, Config(db_path=store.path)))
    kinds = dict(zip(summary["contact"], summary["kind"], strict=True))
    assert kinds == {"jane.roe@corp.example": "bulk", "deals@fares.example": "bulk",
                     "ann@corp.example": "person"}
