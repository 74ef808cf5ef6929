"""New-text extraction: what the sender wrote stays, everything quoted or boilerplate goes."""

from __future__ import annotations

import pytest

from mailnet.newtext import extract_new_text

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
