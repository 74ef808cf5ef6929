"""The yardstick for new-text extraction, shared by its test and bench/newtext.py."""

from __future__ import annotations

import email
import re
from email import policy
from pathlib import Path

from mailnet.parse import body_text
from mailnet.sources import open_source

# A quoted line: ">"-prefixed, or an "On … wrote:" header.
QUOTED = re.compile(r"^\s*>|^\s*On\b.{0,400}\bwrote:\s*$", re.MULTILINE)


def quoted_replies(path: Path, every: int = 7) -> list[tuple[str, str]]:
    """(position, decoded body) of every `every`-th message that is a reply still quoting."""
    sample = []
    for i, raw in enumerate(next(iter(open_source(path)))):
        if i % every:
            continue
        msg = email.message_from_bytes(raw.data, policy=policy.compat32)
        if msg.get("In-Reply-To"):
            body = body_text(msg)
            if QUOTED.search(body):
                sample.append((raw.origin.position, body))
    return sample


def own_words(body: str) -> bool:
    """Words outside quotes, forwards and the list footer: the sender wrote something."""
    body = body.split("\n_______________________________________________")[0]
    body = body.split("---------- Forwarded message")[0]
    lines = [line for line in body.splitlines()
             if not line.lstrip().startswith(">") and "wrote:" not in line]
    return len(" ".join(lines).split()) >= 3
