"""The relevance scale, the demand dimensions and the fixed evaluation split.

These are contracts (DESIGN.md §1): the rest of the system imports them from here.
"""

from __future__ import annotations

import hashlib
from typing import Literal, get_args

LABELS = ("L1", "L2", "L3", "L4")
"""L1 irrelevant, L2 mismatch (one explicit demand conflicts), L3 close, L4 exact."""

RELEVANT_LABELS = frozenset({"L3", "L4"})

GAINS = (0.0, 0.1, 0.7, 1.0)
"""gain(L1..L4) of the ranking score ``sum_k p(Lk) * gain(Lk)`` (DESIGN.md §1)."""

DIMENSIONS = (
    "category",
    "style",
    "special",
    "audience",
    "bundle",
    "season",
    "color",
    "brand",
    "material",
    "component",
    "specification",
    "ip",
    "function",
    "attributes",
    "year",
    "store",
)
"""The 16 demand dimensions; price is a numeric constraint on top of them."""

MISMATCH_DIMENSIONS = DIMENSIONS + ("price",)

SPLITS = ("train", "dev", "test")
SPLIT_OF_LAST_HEX_DIGIT = {"0": "test", "1": "test", "2": "dev"}
"""The split of a query whose SHA-1 ends in this hex digit; every other digit is train."""


def split_for_query(query: str) -> str:
    """The fixed split of a query: by the last hex digit of sha1 of the stripped, lower-cased text.

    >>> split_for_query("angle bracket"), split_for_query("  Wood Screws ")
    ('train', 'test')
    """
    last = hashlib.sha1(query.strip().lower().encode("utf-8")).hexdigest()[-1]
    return SPLIT_OF_LAST_HEX_DIGIT.get(last, "train")


RATING_EDGES = (1.6, 2.2, 2.6)
"""Where a Home Depot mean rating (1 = irrelevant .. 3 = perfect) crosses into L2, L3 and L4."""


def rating_to_label(rating: float) -> str:
    """Map a Home Depot mean rating onto L1-L4 (the fixed mapping, :data:`RATING_EDGES`).

    >>> [rating_to_label(r) for r in (1.0, 1.59, 1.6, 2.19, 2.2, 2.59, 2.6, 3.0)]
    ['L1', 'L1', 'L2', 'L2', 'L3', 'L3', 'L4', 'L4']
    """
    return LABELS[sum(rating >= edge for edge in RATING_EDGES)]


def rating_distribution(rating: float, sigma: float) -> list[float]:
    """p(L1..L4) of a mean rating seen as Normal(rating, sigma): the mass in each label's band.

    A mean of three raters' 1-3 scores is uncertain by about a third of a point, so a 2.33 (L3,
    close to L2) says more than "L3"; students learn from this instead of the hard label.

    >>> [round(x, 3) for x in rating_distribution(2.33, 0.3)]
    [0.007, 0.325, 0.484, 0.184]
    """
    from math import erf, sqrt

    cdf = [0.0] + [0.5 * (1 + erf((edge - rating) / (sigma * sqrt(2)))) for edge in RATING_EDGES] + [1.0]
    return [high - low for low, high in zip(cdf, cdf[1:])]


def label_level(label: str) -> str:
    """The level of a label that may name a dimension.

    >>> label_level("L2:brand"), label_level("L4")
    ('L2', 'L4')
    """
    return label.split(":", 1)[0]


def is_relevant(label: str) -> bool:
    """Binary relevance: L3 and L4 are relevant; ``L2:brand`` style labels are accepted."""
    return label_level(label) in RELEVANT_LABELS


HOME_DEPOT_ITEM_PREFIX = "hd-"
"""Home Depot products enter the catalog as ``hd-<product_uid>``; every other item is the marketplace's."""

DatasetName = Literal["marketplace", "home_depot", "all"]
DATASETS: tuple[str, ...] = get_args(DatasetName)


def of_dataset(frame, dataset: str):
    """The rows of a pandas frame (with ``item_id``) whose labels belong to ``dataset``.

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"item_id": ["hd-1", "m-2"]})
    >>> of_dataset(frame, "home_depot")["item_id"].tolist(), len(of_dataset(frame, "all"))
    (['hd-1'], 2)
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if dataset == "all":
        return frame
    return frame[frame["item_id"].str.startswith(HOME_DEPOT_ITEM_PREFIX) == (dataset == "home_depot")]
