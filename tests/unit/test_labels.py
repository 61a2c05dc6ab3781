import hashlib

import pytest

from lore_ml.labels import is_relevant, rating_to_label, split_for_query


@pytest.mark.parametrize(
    "rating, label",
    [(1.0, "L1"), (1.33, "L1"), (1.5, "L1"), (1.6, "L2"), (2.0, "L2"), (2.19, "L2"),
     (2.2, "L3"), (2.33, "L3"), (2.5, "L3"), (2.6, "L4"), (2.67, "L4"), (3.0, "L4")],
)
def test_home_depot_rating_mapping_boundaries(rating, label):
    assert rating_to_label(rating) == label


def _readme_split(term: str) -> str:
    """The split rule exactly as the Home Depot README words it."""
    digest = hashlib.sha1(term.strip().lower().encode()).hexdigest()
    return "test" if digest[-1] in ("0", "1") else "dev" if digest[-1] == "2" else "train"


def test_split_matches_the_readme_rule_and_shares():
    queries = [f"query number {i}" for i in range(20_000)] + ["  Mixed CASE query ", "tab\tquery"]
    splits = [split_for_query(q) for q in queries]
    assert splits == [_readme_split(q) for q in queries]
    test_share = splits.count("test") / len(splits)
    dev_share = splits.count("dev") / len(splits)
    assert 0.11 < test_share < 0.14 and 0.05 < dev_share < 0.075


def test_split_ignores_case_and_surrounding_space():
    assert split_for_query("  Angle Bracket ") == split_for_query("angle bracket")


def test_binary_relevance():
    assert [is_relevant(x) for x in ("L1", "L2:brand", "L3", "L4")] == [False, False, True, True]
