"""New-text extraction: what the sender wrote stays, everything quoted or boilerplate goes."""

from __future__ import annotations

import pytest

from mailnet.newtext import extract_new_text
from mailnet.parse import parse_message
from mailnet.sources import open_source

from conftest import corpus_path

CASES = {
    "prefixed quote": (
        "Try a lower sample rate.\n\n> I get overflows at 50 MS/s.\n> Any idea?\n",
        "Try a lower sample rate.",
    ),
    "gmail header wrapped over two lines, unprefixed quote": (
        "Use the safe image first.\n\nOn Thu, May 9, 2019, 8:05 AM Joe Martin via Users <\n"
        "users@lists.example.com> wrote:\n\nMy N210 will not boot.\n",
        "Use the safe image first.",
    ),
    "header wrapped before wrote": (
        "Thanks, that fixed it.\n\nOn Wed, Jun 5, 2019 at 4:23 PM Marcus Leech <m@x.org>\n"
        "wrote:\n> have you tried the other port?\n",
        "Thanks, that fixed it.",
    ),
    "bottom-posted answer under a quote": (
        "On 05/05/2019 01:05 PM, franz wrote:\n> How do I set the gain?\n>\n\n"
        "Use set_rx_gain() after the tune request.\n",
        "Use set_rx_gain() after the tune request.",
    ),
    "interleaved reply keeps every answer": (
        "Ann wrote:\n> Which version?\n4.6\n> Which radio?\nAn X310.\n",
        "4.6\nAn X310.",
    ),
    "answer between an unprefixed header and a prefixed quote (HTML mail)": (
        "On 2022-05-24 11:36, Shehla wrote:\n\nYou are still on UHD 4.2.\n\n"
        ">     [ERROR] discovery error\n",
        "You are still on UHD 4.2.",
    ),
    "answer written inside an unmarked quote is not lost": (
        "On 2022-01-23 13:43, Bert wrote:\n\nFrom: Marcus <m@x.org>\nSent: Sunday\n"
        "Subject: Re: N310\n\nCheck the MTU.\nI increased it to 9000, no change.\n",
        "Check the MTU.\nI increased it to 9000, no change.",
    ),
    "outlook original message": (
        "Please see attached.\n\n-----Original Message-----\nFrom: Bo\nSent: Monday\n"
        "Subject: report\n\nCan you send the report?\n",
        "Please see attached.",
    ),
    "outlook from/sent block": (
        "Happy to help, call me Tuesday.\n\n________________________________\n"
        "From: Dana Okafor <d@x.org>\nSent: Friday, 3 May 2024 10:00\nTo: Sam\n"
        "Subject: favour\n\nCould we talk?\n",
        "Happy to help, call me Tuesday.",
    ),
    "forwarded original": (
        "FYI, see below.\n\n---------- Forwarded message ---------\nFrom: X <x@y.z>\n"
        "Date: today\n\nBuy now!\n",
        "FYI, see below.",
    ),
    "signature delimiter": (
        "The fix is in 4.6.\n\n-- \nBob Smith\nSenior Engineer\n+1 555 0100\n",
        "The fix is in 4.6.",
    ),
    "sign-off block": (
        "I can review it tomorrow.\n\nBest regards,\nDana Okafor\nLumen Analytics\n",
        "I can review it tomorrow.",
    ),
    "mailing list footer": (
        "Rebuild the FPGA image.\n\n_______________________________________________\n"
        "USRP-users mailing list\nusers@lists.example.com\n"
        "http://lists.example.com/mailman/listinfo/users\n",
        "Rebuild the FPGA image.",
    ),
    "plain horizontal rule in own text is kept": (
        "Results:\n--------------------\nrate 10 MS/s ok\n",
        "Results:\n--------------------\nrate 10 MS/s ok",
    ),
    "lotus notes forward with a comment keeps the comment": (
        "Ina,\n\n Where can we put him?\n\nPhillip\n---------------------- Forwarded by "
        "Phillip K Allen/HOU/ECT on 12/27/2000\n04:07 PM ---------------------------\n\n"
        "Jane Doe\n12/27/2000 01:00 PM\nTo: Phillip K Allen/HOU/ECT@ECT\ncc:\n"
        "Subject: New hire\n\nBarry starts Monday.\n",
        "Ina,\n\n Where can we put him?\n\nPhillip",
    ),
    "lotus notes forward without a comment is nobody's new text": (
        "---------------------- Forwarded by Kim Bates/HOU/ECT on 04/23/2001 04:22 PM "
        "---------------------------\nFrom:\tAmanda Huble/ENRON@enronXgate on 04/20/2001\n"
        "To:\tKim Bates/HOU/ECT@ECT\ncc:\t\nSubject:\tPlease forward this\n\nParty at 5.\n",
        "",
    ),
    "lotus notes reply header": (
        "I will look into it.\n\n\nPeter F Keavey@ECT\n12/07/2000 07:06 AM\n"
        "To: Jeffrey C Gossett/HOU/ECT@ECT\ncc:\nSubject: EOL trades\n\nJeff, can you check?\n",
        "I will look into it.",
    ),
    "lotus notes reply header, name and date on one line": (
        "Done.\n\n\"Christi Smith\" <c@lrinet.com> on 09/05/2000 11:40:59 AM\n"
        "Please respond to <c@lrinet.com>\nTo: <P.Allen@enron.com>\ncc:\nSubject: RE: form\n\n"
        "We have not received it.\n",
        "Done.",
    ),
    "chinese original message": (
        "好的，谢谢。\n\n-----邮件原件-----\n发件人: Li <li@x.cn>\n发送时间: 2020年5月1日\n"
        "收件人: Wang\n主题: test\n\n请看附件。\n",
        "好的，谢谢。",
    ),
    "chinese outlook header": (
        "Fixed in v2.\n\n发件人: Li <li@x.cn>\n发送时间: 2020年5月1日 10:00\n收件人: Wang\n\n"
        "Please fix the build.\n",
        "Fixed in v2.",
    ),
    "german outlook header": (
        "Ja.\n\nVon: Anna <a@x.de>\nGesendet: Montag\nAn: Bo\n\nKommst du?\n",
        "Ja.",
    ),
    "french header with a space before the colon": (
        "Oui.\n\nDe : Anne <a@x.fr>\nEnvoyé : lundi\nÀ : Bo\n\nTu viens ?\n",
        "Oui.",
    ),
    "chinese wrote line": (
        "Sorry, a correction.\n\n在 2025/11/8 11:03, Zhihao Cheng 写道:\n\nThe bits differ.\n",
        "Sorry, a correction.",
    ),
    "name 於 date 寫道 line": (
        "Thank you.\n\nAndy <a@x.com> 於 2024年10月1日 週二 下午9:23寫道：\n\n> Use one line.\n"
        "\nI'll make it one line.\n",
        "Thank you.\n\nI'll make it one line.",
    ),
    "german wrote line": (
        "Passt.\n\nAm 3. Mai 2024 um 10:00 schrieb Anna <a@x.de>:\nKommst du?\n",
        "Passt.",
    ),
    "spanish wrote line": (
        "Sí.\n\nEl lun, 3 may 2024 a las 10:00, Ana <a@x.es> escribió:\n¿Vienes?\n",
        "Sí.",
    ),
    "all of it quoted, no line saying whose: what this sender sent": (
        "> CONFIDENTIAL\n>\n> The report they don't want you to read.\n>  Order today!\n",
        "CONFIDENTIAL\n\nThe report they don't want you to read.\n Order today!",
    ),
    "a forward quoted whole, its original's header inside the quote: nothing written": (
        "> -----Original Message-----\n> From: Ann\n> Sent: Friday\n> To: Bo\n>\n"
        "> Look at the paint department.\n",
        "",
    ),
    "a quote under a wrote line and nothing else: nothing written": (
        "On Mon, 3 May 2024, Ann wrote:\n> Are you coming?\n",
        "",
    ),
    "thanks line is the sender's text, not a signature": (
        "That worked.\n\nThanks!\nLee\n",
        "That worked.\n\nThanks!\nLee",
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_extract(name: str) -> None:
    body, expected = CASES[name]
    assert extract_new_text(body) == expected


def test_crlf_empty_and_a_rule_on_the_last_line() -> None:
    assert extract_new_text("Yes.\r\n\r\n> Is it?\r\n") == "Yes."
    assert extract_new_text("") == ""
    assert extract_new_text("Buy now\n______________") == "Buy now\n______________"


# Hostile shapes that took quadratic time (issue 14): a 300 KB line of spaces took
# about 20 minutes in the sign-off pattern, 8k "… wrote:" lines 19 s. Each is 1 MB or
# more here; linear work takes well under a second, the bound (timeout) is generous.
HOSTILE = {
    "a long run of spaces": "hello\n" + " " * 1_000_000 + "x\n",
    "spaces after a sign-off": "hi\nregards" + " " * 1_000_000 + "x\n",
    "many wrote lines above a quote": "a\n" + "Bob wrote:\n" * 100_000 + "> q\n",
    "many header starts": "From: x\nOn y\n\n" * 70_000 + "> q\n",
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_input_takes_linear_time(name: str) -> None:
    text = extract_new_text(HOSTILE[name])
    assert text.startswith(("hello", "hi", "a", "From")) or text == ""


# Real messages, by corpus and Message-ID, with what their sender wrote (read by hand).
REAL = [
    ("enron/keavey-p/notes_inbox", "<28401013.1075855640252.JavaMail.evans@thyme>",
     "I will look into it."),  # a Notes reply header above the quoted original
    ("enron/allen-p/sent", "<16575232.1075855680263.JavaMail.evans@thyme>",
     "Ina,\n\n Where can we put Barry T.?\n\nPhillip"),  # a Notes forward with a comment
    ("enron/keavey-p/inbox", "<18741866.1075845181063.JavaMail.evans@thyme>", ""),  # bare forward
    ("enron/keavey-p/notes_inbox", "<5841773.1075855641838.JavaMail.evans@thyme>", ""),
    ("lists/openbmc", "<CACD3sJZBqzQg+5gKiDQEpDst0OKPERkF0z6vnfQSHEAhVpPtEA@mail.gmail.com>",
     "Hi Andi:\n\nThank you for your prompt response and help.\n\nHave a nice day."),
]


@pytest.mark.parametrize(("corpus", "message_id", "expected"), REAL)
def test_real_quote_and_forward_blocks(corpus: str, message_id: str, expected: str) -> None:
    for source in open_source(corpus_path(corpus)):
        for raw in source:
            if message_id.encode() in raw.data[:raw.data.find(b"\n\n")]:
                parsed = parse_message(raw)
                if parsed.message_id == message_id.strip("<>"):
                    assert parsed.new_text == expected
                    return
    pytest.fail(f"{message_id} not found in {corpus}")
