"""New-text extraction: mailnet's extractor against the libraries made for the job.

    python bench/newtext.py

Sample: every 7th message of the usrp-users archive that is a reply and still
carries quoted text in its body. Scored on the two things that matter to the
classifier: no quoted line left (`>` or an "On … wrote:" header), and the
sender's own words never dropped to nothing.
"""

from __future__ import annotations

import email
import re
import tempfile
import time
from collections.abc import Callable
from email import policy
from pathlib import Path

import mailparser
import mailparser_reply
import quotequail
from email_reply_parser import EmailReplyParser

from mailnet.newtext import extract_new_text
from mailnet.parse import body_text
from mailnet.sources import open_source

from _common import corpus

QUOTED = re.compile(r"^\s*>|^\s*On\b.{0,400}\bwrote:\s*$", re.MULTILINE)


def sample(path: Path) -> list[str]:
    bodies = []
    for i, raw in enumerate(next(iter(open_source(path)))):
        if i % 7:
            continue
        msg = email.message_from_bytes(raw.data, policy=policy.compat32)
        if msg.get("In-Reply-To"):
            body = body_text(mailparser.MailParser(msg))
            if QUOTED.search(body):
                bodies.append(body)
    return bodies


def own_words(body: str) -> bool:
    body = body.split("\n_______________________________________________")[0]
    body = body.split("---------- Forwarded message")[0]
    lines = [line for line in body.splitlines()
             if not line.lstrip().startswith(">") and "wrote:" not in line]
    return len(" ".join(lines).split()) >= 3


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bodies = sample(corpus("usrp-users-2019-2024", Path(tmp)))
    reply_parser = mailparser_reply.EmailReplyParser(languages=["en"])
    candidates: dict[str, Callable[[str], str]] = {
        "mailnet.newtext": extract_new_text,
        "email-reply-parser": EmailReplyParser.parse_reply,
        "mail-parser-reply": lambda b: reply_parser.parse_reply(b) or "",
        "quotequail": lambda b: "\n".join(t for keep, t in quotequail.quote(b) if keep),
    }
    print(f"{len(bodies)} real replies with quoted text")
    print(f"{'extractor':20} {'no quote left':>14} {'emptied':>8} {'time':>7}")
    for name, extract in candidates.items():
        start = time.perf_counter()
        out = [extract(b) for b in bodies]
        seconds = time.perf_counter() - start
        clean = sum(not QUOTED.search(t) for t in out)
        emptied = sum(own_words(b) and not t.strip() for b, t in zip(bodies, out, strict=True))
        print(f"{name:20} {clean / len(bodies):>13.1%} {emptied:>8} {seconds:>6.2f}s")


if __name__ == "__main__":
    main()
