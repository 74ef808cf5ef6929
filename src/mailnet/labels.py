"""Labels: the committed label files, the authors' written examples and sentences, and
a user's own labels.

Labels of real messages refer to mailnet's own new text of each message: they
are looked up by corpus and Message-ID (:mod:`mailnet.corpora`). A user's labels
(:func:`read_labels`) are a CSV or JSONL of message-id → tags for messages in
the store, or a folder tree of .eml files with one folder per tag.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mailnet.classify import message_frame
from mailnet.errors import MailnetError
from mailnet.features import COLUMNS
from mailnet.parse import ParsedMessage, ParseError, parse_message
from mailnet.sources import open_source
from mailnet.store import TAGS, Store
from mailnet.tokens import MAX_CHARS

REPO = Path(__file__).resolve().parents[2]
LABELS_DIR = REPO / "training" / "labels"
NO_TAG = "none"  # the folder of .eml files that carry no tag


class LabelsError(MailnetError):
    """A labels file that is empty, unreadable, names unknown tags or unknown messages."""


@dataclass
class LabelledSet:
    """Model input rows (:data:`COLUMNS`) with a 0/1/UNKNOWN label per tag, a training
    weight and a group (the source of mail the row comes from; thresholds are chosen
    per source, :func:`mailnet.model.best_threshold`)."""

    frame: pd.DataFrame
    labels: np.ndarray
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0))
    groups: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))

    def __post_init__(self) -> None:
        if len(self.weights) != len(self.frame):
            self.weights = np.ones(len(self.frame))
        if len(self.groups) != len(self.frame):
            self.groups = np.full(len(self.frame), "", dtype=object)

    def __len__(self) -> int:
        return len(self.frame)

    @staticmethod
    def concat(parts: list[LabelledSet]) -> LabelledSet:
        return LabelledSet(pd.concat([p.frame for p in parts], ignore_index=True),
                           np.vstack([p.labels for p in parts]),
                           np.concatenate([p.weights for p in parts]),
                           np.concatenate([p.groups for p in parts]))


def _tags_row(tags: list[str], where: str) -> list[int]:
    unknown = sorted(set(tags) - set(TAGS))
    if unknown:
        raise LabelsError(f"{where}: unknown tag {', '.join(map(repr, unknown))} "
                          f"(tags are {', '.join(TAGS)})")
    return [int(t in tags) for t in TAGS]


def label_table(path: Path) -> pd.DataFrame:
    """A committed labels CSV: corpus, message_id, a 0/1 column per tag, split (train/test),
    and for business.csv the mailbox owner and how the message was chosen to be read."""
    return pd.read_csv(path, dtype={"corpus": str, "message_id": str, "owner": str,
                                    "split": str, "chosen": str})


def real_labels(labels_dir: Path = LABELS_DIR) -> pd.DataFrame:
    """real.csv: the labels the default model is trained and held out on."""
    return label_table(labels_dir / "real.csv")


def written_examples(labels_dir: Path = LABELS_DIR) -> LabelledSet:
    """Examples the mailnet authors wrote (situations a mailing list lacks)."""
    rows, labels = [], []
    for n, line in enumerate((labels_dir / "written.jsonl").read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        item = json.loads(line)
        rows.append(model_row(item["subject"], item["text"]))
        labels.append(_tags_row(item["tags"], f"written.jsonl line {n}"))
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return LabelledSet(frame, np.asarray(labels), groups=np.full(len(frame), "written",
                                                                  dtype=object))


def model_row(subject: str, text: str, **known: Any) -> dict[str, Any]:
    """A model input row for a text that has no headers beyond its subject, but for the
    columns (:data:`~mailnet.features.COLUMNS`) given in `known`."""
    return {"subject": subject, "new_text": text,
            "is_reply": int(subject.lower().startswith("re:")), "list_id": "", "precedence": "",
            "thread_role": 0, "from_addr": "", "auto_submitted": "", "recipients": "",
            "sender_messages": 1, "sender_replies": 0, "sender_addressed": 0, **known}


def _parsed_row(msg: ParsedMessage) -> dict[str, Any]:
    """A model input row for a lone parsed message (its thread and its sender's other mail
    unknown), as :func:`message_frame` reads it back."""
    return {**model_row(msg.subject, msg.new_text[:MAX_CHARS]),
            "is_reply": int(msg.parent_id is not None), "list_id": msg.list_id,
            "precedence": msg.precedence, "from_addr": msg.sender.address if msg.sender else "",
            "auto_submitted": msg.auto_submitted,
            "recipients": " ".join(a.address for a in (*msg.to, *msg.cc))}


def written_sentences(tag: str, labels_dir: Path = LABELS_DIR) -> tuple[list[str], np.ndarray]:
    """Sentences the mailnet authors wrote (written_sentences.jsonl) labelled for `tag`.

    Office-style requests and statements widen the request model beyond the
    Enron file's spam-heavy negatives; gratitude and sign-off sentences train
    the thanks model.
    """
    sentences, labels = [], []
    for line in (labels_dir / "written_sentences.jsonl").read_text("utf-8").splitlines():
        item = json.loads(line) if line.strip() else {}
        if tag in item:
            sentences.append(item["text"])
            labels.append(int(item[tag]))
    return sentences, np.asarray(labels)


def intent_sentences(path: Path) -> tuple[list[str], np.ndarray]:
    """A `Yes|No<TAB>sentence` file: sentences and 1 for a request (Yes)."""
    sentences, labels = [], []
    for line in path.read_text("utf-8").splitlines():
        label, _, sentence = line.partition("\t")
        if sentence:
            sentences.append(sentence)
            labels.append(int(label.strip() == "Yes"))
    return sentences, np.asarray(labels)


@dataclass(frozen=True)
class UserLabel:
    message_id: str
    tags: tuple[str, ...]


def _label_rows(path: Path) -> Iterator[tuple[str, list[str], str]]:
    """(message id, tags, where) from a CSV or JSONL labels file."""
    if path.suffix.lower() == ".jsonl":
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if line.strip():
                try:
                    item = json.loads(line)
                    tags = item["tags"]
                    yield str(item["message_id"]), tags.split() if isinstance(tags, str) \
                        else list(tags), f"{path.name} line {n}"
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise LabelsError(f"{path.name} line {n}: not a label record "
                                      f'{{"message_id": ..., "tags": [...]}} ({exc})') from None
        return
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:  # an empty file
            return
        fields = set(reader.fieldnames)
        if "message_id" not in fields:
            raise LabelsError(f"{path.name}: a CSV of labels needs a message_id column and "
                              "either a tags column or a 0/1 column per tag")
        for n, row in enumerate(reader, 2):
            if "tags" in fields:
                tags = (row["tags"] or "").replace(",", " ").split()
            else:
                tags = [t for t in fields - {"message_id"} if (row[t] or "0").strip() == "1"]
                extra = sorted(fields - {"message_id", "split", "corpus", *TAGS})
                if extra:
                    raise LabelsError(f"{path.name}: unknown tag column(s) {', '.join(extra)} "
                                      f"(tags are {', '.join(TAGS)})")
            yield row["message_id"].strip().strip("<>"), tags, f"{path.name} line {n}"


def read_labels(path: Path) -> list[UserLabel]:
    """Labels from a CSV/JSONL file (message_id → tags); one clear error for bad input."""
    if not path.is_file():
        raise LabelsError(f"labels file not found: {path}")
    try:
        found: dict[str, tuple[str, ...]] = {}
        for message_id, tags, where in _label_rows(path):
            if not message_id:
                raise LabelsError(f"{where}: no message id")
            row = _tags_row(tags, where)
            found[message_id] = tuple(t for t, on in zip(TAGS, row, strict=True) if on)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LabelsError(f"cannot read labels {path}: {exc}") from None
    if not found:
        raise LabelsError(f"no labels in {path}")
    return [UserLabel(m, t) for m, t in found.items()]


def eml_tree_labels(root: Path) -> LabelledSet:
    """A folder per tag (or `none`) of .eml files; a message in two folders has both tags."""
    tags: dict[str, set[str]] = {}
    rows: dict[str, dict[str, Any]] = {}
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    unknown = [p.name for p in folders if p.name not in (*TAGS, NO_TAG)]
    if unknown:
        raise LabelsError(f"{root}: unknown tag folder(s) {', '.join(unknown)} "
                          f"(folders are named {', '.join(TAGS)} or {NO_TAG})")
    for folder in folders:
        for eml in sorted(folder.rglob("*.eml")):
            try:
                raw = next(iter(open_source(eml)[0]))
                msg = parse_message(raw)
            except (ParseError, MailnetError, StopIteration) as exc:
                raise LabelsError(f"cannot read {eml}: {exc}") from None
            rows.setdefault(msg.message_id, _parsed_row(msg))
            tags.setdefault(msg.message_id, set()).update(
                [] if folder.name == NO_TAG else [folder.name])
    if not rows:
        raise LabelsError(f"no .eml files under {root}")
    labels = [[int(t in tags[m]) for t in TAGS] for m in rows]
    return LabelledSet(pd.DataFrame(list(rows.values()), columns=list(COLUMNS)),
                       np.asarray(labels))


def user_labelled_set(store: Store, path: Path) -> LabelledSet:
    """A user's labels as a training/evaluation set: a labels file or an .eml tree."""
    if path.is_dir():
        return eml_tree_labels(path)
    labels = read_labels(path)
    frame = message_frame(store).drop_duplicates("message_id").set_index("message_id")
    missing = [lab.message_id for lab in labels if lab.message_id not in frame.index]
    if missing:
        raise LabelsError(f"{len(missing)} labelled message id(s) not in the store, "
                          f"e.g. {missing[0]!r}: import that mail first")
    ids = [lab.message_id for lab in labels]
    y = np.asarray([[int(t in lab.tags) for t in TAGS] for lab in labels])
    return LabelledSet(frame.loc[ids, list(COLUMNS)].reset_index(drop=True), y)


