"""KG retrieval for one (query, item): the right facts, bounded, fast."""

import time

import pytest

from lore_ml.kg import MAX_FACT_CHARS, KnowledgeGraph

EDGES = [
    ("brand:stridex", "brand:stridex pro", "sub_brand", 1.0),
    ("brand:aeroline", "brand:stridex", "competitor", 0.5),
    ("term:sneakers", "category:running shoes", "term_category", 0.93),
    ("term:sneakers", "category:shoe insoles", "term_category", 0.05),
    ("term:running shoes", "term:sneakers", "synonym", 0.8),
    ("term:mens", "value:audience=men", "value_synonym", 0.9),
    ("item:i1", "brand:stridex", "has_brand", 1.0),  # item facts are not retrieved
]


@pytest.fixture(scope="module")
def kg():
    return KnowledgeGraph.from_edges(EDGES, brands=["Quill"])


def shoe(brand, category="running shoes", **attributes):
    return {"brand": brand, "category": category, "attributes": attributes}


@pytest.mark.parametrize(
    "query_brand_item, expected",
    [
        ("Stridex", "brand: the item's brand stridex is the brand asked for"),
        ("Stridex Pro", "brand: stridex pro is a sub-brand of the asked brand stridex"),
        ("Aeroline", "brand: aeroline is a competitor of the asked brand stridex"),
        ("Quill", "brand: the item's brand quill is not the asked brand stridex"),
    ],
)
def test_brand_relation(kg, query_brand_item, expected):
    assert kg.facts("STRIDEX sneakers", shoe(query_brand_item))[0] == expected


def test_sub_brand_asked_parent_given(kg):
    facts = kg.facts("stridex pro sneakers", shoe("Stridex"))
    assert facts[0] == "brand: the query asks for the sub-brand stridex pro; the item is its parent brand stridex"


def test_category_synonym_and_value_facts(kg):
    facts = kg.facts("mens sneakers", shoe("Stridex", audience="unisex"))
    assert facts == [  # in query order
        "query term 'mens' means audience=men (0.90); the item has audience=unisex",
        "query term 'sneakers' usually means category running shoes (0.93); same as the item",
        "'sneakers' and 'running shoes' are used as synonyms",
    ]
    facts = kg.facts("mens sneakers", shoe("Stridex", category="shoe insoles"))
    assert "query term 'sneakers' usually means category running shoes (0.93); the item is shoe insoles" in facts
    assert "query term 'mens' means audience=men (0.90); the item does not state audience" in facts


def test_bounded_and_fast(kg):
    long_query = " ".join(["mens sneakers stridex"] * 50)
    facts = kg.facts(long_query, shoe("Stridex" * 40), max_facts=3)
    assert len(facts) <= 3 and all(len(f) <= MAX_FACT_CHARS for f in facts)
    started = time.perf_counter()
    for _ in range(2000):
        kg.facts("stridex pro mens sneakers under 100", shoe("Aeroline", audience="men"))
    assert (time.perf_counter() - started) / 2000 < 0.001  # well under a millisecond per pair


def test_unknown_words_give_no_facts(kg):
    assert kg.facts("", {}) == [] and kg.facts("garden hose", shoe("Quill")) == []
