"""New text on real business mail: 200 Enron messages, judged by reading them.

    python bench/newtext_enron.py

The sample: 200 distinct messages (seed 200) from the six Enron mailboxes of
../shared/corpora/enron/. Is the new text right (the sender's own words, no
quoted or forwarded original left, nothing of the sender's lost)? The 94 whose
body holds any quote or forward mark (">", "wrote", "Original Message",
"Forwarded", a From:/To:/Subject: line, a Notes "Name@ORG" line or date) were
read side by side with their new text before and after; the 106 without any
such mark, whose new text is their whole body, were taken as right.
`newtext-enron-200.csv` holds the verdicts for the extractor before Lotus
Notes / Outlook / other-language blocks were cut (b54b5df) and
after, with a digest of the judged new text (no message text), so a later
change to the extractor shows which messages need reading again.
"""

from __future__ import annotations

import csv
import hashlib
import lzma
import mailbox
import random
import shutil
import tempfile
from pathlib import Path

from mailnet.newtext import extract_new_text
from mailnet.parse import body_text

from _common import SHARED

OWNERS = ("allen-p", "buy-r", "grigsby-m", "keavey-p", "presto-k", "badeer-r")
JUDGED = Path(__file__).with_name("newtext-enron-200.csv")


def sample(workdir: Path, size: int = 200, seed: int = 200) -> list[mailbox.mboxMessage]:
    files = []
    for owner in OWNERS:
        for src in (SHARED / "corpora" / "enron" / owner).glob("*.mbox.xz"):
            dst = workdir / f"{owner}-{src.name[:-3]}"
            with lzma.open(src) as fin, open(dst, "wb") as fout:
                shutil.copyfileobj(fin, fout)
            files.append(dst)
    seen, msgs = set(), []
    for path in sorted(files):
        for m in mailbox.mbox(path):
            if m["message-id"] not in seen:
                seen.add(m["message-id"])
                msgs.append(m)
    random.seed(seed)
    return random.sample(msgs, size)


def digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def main() -> None:
    judged = {row["message_id"]: row for row in csv.DictReader(JUDGED.open())}
    with tempfile.TemporaryDirectory() as tmp:
        msgs = sample(Path(tmp))
    changed = []
    for m in msgs:
        row = judged[m["message-id"]]
        if digest(extract_new_text(body_text(m))) != row["after_digest"]:
            changed.append(m["message-id"])
    n = len(judged)
    before = sum(int(r["right_before"]) for r in judged.values())
    after = sum(int(r["right_after"]) for r in judged.values())
    print(f"Enron sample: {n} messages read by hand")
    print(f"new text right, before (b54b5df): {before}/{n} = {before / n:.1%}")
    print(f"new text right, after:            {after}/{n} = {after / n:.1%}")
    print(f"new text changed since judged:    {len(changed)}" + (
        f" (read again: {' '.join(changed)})" if changed else ""))


if __name__ == "__main__":
    main()
