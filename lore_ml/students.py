"""Student scorers: fast p(L1..L4) for the mid tier and every fallback.

A student maps (normalised query, items) to p(L1..L4) per item in a few milliseconds.
:class:`LexicalStudent` needs no artefact: it scores the share of query words the item's
fields contain, and is what the shim answers with when no trained student is configured.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping, Protocol, Sequence

import numpy as np

from lore_ml.text import normalize_query

ITEM_TEXT_FIELDS = ("title", "brand", "category", "shop_name")


class Student(Protocol):
    model_version: str

    def score(self, query_norm: str, items: Sequence[Mapping]) -> np.ndarray:
        """p(L1..L4) per item, shape (len(items), 4)."""


def item_words(item: Mapping) -> frozenset[str]:
    """The normalised words of an item's text fields and attribute values (memoised: items recur)."""
    parts = [str(item.get(name) or "") for name in ITEM_TEXT_FIELDS]
    parts += [str(value) for value in (item.get("attributes") or {}).values()]
    return _words(" ".join(parts))


@lru_cache(maxsize=200_000)
def _words(text: str) -> frozenset[str]:
    return frozenset(normalize_query(text).split())


def query_coverage(query_norm: str, item: Mapping) -> float:
    """Share of the query's words found in the item's fields.

    >>> query_coverage("red running shoes", {"title": "Running Shoes", "attributes": {"color": "blue"}})
    0.6666666666666666
    """
    words, found = query_norm.split(), item_words(item)
    return sum(word in found for word in words) / len(words) if words else 0.0


class LexicalStudent:
    """p(L1..L4) from query-word coverage: no coverage → L1, partial → L2/L3, full → L4.

    >>> p = LexicalStudent().score("red shoes", [{"title": "red shoes"}, {"title": "lamp"}])
    >>> [int(row.argmax()) + 1 for row in p]
    [4, 1]
    """

    model_version = "lexical@1"

    def score(self, query_norm: str, items: Sequence[Mapping]) -> np.ndarray:
        coverage = np.array([query_coverage(query_norm, item) for item in items], dtype=float).reshape(-1, 1)
        logits = np.hstack([3 * (0.3 - coverage), np.zeros_like(coverage), 3 * (coverage - 0.5), 5 * (coverage - 0.6)])
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)
