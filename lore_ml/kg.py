"""Knowledge-graph retrieval: the facts about one (query, item) that go into the teacher's prompt.

Loads the behaviour and brand edges of ``silver.kg_edges`` (not the per-item facts: the item's
own fields travel with it) and the brand and attribute-value names of ``silver.kg_nodes`` (what
:mod:`lore_ml.cot` reads a query's demands with) into dictionaries once;
:meth:`KnowledgeGraph.facts` is then a few dictionary look-ups per call (tens of microseconds),
bounded in count and length.

    kg = KnowledgeGraph.load(LakehouseConfig(), ds="2026-01-31")
    kg.facts("stridex sneakers mens", {"brand": "Stridex Pro", "category": "running shoes",
                                        "attributes": {"audience": "unisex"}})
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

from lore_ml.config import LakehouseConfig
from lore_ml.text import normalize_query

RETRIEVED_EDGE_TYPES = ("sub_brand", "competitor", "term_category", "synonym", "value_synonym")
MAX_FACT_CHARS = 160


def _name(node_id: str) -> str:
    return node_id.split(":", 1)[1]


def _phrases(words: list[str]) -> Iterator[str]:
    """The query's phrases of three, two and one words, longest first, each in query order."""
    for size in (3, 2, 1):
        for i in range(len(words) - size + 1):
            yield " ".join(words[i : i + size])


