"""The bootstrap behind the model card's intervals and bench/compare.py."""

from __future__ import annotations

import numpy as np

from mailnet.evaluation import macro_f1_interval, macro_f1_resamples, score
from mailnet.model import UNKNOWN, render_card

# Two tags, eight messages: the first tag half right, the second all right.
LABELS = np.array([[1, 0], [1, 1], [0, 0], [0, 1], [1, 0], [0, 0], [1, 1], [0, 1]])
SAID = np.array([[1, 0], [0, 1], [1, 0], [0, 1], [1, 0], [0, 0], [0, 1], [1, 1]])


def _point(labels: np.ndarray, said: np.ndarray) -> float:
    return float(np.mean([score(labels[:, k], said[:, k]).f1 for k in range(labels.shape[1])]))


def test_one_cluster_drawn_again_and_again_is_the_same_mail() -> None:
    """Drawing the one cluster there is gives the same messages every time (counted
    over): every sample's macro-F1 is the figure on the whole set."""
    samples = macro_f1_resamples(LABELS, [SAID], np.zeros(len(LABELS)), resamples=50)
    assert samples.shape == (1, 50)
    assert np.allclose(samples, _point(LABELS, SAID))


def test_messages_drawn_one_by_one_spread_around_the_figure() -> None:
    low, high = macro_f1_interval(LABELS, SAID, np.arange(len(LABELS)))
    assert low < _point(LABELS, SAID) < high
    assert high - low > 0.1  # eight messages say little


def test_two_models_are_compared_on_the_same_samples() -> None:
    """A model against itself differs by exactly 0 on every sample; against a better one,
    the difference is never negative, since every sample sees both on the same mail."""
    better = SAID.copy()
    better[:, 0] = LABELS[:, 0]
    same, alike, ahead = macro_f1_resamples(LABELS, [SAID, SAID.copy(), better],
                                            np.arange(len(LABELS)), resamples=300)
    assert np.array_equal(same, alike)
    assert (ahead - same >= 0).all() and (ahead - same > 0).mean() > 0.9


def test_unknown_labels_count_for_no_tag() -> None:
    """A row whose label is UNKNOWN (a tag it was not read for) changes no sample."""
    unknown = np.vstack([LABELS, [[UNKNOWN, UNKNOWN]] * 3])
    said = np.vstack([SAID, [[1, 1]] * 3])
    clusters = np.r_[np.zeros(len(LABELS)), np.zeros(3)]  # one cluster: each sample is all
    assert np.allclose(macro_f1_resamples(unknown, [said], clusters, resamples=20),
                       _point(LABELS, SAID))


def test_whole_owners_drawn_say_less_than_their_messages() -> None:
    """Mail of one owner is alike: drawn by owner, the interval is wider than drawn by
    message, which would count one mailbox's habits as many independent messages."""
    rng = np.random.default_rng(1)
    owners = np.repeat(np.arange(10), 30)
    right = rng.random(10)[owners] > 0.5  # each owner's mail all right or all wrong
    labels = rng.integers(0, 2, size=(300, 1))
    said = np.where(right[:, None], labels, 1 - labels)
    by_owner = np.subtract(*macro_f1_interval(labels, said, owners)[::-1])
    by_message = np.subtract(*macro_f1_interval(labels, said, np.arange(300))[::-1])
    assert by_owner > 2 * by_message


def test_the_card_shows_the_interval() -> None:
    report = {"description": "held out", "macro_f1": 0.777, "macro_f1_interval": [0.741, 0.809],
              "tags": {"request": {"precision": 0.8, "recall": 0.7, "f1": 0.75, "support": 9}}}
    card = render_card({"version": "v", "model_file": "intent.skops", "model_bytes": 1,
                        "thresholds": {"request": 0.4}, "metrics": {"Held-out": report}})
    assert "| **macro** | | | **0.777** | |" in card
    assert "95% bootstrap interval: 0.741–0.809" in card
