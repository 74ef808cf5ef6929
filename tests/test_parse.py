"""Raw bytes → record: addresses, dates, ids, headers and text, on awkward real-world shapes."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from mailnet.parse import ParseError, message_ids, parse_message
from mailnet.sources import Origin, RawMessage, open_source

from conftest import corpus_path, make_message

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


@pytest.mark.parametrize("page", [b"<!DOCTYPE html PUBLIC \"-//W3C//DTD HTML 4.0//EN\"><html>",
                                  b"\n  <HTML>\n", b"<html lang=en>"])
def test_a_plain_part_that_is_an_html_page_is_read_as_html(page: bytes) -> None:
    """Old clients and archives typed HTML bodies as text/plain; tags are no one's words."""
    raw = (b"From: a@x.org\nTo: b@x.org\nSubject: s\nMessage-ID: <hp@x>\n"
           b"Content-Type: text/plain; charset=utf-8\n\n" + page +
           b"<head><style>p {color: red}</style></head><body><p>Could you <b>review</b> "
           b"my draft?</p></body></html>\n")
    assert parse(raw).new_text == "Could you review my draft?"
    prose = raw.replace(page, b"About <html> tags: ")
    assert parse(prose).new_text.startswith("About <html> tags: <head>")


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


def _two_parts(plain: bytes, html: bytes, kind: bytes = b"mixed") -> bytes:
    return (b"From: a@x.org\nTo: b@x.org\nSubject: s\nMessage-ID: <st@x>\nMIME-Version: 1.0\n"
            b"Content-Type: multipart/" + kind + b'; boundary="B"\n\n'
            b"--B\nContent-Type: text/html; charset=utf-8\n\n" + html + b"\n"
            b"--B\nContent-Type: text/plain; charset=utf-8\n\n" + plain + b"\n--B--\n")


@pytest.mark.parametrize("plain", [
    b"_______________________________________________\nUsers mailing list\nusers@lists.x.org\n"
    b"https://lists.x.org/mailman/listinfo/users",  # a list's footer as a part of its own
    b"View this e-mail in your browser: https://x.org/m/1",  # an alternative that is a stub
])
def test_html_is_read_when_the_plain_part_says_nothing(plain: bytes) -> None:
    m = parse(_two_parts(plain, b"<p>Could you review my draft?</p>"))
    assert m.new_text.startswith("Could you review my draft?")


def test_plain_part_that_says_something_is_kept() -> None:
    m = parse(_two_parts(b"Yes, Tuesday works.", b"<p>Yes, Tuesday works (html).</p>",
                         b"alternative"))
    assert m.new_text == "Yes, Tuesday works."


_LETTER = (b"<p>Dear member, your account has been chosen for a loyalty reward. Sign in "
           b"before Friday to confirm your card details and claim it, or it will expire "
           b"and pass to the next member on the list.</p><p>Rewards are limited to one per "
           b"household and are subject to verification. Members who confirm within 24 hours "
           b"also receive free shipping on their next three orders.</p>")


@pytest.mark.parametrize("plain", [
    b"This is a plain-text message body",
    b"Texto alternativo caso o HTML nao possa ser carregado",  # any language
])
def test_a_short_stand_in_for_a_longer_html_part_is_not_the_message(plain: bytes) -> None:
    m = parse(_two_parts(plain, _LETTER, b"alternative"))
    assert m.new_text.startswith("Dear member, your account has been chosen")


def test_a_plain_part_the_html_only_dresses_up_is_kept() -> None:
    short = b"Dear member, your account has been chosen for a loyalty reward."
    m = parse(_two_parts(short, b"<p><b>Dear member</b>, your account has been chosen for a "
                         b"loyalty reward.</p><p>Team X</p>", b"alternative"))
    assert m.new_text == short.decode()


@pytest.mark.parametrize(("value", "expected"), [
    ("<00000e256af3$0000@Received: from [192.168.1.2] ([24.7.157.115]) by mail.x.com >",
     "00000e256af3$0000@Received"),
    ("<92857960.1.GGD88395@thelocal.com", "92857960.1.GGD88395@thelocal.com"),
])
def test_broken_message_id_keeps_its_first_token(value: str, expected: str) -> None:
    assert message_ids(value) == [expected]
    raw = make_message(message_id=None).replace(b"Subject:", f"Message-ID: {value}\nSubject:"
                                                 .encode(), 1)
    assert parse(raw).message_id == expected