@dataclass
class KnowledgeGraph:
    """In-memory view of the KG edges that matter for a single judgment."""

    term_categories: dict[str, list[tuple[str, float]]] = field(default_factory=lambda: defaultdict(list))
    synonyms: dict[str, list[tuple[str, float]]] = field(default_factory=lambda: defaultdict(list))
    value_synonyms: dict[str, list[tuple[str, float]]] = field(default_factory=lambda: defaultdict(list))
    parent_brand: dict[str, str] = field(default_factory=dict)
    competitors: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    brands: set[str] = field(default_factory=set)
    attribute_values: dict[str, str] = field(default_factory=dict)  # value phrase -> its one dimension

    @classmethod
    def from_edges(cls, edges: Iterable[tuple[str, str, str, float]], brands: Iterable[str] = (),
                   values: Iterable[str] = ()) -> "KnowledgeGraph":
        """Build from (src, dst, edge_type, confidence) tuples (other edge types are ignored), the
        catalog's brand names and its attribute values as ``dimension=value`` (the value nodes'
        names); a value phrase of two dimensions is left out of :attr:`attribute_values`."""
        kg = cls()
        kg.brands.update(b.lower() for b in brands)
        dimensions: dict[str, set[str]] = defaultdict(set)
        for name in values:
            dimension, _, value = name.lower().partition("=")
            dimensions[value].add(dimension)
        kg.attribute_values = {value: dims.pop() for value, dims in dimensions.items() if len(dims) == 1}
        for src, dst, edge_type, confidence in edges:
            a, b = _name(src), _name(dst)
            if edge_type == "term_category":
                kg.term_categories[a].append((b, confidence))
            elif edge_type == "synonym":
                kg.synonyms[a].append((b, confidence))
                kg.synonyms[b].append((a, confidence))
            elif edge_type == "value_synonym":
                kg.value_synonyms[a].append((b, confidence))
            elif edge_type == "sub_brand":
                kg.parent_brand[b] = a
                kg.brands.update((a, b))
            elif edge_type == "competitor":
                kg.competitors[a].add(b)
                kg.competitors[b].add(a)
                kg.brands.update((a, b))
        for table in (kg.term_categories, kg.synonyms, kg.value_synonyms):
            for key in table:
                table[key].sort(key=lambda pair: (-pair[1], pair[0]))
        return kg

    @classmethod
    def load(cls, lakehouse: LakehouseConfig, ds: str) -> "KnowledgeGraph":
        """Read the ``ds`` partition of silver.kg_edges / kg_nodes without Spark
        (:func:`lore_ml.lakehouse.read_delta`)."""
        from lore_ml.lakehouse import read_delta

        edges = read_delta(lakehouse, "silver.kg_edges", columns=["src", "dst", "edge_type", "confidence"],
                           filters=[("ds", "=", ds), ("edge_type", "in", list(RETRIEVED_EDGE_TYPES))])
        nodes = read_delta(lakehouse, "silver.kg_nodes", columns=["name", "node_type"],
                           filters=[("ds", "=", ds), ("node_type", "in", ["brand", "value"])]).to_pydict()
        names = {kind: [n for n, t in zip(nodes["name"], nodes["node_type"]) if t == kind] for kind in ("brand", "value")}
        rows = zip(*(edges.column(c).to_pylist() for c in ("src", "dst", "edge_type", "confidence")))
        return cls.from_edges(rows, brands=names["brand"], values=names["value"])

    def _parent(self, brand: str) -> str:
        return self.parent_brand.get(brand, brand)

    def query_values(self, words: list[str]) -> dict[str, str]:
        """Attribute values the query names (phrases of up to three words, longest first), as
        {dimension: value}; the first named value of a dimension wins.

        >>> KnowledgeGraph.from_edges([], values=["color=beige", "style=u-lock"]).query_values(["beige", "u-lock"])
        {'color': 'beige', 'style': 'u-lock'}
        """
        found: dict[str, str] = {}
        for phrase in _phrases(words):
            if (dimension := self.attribute_values.get(phrase)) is not None:
                found.setdefault(dimension, phrase)
        return found

    def query_brand(self, words: list[str]) -> str | None:
        """The longest brand name (up to three words) that the query mentions."""
        return next((phrase for phrase in _phrases(words) if phrase in self.brands), None)

    def facts(self, query: str, item: Mapping[str, Any], max_facts: int = 8) -> list[str]:
        """Short, bounded facts relating ``query`` to ``item`` (brand, category, attributes)."""
        words = normalize_query(query).split()
        phrases = [" ".join(words[i : i + 2]) for i in range(len(words) - 1)] + words
        attributes = item.get("attributes") or {}
        out: list[str] = []
        asked = self.query_brand(words)
        item_brand = str(item.get("brand") or "").lower()
        if asked and item_brand:
            out.append(self._brand_fact(asked, item_brand))
        item_category = str(item.get("category") or "").lower()
        for phrase in phrases:
            for category, confidence in self.term_categories.get(phrase, [])[:1]:
                verdict = "same as the item" if category == item_category else f"the item is {item_category or 'unknown'}"
                out.append(f"query term '{phrase}' usually means category {category} ({confidence:.2f}); {verdict}")
            for synonym, _ in self.synonyms.get(phrase, [])[:2]:
                out.append(f"'{phrase}' and '{synonym}' are used as synonyms")
            for value, confidence in self.value_synonyms.get(phrase, [])[:1]:
                dimension, _, wanted = value.partition("=")
                have = attributes.get(dimension)
                state = f"the item has {dimension}={have}" if have else f"the item does not state {dimension}"
                out.append(f"query term '{phrase}' means {dimension}={wanted} ({confidence:.2f}); {state}")
        unique = list(dict.fromkeys(fact[:MAX_FACT_CHARS] for fact in out))
        return unique[:max_facts]

    def _brand_fact(self, asked: str, item_brand: str) -> str:
        if item_brand == asked:
            return f"brand: the item's brand {item_brand} is the brand asked for"
        if self._parent(item_brand) == asked:
            return f"brand: {item_brand} is a sub-brand of the asked brand {asked}"
        if self._parent(asked) == item_brand:
            return f"brand: the query asks for the sub-brand {asked}; the item is its parent brand {item_brand}"
        if self._parent(item_brand) in self.competitors.get(self._parent(asked), ()):
            return f"brand: {item_brand} is a competitor of the asked brand {asked}"
        return f"brand: the item's brand {item_brand} is not the asked brand {asked}"
