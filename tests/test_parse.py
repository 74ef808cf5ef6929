"""Raw bytes → record: addresses, dates, ids, headers and text, on awkward real-world shapes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailnet.parse import ParseError, message_ids, parse_message
from mailnet.sources import Origin, RawMessage

from conftest import make_message

ORIGIN = Origin("test", "INBOX", "#0")


def parse(data: bytes):
    return parse_message(RawMessage(data, ORIGIN))


def test_addresses_subject_and_thread_headers() -> None:
    m = parse(make_message(
        sender='"Ann Example" <Ann+lists@Example.ORG>', to="sam@rivera.example, b@x.org",
        subject="=?utf-8?q?Gr=C3=BC=C3=9Fe?= aus Köln", Cc="Cee <c@x.org>",
        Reply_To="ann@example.org", In_Reply_To="<p1@x.org> (Ann's message)",
        References="<root@x.org>  <p1@x.org>",
    ))
    assert (m.sender.name, m.sender.address) == ("Ann Example", "ann@example.org")
    assert [a.address for a in m.to] == ["sam@rivera.example", "b@x.org"]
    assert [a.address for a in m.cc] == ["c@x.org"]
    assert m.subject == "Grüße aus Köln"
    assert m.message_id == "m1@example.org"
    assert m.in_reply_to == "p1@x.org"
    assert m.references == ["root@x.org", "p1@x.org"]
    assert m.parent_id == "p1@x.org"
    assert m.origin == ORIGIN
    assert len(m.content_hash) == 64


def test_date_is_utc_and_falls_back_to_received_never_now() -> None:
    m = parse(make_message(date=None, Date="Tue, 5 Mar 2024 10:00:00 +0200"))
    assert m.date == datetime(2024, 3, 5, 8, 0, tzinfo=UTC)
    broken = make_message(date=None, Date="sometime last week").replace(
        b"From:", b"Received: from a by b; Wed, 6 Mar 2024 09:30:00 -0500\n"
                  b"Received: from c by a; Wed, 6 Mar 2024 09:29:00 -0500\nFrom:", 1)
    assert parse(broken).date == datetime(2024, 3, 6, 14, 30, tzinfo=UTC)
    assert parse(make_message(date=None)).date is None


def test_missing_message_id_gets_a_stable_hash() -> None:
    raw = make_message(message_id=None)
    a, b = parse(raw), parse(raw)
    assert a.message_id == b.message_id
    assert a.message_id.startswith("mailnet-")
    assert parse(make_message(message_id=None, subject="other")).message_id != a.message_id


def test_html_only_body_becomes_text() -> None:
    raw = (b"From: a@x.org\nTo: b@x.org\nSubject: s\nMessage-ID: <h@x>\n"
           b"Content-Type: text/html; charset=utf-8\n\n"
           b"<html><body><p>Could you <b>review</b> my draft?</p><script>x()</script>"
           b"</body></html>\n")
    m = parse(raw)
    assert "Could you review my draft?" in m.new_text
    assert "<b>" not in m.new_text and "x()" not in m.new_text


def test_plain_preferred_over_html_and_attachments_ignored() -> None:
    raw = (b"From: a@x.org\nTo: b@x.org\nSubject: s\nMessage-ID: <mp@x>\nMIME-Version: 1.0\n"
           b'Content-Type: multipart/mixed; boundary="B"\n\n'
           b'--B\nContent-Type: multipart/alternative; boundary="A"\n\n'
           b"--A\nContent-Type: text/plain; charset=utf-8\n\nplain words\n"
           b"--A\nContent-Type: text/html; charset=utf-8\n\n<p>html words</p>\n--A--\n"
           b"--B\nContent-Type: text/plain; name=log.txt\nContent-Disposition: attachment; "
           b"filename=log.txt\n\nattached log line\n"
           b"--B\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n"
           b"JVBERi0xLjQK\n--B--\n")
    m = parse(raw)
    assert m.new_text == "plain words"


def test_declared_and_undeclared_charsets() -> None:
    latin = (b"From: a@x.org\nTo: b@x.org\nSubject: s\nMessage-ID: <l@x>\n"
             b"Content-Type: text/plain; charset=iso-8859-1\n\nCaf\xe9 cr\xe8me\n")
    assert parse(latin).new_text == "Café crème"
    undeclared = (b"From: a@x.org\nTo: b@x.org\nSubject: s\nMessage-ID: <u@x>\n"
                  b"Content-Type: text/plain\nContent-Transfer-Encoding: 8bit\n\n"
                  b"na\xefve \xfcber\n")
    text = parse(undeclared).new_text
    assert text.startswith("na") and text.endswith("ber")
    text.encode("utf-8")  # no lone surrogates reach the store


def test_list_headers_and_dmarc_rewritten_sender() -> None:
    m = parse(make_message(
        sender="Rob K via USRP-users <usrp-users@lists.example.com>",
        to="usrp-users@lists.example.com", Reply_To="Rob K <rob@uni.example>",
        List_Id="Users <users.lists.example.com>", Precedence="list",
        List_Post="<mailto:usrp-users@lists.example.com>",
        List_Unsubscribe="<mailto:usrp-users-request@lists.example.com?subject=unsubscribe>",
    ))
    assert m.sender.address == "rob@uni.example"
    assert m.list_post == "usrp-users@lists.example.com"
    assert m.list_id == "Users <users.lists.example.com>"
    assert m.precedence == "list"
    assert not m.is_bulk  # a discussion list is people talking


@pytest.mark.parametrize(("sender", "headers"), [
    ("No Reply <noreply@shop.example>", {}),
    ("Alerts <ann@shop.example>", {"Auto_Submitted": "auto-generated"}),
    ("Deals <deals@shop.example>", {"Precedence": "bulk",
                                    "List_Unsubscribe": "<mailto:u@shop.example>"}),
])
def test_automated_and_bulk_senders_are_marked(sender: str, headers: dict) -> None:
    assert parse(make_message(sender=sender, **headers)).is_bulk


def test_person_is_not_bulk() -> None:
    assert not parse(make_message()).is_bulk


@pytest.mark.parametrize("data", [b"", b"   \n\n", b"\x00\x01\x02 binary junk without headers"])
def test_unparseable_input_raises_with_reason(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse(data)


def test_message_ids_helper() -> None:
    assert message_ids("<a@b> <c@d>") == ["a@b", "c@d"]
    assert message_ids("bare@id.example") == ["bare@id.example"]
    assert message_ids("not an id") == []


def test_sender_header_stands_in_for_a_missing_from() -> None:
    raw = b"Sender: Bulk Robot <robot@x.org>\nTo: b@x.org\nSubject: s\nMessage-ID: <s@x>\n\nhi\n"
    assert parse(raw).sender.address == "robot@x.org"
