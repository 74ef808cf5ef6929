"""New-text extraction: mailnet's extractor against the libraries made for the job.

    python bench/newtext.py

Sample: every 7th message of the usrp-users archive that is a reply and still
carries quoted text in its body. Scored on the two things that matter to the
classifier: no quoted line left (`>` or an "On … wrote:" header), and the
sender's own words never dropped to nothing.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import mailparser_reply
import quotequail
from email_reply_parser import EmailReplyParser

from mailnet.newtext import extract_new_text

from _common import corpus

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from replies import QUOTED, own_words, quoted_replies


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bodies = [body for _, body in quoted_replies(corpus("usrp-users-2019-2024", Path(tmp)))]
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