# Real messages of those kinds, by corpus and Message-ID (read by hand).
@pytest.mark.parametrize(("corpus", "message_id", "starts"), [
    # SourceForge added its footer as a text/plain part to an HTML-only question.
    ("lists/sf-user-lists", "893341637089509@mail.yandex.ru", "Hi!"),
    # MSN Groups: the plain alternative says "your e-mail program does not support HTML".
    ("spamassassin-hard-ham-1", "OneIncomeLiving-1396@groups.msn.com",
     "New Message on One Income Living\n\nHi! I'm new here."),
    # A phishing mail whose plain alternative only says "This is a plain-text message body".
    ("phishing_pot", "aTrnyNUZs24aruvJOumGKtyiY5sULWFs4yvQ6UJH28@localhost",
     "Your Exclusive Binance Bonus Awaits!"),
    # An HTML newsletter whose only part says text/plain (the Enron archive's way).
    ("enron/grigsby-m/inbox", "8547351.1075855353914.JavaMail.evans@thyme",
     "Mike's weather for 12/28/2001"),
    # A folded Message-ID without its closing bracket.
    ("spamassassin-spam-2", "00000e256af3$000032f9$00000b75@Received", ""),
])
def test_real_messages_whose_plain_part_says_nothing(corpus: str, message_id: str,
                                                     starts: str) -> None:
    for source in open_source(corpus_path(corpus)):
        for raw in source:
            if message_id.encode() in raw.data[:raw.data.find(b"\n\n")]:
                m = parse_message(raw)
                assert m.message_id == message_id
                assert m.new_text.startswith(starts)
                return
    pytest.fail(f"{message_id} not found in {corpus}")


def _list_wrapped(attached_from: str) -> bytes:
    """A list message whose From the list rewrote (author in Reply-To), holding a notice
    of the list's and an attached message from `attached_from`."""
    outer = EmailMessage()
    outer["From"] = "Ann Example via Radio <radio@lists.example.org>"
    outer["Reply-To"] = "Ann Example <ann@example.org>"
    outer["To"] = "radio@lists.example.org"
    outer["Subject"] = "[Radio] Fwd: clock drift"
    outer["Message-ID"] = "<wrapped@example.org>"
    outer["List-Post"] = "<mailto:radio@lists.example.org>"
    outer.set_content("Around this line the list says why it wrapped the message.\n")
    inner = EmailMessage()
    inner["From"] = attached_from
    inner["Subject"] = "clock drift"
    inner.set_content("The clock drifts by 2 ppm after an hour; here is the log.\n")
    outer.add_attachment(inner)
    return outer.as_bytes()


def test_a_message_the_list_wrapped_is_read_as_the_authors_own() -> None:
    """Mailman's DMARC "wrap" sends the author's message attached under a notice of its own:
    the author's words are the attached message's, the notice is nobody's."""
    m = parse(_list_wrapped("Ann Example <ann@example.org>"))
    assert m.sender is not None and m.sender.address == "ann@example.org"
    assert m.new_text == "The clock drifts by 2 ppm after an hour; here is the log."


def test_a_message_forwarded_as_an_attachment_keeps_the_forwarders_words() -> None:
    m = parse(_list_wrapped("Bo Other <bo@elsewhere.example>"))
    assert m.new_text.startswith("Around this line the list says why")


@pytest.mark.parametrize("message_id", [
    # A patch and a phishing mail of openwrt-devel, each wrapped by the list (DMARC).
    "mailman.40448.1557947460.2376.openwrt-devel@lists.openwrt.org",
    "mailman.2267.1570636517.2486.openwrt-devel@lists.openwrt.org",
])
def test_real_list_wrapped_messages_lose_the_lists_notice(message_id: str) -> None:
    for source in open_source(corpus_path("lists/openwrt-devel")):
        for raw in source:
            if message_id.encode() in raw.data[:raw.data.find(b"\n\n")]:
                m = parse_message(raw)
                assert m.sender is not None and "openwrt" not in m.sender.address
                assert m.new_text and "DMARC" not in m.new_text
                return
    pytest.fail(f"{message_id} not found in lists/openwrt-devel")
