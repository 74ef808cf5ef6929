"""The committed label files are well-formed (runs without ../shared).

A label that names a message twice, carries a tag other than 0/1, or puts one
mailbox owner (business.csv) or one list (lists.csv) on both sides of the split
would make the held-out figures of issue 11 leak or miscount.
"""

from __future__ import annotations

import pandas as pd
import pytest

from mailnet.corpora import CHOSEN_UNTRAINED, CHOSEN_WEIGHT, weighed
from mailnet.features import COLUMNS as MODEL_COLUMNS
from mailnet.labels import LABELS_DIR, LabelledSet, as_labelled_set, label_table, written_examples
from mailnet.model import UNKNOWN
from mailnet.store import TAGS

COLUMNS = {
    "real.csv": ["corpus", "message_id", *TAGS, "split"],
    "business.csv": ["corpus", "message_id", "owner", *TAGS, "split", "chosen"],
    "lists.csv": ["corpus", "message_id", *TAGS, "split"],
}
GROUP = {"business.csv": "owner", "lists.csv": "corpus"}  # what the split holds out


@pytest.fixture(scope="module", params=sorted(COLUMNS))
def labels(request) -> tuple[str, pd.DataFrame]:
    return request.param, label_table(LABELS_DIR / request.param)


def test_columns_and_values(labels: tuple[str, pd.DataFrame]) -> None:
    name, table = labels
    assert list(table.columns) == COLUMNS[name]
    assert len(table) > 0
    assert not table.isna().any().any(), table[table.isna().any(axis=1)].head()
    for tag in TAGS:
        assert set(table[tag].unique()) <= {0, 1}, (tag, table[tag].unique())
    assert set(table["split"]) == {"train", "test"}
    assert (table["message_id"].str.strip() != "").all()


def test_no_duplicate_messages(labels: tuple[str, pd.DataFrame]) -> None:
    _, table = labels
    dup = table[table.duplicated(["corpus", "message_id"], keep=False)]
    assert dup.empty, dup.head()


@pytest.mark.parametrize("name", sorted(GROUP))
def test_split_holds_out_whole_groups(name: str) -> None:
    table = label_table(LABELS_DIR / name)
    splits = table.groupby(GROUP[name])["split"].nunique()
    assert (splits == 1).all(), list(splits[splits > 1].index)
    share = table.groupby(GROUP[name])["split"].first().eq("test").mean()
    assert 0.15 <= share <= 0.25, share


def test_business_corpora_and_owners() -> None:
    table = label_table(LABELS_DIR / "business.csv")
    assert table["corpus"].str.startswith("enron/").all()
    own = table[table["corpus"] != "enron/enron-inboxes"]
    # enron/OWNER/FOLDER: the row's owner is the mailbox's owner.
    assert (own["corpus"].str.split("/").str[1] == own["owner"]).all()
    assert {"enron/enron-inboxes"} < set(table["corpus"])
    assert not own.empty


def test_lists_corpora() -> None:
    table = label_table(LABELS_DIR / "lists.csv")
    assert table["corpus"].str.fullmatch(r"lists/[\w.-]+").all()


def test_business_rows_say_how_they_were_chosen() -> None:
    """A row the model chose to be read is weighted as such (CHOSEN_WEIGHT); such a round
    adds no owner, so it cannot move the held-out split."""
    table = label_table(LABELS_DIR / "business.csv")
    assert set(table["chosen"]) <= set(CHOSEN_WEIGHT)
    hard = table[table["chosen"] != "any"]
    assert (hard["split"] == "train").all()
    assert set(hard["owner"]) <= set(table.loc[table["chosen"] == "any", "owner"])


def test_rows_are_weighed_by_how_they_were_chosen_and_untrained_tags_are_unknown() -> None:
    chosen = [*CHOSEN_WEIGHT, None]  # None: a row of a file without `chosen` (real.csv)
    rows = weighed(pd.DataFrame({"chosen": chosen, **{t: 1 for t in TAGS}}))
    teaching = [c for c in chosen if set(CHOSEN_UNTRAINED.get(c, ())) != set(TAGS)]
    assert rows["chosen"].fillna("").tolist() == [c or "" for c in teaching]  # kept, untrained: out
    assert len(teaching) < len(chosen)
    assert rows["weight"].tolist() == [1.0 if c is None else CHOSEN_WEIGHT[c] for c in teaching]
    for c, (_, row) in zip(teaching, rows.iterrows(), strict=True):
        untrained = CHOSEN_UNTRAINED.get(c, ())
        assert [row[t] for t in TAGS] == [UNKNOWN if t in untrained else 1 for t in TAGS], c
    assert 0.5 in CHOSEN_WEIGHT.values() and CHOSEN_UNTRAINED  # both in use
    assert set(CHOSEN_UNTRAINED) <= set(CHOSEN_WEIGHT)


def test_every_training_row_keeps_its_source_for_the_thresholds() -> None:
    """Thresholds are chosen per source (classify.best_threshold): a labelled row carries
    its source through as_labelled_set and concat, the written examples are a source of
    their own, and rows from nowhere (a user's labels) are one group."""
    rows = pd.DataFrame({**{c: [""] * 3 for c in MODEL_COLUMNS}, **{t: [0, 1, 0] for t in TAGS},
                         "source": ["enron", "lists", "enron"], "weight": [1.0, 0.5, 1.0]})
    user = LabelledSet(rows[list(MODEL_COLUMNS)], rows[list(TAGS)].to_numpy())
    labelled = LabelledSet.concat([as_labelled_set(rows), written_examples(), user])
    written = len(labelled) - 6
    assert labelled.groups.tolist() == (["enron", "lists", "enron"] + ["written"] * written
                                        + [""] * 3)
    assert labelled.weights.tolist()[:3] == [1.0, 0.5, 1.0]


def test_the_second_reading_reads_every_held_out_enron_message_once() -> None:
    """bench/agreement.py sets the two readings side by side: the second must cover the
    held-out owners' messages, each once, with the same owner, and nothing else."""
    business = label_table(LABELS_DIR / "business.csv")
    held_out = business[business["split"] == "test"]
    second = label_table(LABELS_DIR / "business_second_reading.csv")
    assert list(second.columns) == ["corpus", "message_id", "owner", *TAGS, "note"]
    assert not second.duplicated(["corpus", "message_id"]).any()
    for tag in TAGS:
        assert set(second[tag].unique()) <= {0, 1}, tag
    both = held_out.merge(second, on=["corpus", "message_id"], suffixes=("", "_2"))
    assert len(both) == len(held_out) == len(second)
    assert (both["owner"] == both["owner_2"]).all()