def as_labelled_set(rows: pd.DataFrame) -> LabelledSet:
    """Rows of model input with a 0/1 column per tag (and a weight and a source, where
    they have them) as a :class:`LabelledSet`."""
    return LabelledSet(rows[list(COLUMNS)].reset_index(drop=True),
                       rows[list(TAGS)].to_numpy(dtype=int),
                       rows["weight"].to_numpy(dtype=float) if "weight" in rows else
                       np.ones(len(rows)),
                       rows["source"].to_numpy(dtype=object) if "source" in rows else
                       np.zeros(0, dtype=object))  # none: one group (LabelledSet fills it)


def parse_tag_answer(answer: str, keys: dict[str, str]) -> list[str]:
    """Tags typed in the labelling loop: names or first letters, e.g. "r t" or "request,thanks"."""
    tags = []
    for word in answer.replace(",", " ").split():
        words = [word] if word in TAGS else list(word)
        for w in words:
            tag = keys.get(w, w)
            if tag not in TAGS:
                raise LabelsError(f"unknown tag {word!r}")
            tags.append(tag)
    return sorted(set(tags), key=TAGS.index)


def append_label(path: Path, message_id: str, tags: list[str]) -> None:
    """Add one label to a CSV labels file (message_id,tags), written through at once."""
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        if new:
            writer.writerow(["message_id", "tags"])
        writer.writerow([message_id, " ".join(tags)])
