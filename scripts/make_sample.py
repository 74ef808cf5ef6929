"""Write the sample mailbox that ships with mailnet (src/mailnet/data/sample/).

The people and messages are invented for mailnet. "Me" is Sam Rivera
<sam@rivera.example>, who owns the mailbox: INBOX.mbox holds what Sam
received, Sent.mbox what Sam sent, so the demo needs no configuration.
Run `python scripts/make_sample.py` after editing; the output is committed.
"""

from __future__ import annotations

import mailbox
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src" / "mailnet" / "data" / "sample"
ME = "Sam Rivera <sam@rivera.example>"
START = datetime(2024, 1, 8, 9, 0, tzinfo=UTC)


@dataclass
class Mail:
    key: str  # short name, for In-Reply-To links within this file
    day: float  # days after START
    sender: str
    to: str
    subject: str
    text: str
    reply_to: str | None = None  # key of the message answered
    headers: dict[str, str] | None = None


PEOPLE = {
    "dana": "Dana Okafor <dana.okafor@lumen.example>",
    "lee": "Lee Chen <lee@chen-consulting.example>",
    "maria": "Maria Santos <maria@santos.example>",
    "news": "GrowthHub <noreply@growthhub.example>",
}

MAILS: list[Mail] = [
    Mail("d1", 0, PEOPLE["dana"], ME, "Intro to the data team?",
         "Hi Sam,\n\nCould you introduce me to someone on your data team? "
         "I'd love a 20-minute chat about how you run your pipelines.\n\nDana"),
    Mail("s1", 1, ME, PEOPLE["dana"], "Re: Intro to the data team?",
         "Hi Dana,\n\nSure, I've copied Priya, who leads it. Priya, Dana runs analytics "
         "at Lumen.\n\nSam", reply_to="d1"),
    Mail("d2", 2, PEOPLE["dana"], ME, "Re: Intro to the data team?",
         "Thanks so much Sam, really appreciated. Priya and I are meeting Thursday.",
         reply_to="s1"),
    Mail("l1", 5, PEOPLE["lee"], ME, "Quick favour",
         "Sam, can you review my proposal draft before Friday? It's attached as a link: "
         "docs.example/lee-draft\n\nLee"),
    Mail("s2", 6, ME, PEOPLE["lee"], "Re: Quick favour",
         "Done. Comments are in the doc; the pricing section needs the most work.",
         reply_to="l1"),
    Mail("m1", 9, PEOPLE["maria"], ME, "Job lead you might like",
         "Hey Sam, a friend's startup is hiring a staff engineer. Happy to pass your name "
         "along if you're interested.\n\nMaria"),
    Mail("s3", 10, ME, PEOPLE["maria"], "Re: Job lead you might like",
         "Thank you Maria, that's kind. I'm staying put for now, but I'll send it to a "
         "friend who is looking.", reply_to="m1"),
    Mail("n1", 12, PEOPLE["news"], ME, "Grow your pipeline 10x this quarter",
         "Book a demo of GrowthHub today and get 30% off the annual plan.",
         headers={"Precedence": "bulk",
                  "List-Unsubscribe": "<mailto:unsubscribe@growthhub.example>"}),
]


def build(mails: list[Mail]) -> dict[str, list[EmailMessage]]:
    folders: dict[str, list[EmailMessage]] = {"INBOX": [], "Sent": []}
    ids = {m.key: f"<{m.key}.{int(m.day * 100)}@sample.mailnet.example>" for m in mails}
    by_key = {m.key: m for m in mails}
    for m in mails:
        msg = EmailMessage()
        msg["From"] = m.sender
        msg["To"] = m.to
        msg["Subject"] = m.subject
        msg["Date"] = format_datetime(START + timedelta(days=m.day))
        msg["Message-ID"] = ids[m.key]
        if m.reply_to:
            chain, parent = [], by_key[m.reply_to]
            while parent:
                chain.insert(0, ids[parent.key])
                parent = by_key.get(parent.reply_to) if parent.reply_to else None
            msg["In-Reply-To"] = ids[m.reply_to]
            msg["References"] = " ".join(chain)
        for name, value in (m.headers or {}).items():
            msg[name] = value
        msg.set_content(m.text + "\n")
        folders["Sent" if m.sender == ME else "INBOX"].append(msg)
    return folders


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for folder, messages in build(MAILS).items():
        path = OUT / f"{folder}.mbox"
        path.unlink(missing_ok=True)
        box = mailbox.mbox(path)
        for msg in messages:
            box.add(msg)
        box.close()
        print(f"{path}: {len(messages)} messages")


if __name__ == "__main__":
    main()
