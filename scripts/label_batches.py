"""Pick unlabelled messages for people to label, and write them out to read.

    PYTHONPATH=src python scripts/label_batches.py OUT [--cache DIR] [--pick uncertain]
                                                   [--batches 7] [--corpus lists/NAME ...]

By default a round reads enron-inboxes messages of owners already in business.csv's
train split; with --corpus lists/NAME (repeatable) it reads messages of those lists
(each must be a train-split list of lists.csv), each list its own "owner". What is read
(--pick):
`as-comes` (the fifth round) whichever they are, as the mail comes; or chosen by the
shipped model: `sales-hard` (the third) those whose sales probability is at least
--floor; `uncertain` (the fourth) those with some tag's probability within --margin of
its threshold, where the model is least sure. At most 2 per sender and --per-owner per owner
(a seeded shuffle, so one newsletter or one busy owner does not fill the round).
The model only chooses what is read; the labels are what the readers decide. Writes
OUT/candidates.csv and OUT/bN/batch.md (headers and the decoded body as a reader sees
it, one item per message); readers write OUT/bN/labels.csv. business.csv's `chosen`
column records the pick; list rounds are read as they come and need no such column.
"""

from __future__ import annotations

import argparse
import lzma
import mailbox
import shutil
import tempfile
from email.message import Message
from pathlib import Path

import numpy as np
import pandas as pd

from mailnet.classify import message_frame
from mailnet.corpora import SHARED_DIR, corpus_store
from mailnet.labels import LABELS_DIR, label_table
from mailnet.model import IntentModel, load_model
from mailnet.parse import body_text
from mailnet.store import TAGS, Store

INBOXES = "enron/enron-inboxes"
BODY_CHARS = 3500  # what a reader needs to judge; a digest's tail says nothing new


def _body(msg: Message) -> str:
    """The whole body a reader sees (the HTML as text where the plain part says nothing),
    quotes and forwarded originals included: the reader tells the new text apart."""
    text = body_text(msg).strip()
    return text if len(text) <= BODY_CHARS else text[:BODY_CHARS] + "\n[... cut ...]"


def _raw_messages(shared: Path, corpus: str) -> dict[str, Message]:
    """The corpus's messages by Message-ID (as mailnet stores it)."""
    found: dict[str, Message] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.mbox"
        with lzma.open(shared / "corpora" / f"{corpus}.mbox.xz") as fin, open(path, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 22)
        for msg in mailbox.mbox(path):
            found.setdefault((msg.get("Message-ID") or "").strip().strip("<>"), msg)
    return found


def _owner(corpus: str, msg: Message | None) -> str:
    """Whose mail a message is: an enron-inboxes message's X-Origin, a list's name."""
    if corpus != INBOXES:
        return corpus
    return (msg.get("X-Origin") or "").strip().lower() if msg is not None else ""


def _picked(probabilities: np.ndarray, thresholds: np.ndarray, pick: str, floor: float,
            margin: float) -> np.ndarray:
    """Which messages a round of kind `pick` would read."""
    if pick == "as-comes":
        return np.ones(len(probabilities), dtype=bool)
    if pick == "sales-hard":
        return probabilities[:, TAGS.index("sales")] >= floor
    return (np.abs(probabilities - thresholds) <= margin).any(axis=1)


def candidates(shared: Path, cache: Path, corpus: str, raw: dict[str, Message],
               model: IntentModel, pick: str, floor: float, margin: float, seed: int,
               per_owner: int) -> pd.DataFrame:
    labels = label_table(LABELS_DIR / ("business.csv" if corpus == INBOXES else "lists.csv"))
    train = labels[labels["split"] == "train"]
    train_owners = set(train["owner"] if corpus == INBOXES else train["corpus"])
    with Store(corpus_store(shared, corpus, cache)) as store:
        frame = message_frame(store, "WHERE NOT m.recovered").drop_duplicates("message_id")
    probabilities = model.probabilities(frame)
    frame["sales_p"] = probabilities[:, TAGS.index("sales")]
    frame["picked"] = _picked(probabilities, model.pipeline[-1].thresholds_, pick, floor, margin)
    frame["owner"] = [_owner(corpus, raw.get(m)) for m in frame["message_id"]]
    pool = frame[frame["owner"].isin(train_owners) & ~frame["message_id"].isin(
        labels["message_id"]) & frame["picked"] & frame["message_id"].isin(raw)]
    pool = pool.sample(frac=1, random_state=seed)
    return pool.groupby("from_addr").head(2).groupby("owner").head(per_owner)[
        ["message_id", "owner", "from_addr", "subject", "sales_p"]]


def write_batches(chosen: pd.DataFrame, raw: dict[str, Message], out: Path, batches: int) -> None:
    for k in range(batches):
        folder = out / f"b{k + 1}"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "batch.md", "w") as f:
            for i, row in enumerate(chosen.iloc[k::batches].itertuples(), 1):
                msg = raw[row.message_id]
                f.write(f"\n===== ITEM {i} =====\nmessage_id: {row.message_id}\n"
                        f"owner (recipient mailbox or list): {row.owner}\n")
                for name in ("From", "To", "Cc", "Date"):
                    f.write(f"{name}: {str(msg.get(name, ''))[:300]}\n")
                # As mailnet reads it: a raw 8-bit subject is mojibake in the mbox's headers.
                f.write(f"Subject: {row.subject[:300]}\n")
                f.write(f"\n{_body(msg)}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--shared", type=Path, default=SHARED_DIR)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "mailnet-train")
    parser.add_argument("--pick", choices=("as-comes", "sales-hard", "uncertain"),
                        default="uncertain")
    parser.add_argument("--floor", type=float, default=0.15, help="for --pick sales-hard")
    parser.add_argument("--margin", type=float, default=0.15, help="for --pick uncertain")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--corpus", action="append", help="lists/NAME; enron-inboxes if none")
    parser.add_argument("--per-owner", type=int, default=6)
    args = parser.parse_args()
    rounds, model = [], load_model()
    for corpus in args.corpus or [INBOXES]:
        raw = _raw_messages(args.shared, corpus)
        picked = candidates(args.shared, args.cache, corpus, raw, model, args.pick, args.floor,
                            args.margin, args.seed, args.per_owner)
        rounds.append((picked.assign(corpus=corpus), raw))
    chosen = pd.concat([picked for picked, _ in rounds]).sample(frac=1, random_state=args.seed)
    raw = {k: v for _, found in rounds for k, v in found.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    chosen.to_csv(args.out / "candidates.csv", index=False)
    write_batches(chosen, raw, args.out, args.batches)
    print(f"{len(chosen)} messages of {chosen['owner'].nunique()} owners in {args.batches} "
          f"batches under {args.out}")


if __name__ == "__main__":
    main()
