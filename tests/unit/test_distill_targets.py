"""What a student learns from each pair: rating distributions, smoothed labels, the teacher's mix."""

import numpy as np
import pandas as pd
import pytest

from lore_ml.distill import DistillConfig, target_distributions
from lore_ml.labels import rating_distribution


def config(**overrides):
    return DistillConfig.load(overrides={"ds": "2026-01-31", **overrides})


PAIRS = pd.DataFrame({"level": [3, 0, 2, 1], "rating": [np.nan, np.nan, 2.33, np.nan]})
NO_TEACHER = np.full((4, 4), np.nan)


def test_labels_are_smoothed_towards_their_neighbours_and_ratings_become_distributions():
    targets = target_distributions(config(), PAIRS, NO_TEACHER)
    assert targets[0].tolist() == pytest.approx([0.0, 0.0, 0.1, 0.9])
    assert targets[1].tolist() == pytest.approx([0.9, 0.1, 0.0, 0.0])
    assert targets[2].tolist() == pytest.approx(rating_distribution(2.33, 0.3))
    assert targets[3].tolist() == pytest.approx([0.05, 0.9, 0.05, 0.0])
    assert np.allclose(targets.sum(axis=1), 1)


def test_rating_sigma_zero_uses_the_hard_label_and_the_teacher_is_mixed_in_where_present():
    teacher = NO_TEACHER.copy()
    teacher[2] = [0.0, 0.0, 0.0, 1.0]
    targets = target_distributions(config(rating_sigma=0, label_smoothing=0, soft_weight=0.25), PAIRS, teacher)
    assert targets[2].tolist() == pytest.approx([0.0, 0.0, 0.75, 0.25])
    assert targets[0].tolist() == pytest.approx([0.0, 0.0, 0.0, 1.0])


def test_epochs_go_to_the_chosen_student():
    cfg = config(student="cross", epochs=0.5)
    assert cfg.cross.epochs == 0.5 and cfg.representation.epochs == 8
    assert cfg.current_dir.name == "current-cross" and config().current_dir.name == "current"


def transfer_example():
    """Train, dev and test pairs of two sources; the catalog of their items."""
    rows = [  # query, item, split
        ("cordless drill", "m-a", "train"), ("brass lamp", "m-b", "train"), ("drill battery", "m-c", "train"),
        ("hose", "m-d", "train"), ("press", "m-g", "train"), ("drill kit", "hd-9", "train"),
        ("cordless lamp", "m-e", "test"), ("garden hose reel", "m-f", "dev"),
    ]
    titles = {"m-a": "20v cordless drill", "m-b": "brass table lamp", "m-c": "cordless drill battery",
              "m-d": "garden hose", "m-g": "drill press", "hd-9": "cordless drill kit", "m-e": "cordless lamp",
              "m-f": "hose reel"}
    pairs = pd.DataFrame(rows, columns=["query_norm", "item_id", "split"])
    return pairs, {item_id: {"item_id": item_id, "title": title} for item_id, title in titles.items()}


def test_transfer_pairs_are_unlabelled_train_pairs_of_one_source_that_share_a_word():
    from lore_ml.distill import transfer_pairs

    pairs, items = transfer_example()
    # "cordless drill": m-c matches both words, m-g one (m-a is labelled; hd-9 is another source; m-e a test item).
    # "drill battery": m-a and m-g match "drill" once each; BM25 prefers the shorter title, m-g.
    # "brass lamp", "hose" (m-f is a dev item), "press" and "drill kit" have no unlabelled match.
    assert transfer_pairs(pairs, items, per_query=1) == [("cordless drill", "m-c"), ("drill battery", "m-g")]
    assert transfer_pairs(pairs, items, per_query=5) == [
        ("cordless drill", "m-c"), ("cordless drill", "m-g"), ("drill battery", "m-g"), ("drill battery", "m-a")]
    assert transfer_pairs(pairs[pairs["split"] != "train"], items, per_query=5) == []
