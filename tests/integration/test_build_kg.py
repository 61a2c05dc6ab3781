"""Knowledge-graph transforms on literal DataFrames, expected edges worked out by hand."""

import pytest
from pyspark.testing import assertDataFrameEqual

from jobs.build_kg import (
    BuildKgConfig,
    transform_brand_edges,
    transform_brands,
    transform_clicks,
    transform_item_facts,
    transform_kg_edges,
    transform_kg_nodes,
    transform_mined_edges,
    transform_query_votes,
    transform_synonym_candidates,
    transform_synonym_edges,
    transform_term_category_edges,
    transform_value_synonym_edges,
)
from jobs.rollup_logs import transform_daily_impressions, transform_daily_searches

CATALOG_COLUMNS = ("item_id string, title string, shop_id string, shop_name string, shop_type string, brand string, "
                   "category string, category_path string, price double, attributes map<string,string>, image_path string")
EDGE_COLUMNS = "src string, dst string, edge_type string, confidence double, support long"


def catalog(spark, items):
    """items: (item_id, brand, category, attributes)."""
    rows = [(i, f"title {i}", None, None, None, b, c, f"x > {c}", 1.0, a, None) for i, b, c, a in items]
    return spark.createDataFrame(rows, CATALOG_COLUMNS)


def clicks_log(spark, clicks):
    """clicks: {query: {item_id: n}} -> the daily rollup of one log row per click (each its own
    request), plus an unclicked impression per query."""
    rows = [(q, item, True) for q, per in clicks.items() for item, n in per.items() for _ in range(n)]
    rows += [(q, "unclicked", False) for q in clicks]
    logs = spark.createDataFrame(
        [(f"r{i}", q, item, 1, clicked, False, False) for i, (q, item, clicked) in enumerate(rows)],
        "request_id string, query string, item_id string, position int, clicked boolean, carted boolean, "
        "purchased boolean")
    return transform_daily_impressions(logs, transform_daily_searches(logs))


def edges(spark, rows):
    return spark.createDataFrame(rows, EDGE_COLUMNS)


def cfg(**overrides):
    return BuildKgConfig.load(overrides={"ds": "2026-01-31", "min_support": 2, **overrides})


def test_sub_brands_and_competitors(spark):
    cat = catalog(spark, [
        ("s1", "Stridex", "shoes", {}), ("s2", "Stridex", "shirts", {}),
        ("p1", "Stridex Pro", "shoes", {}), ("p2", "Stridex Pro", "shoes", {}),
        ("a1", "Aeroline", "shoes", {}), ("q1", "Quill", "phones", {}),
    ])
    expected = edges(spark, [
        ("brand:stridex", "brand:stridex pro", "sub_brand", 1.0, 2),
        # by parent brand: stridex {shoes, shirts}, aeroline {shoes}: Jaccard 1/2, one shared category
        ("brand:aeroline", "brand:stridex", "competitor", 0.5, 1),
    ])
    assertDataFrameEqual(transform_brand_edges(transform_brands(cat), cfg()), expected, checkRowOrder=False)


def test_a_query_votes_for_the_value_most_of_its_clicks_land_on(spark):
    cat = catalog(spark, [("r1", "B", "shoes", {"color": "Red"}), ("r2", "B", "shoes", {"color": "red"}),
                          ("b1", "B", "boots", {"color": "blue"})])
    log = clicks_log(spark, {
        "red shoes": {"r1": 1, "r2": 1, "b1": 1},  # 2 of 3 clicks red (values are lower-cased), 2 of 3 shoes
        "shoes or boots": {"r1": 2, "b1": 2},  # an even split casts no vote
    })
    expected = spark.createDataFrame(
        [("red shoes", "category", "shoes"), ("red shoes", "color", "red")],
        "query_norm string, dimension string, value string")
    assertDataFrameEqual(transform_query_votes(transform_clicks(log), transform_item_facts(cat)), expected, checkRowOrder=False)


def test_term_category_counts_queries_not_clicks(spark):
    cat = catalog(spark, [("shoe", "B", "running shoes", {}), ("case", "B", "phone case", {})])
    log = clicks_log(spark, {
        "Red Sneakers": {"shoe": 50},  # a heavy query is still one vote
        "sneakers": {"shoe": 1},
        "blue sneakers": {"shoe": 2, "case": 1},
        "sneakers case": {"case": 3},
    })
    actual = transform_term_category_edges(transform_query_votes(transform_clicks(log), transform_item_facts(cat)), cfg())
    expected = edges(spark, [
        ("term:sneakers", "category:running shoes", "term_category", 0.75, 3),  # 3 of 4 queries
    ])
    assertDataFrameEqual(actual, expected, checkRowOrder=False)


def test_a_synonym_pair_from_co_clicked_items(spark):
    cat = catalog(spark, [("A", "Stridex", "running shoes", {}), ("B", "Aeroline", "running shoes", {})])
    log = clicks_log(spark, {
        "stridex running shoes": {"A": 4}, "stridex sneakers": {"A": 4},
        "aeroline running shoes": {"B": 3}, "aeroline sneakers": {"B": 3},
        "stridex shoes": {"B": 1},  # stridex vs aeroline: brands are never synonyms
        "aeroline shoes": {"B": 1},
    })
    actual = transform_synonym_edges(transform_synonym_candidates(transform_clicks(log), cfg()), transform_item_facts(cat))
    expected = edges(spark, [("term:running shoes", "term:sneakers", "synonym", 1.0, 2)])
    assertDataFrameEqual(actual, expected, checkRowOrder=False)


def test_synonym_candidates_pair_only_each_items_top_queries(spark):
    log = clicks_log(spark, {"red shoes": {"A": 5}, "crimson shoes": {"A": 4}, "scarlet shoes": {"A": 1}})
    candidates = transform_synonym_candidates(
        transform_clicks(log), cfg(synonym_min_support=1, synonym_max_queries_per_item=2))
    # "scarlet shoes" is A's third query: unpaired. Overlap of the other two: min(5, 4) / (5 + 4 - 4).
    expected = spark.createDataFrame([("crimson", "red", 1, 0.8)], "p1 string, p2 string, support long, confidence double")
    assertDataFrameEqual(candidates, expected, checkRowOrder=False)


def test_two_values_of_one_attribute_are_alternatives_not_synonyms(spark):
    candidates = spark.createDataFrame([("crimson", "red", 2, 0.8)], "p1 string, p2 string, support long, confidence double")
    both_colors = catalog(spark, [("A", None, "shoes", {"color": "Red"}), ("B", None, "shoes", {"color": "crimson"})])
    red_only = catalog(spark, [("A", None, "shoes", {"color": "Red"}), ("B", None, "shoes", {"material": "crimson"})])
    assert transform_synonym_edges(candidates, transform_item_facts(both_colors)).count() == 0
    assertDataFrameEqual(transform_synonym_edges(candidates, transform_item_facts(red_only)),
                         edges(spark, [("term:crimson", "term:red", "synonym", 0.8, 2)]))


def test_value_synonyms(spark):
    cat = catalog(spark, [
        ("m1", "B", "shoes", {"audience": "men"}), ("m2", "B", "shirt", {"audience": "Men"}),
        ("w1", "B", "shoes", {"audience": "women"}), ("w2", "B", "shirt", {"audience": "women"}),
    ])
    log = clicks_log(spark, {
        "mens shoes": {"m1": 2}, "mens shirt": {"m2": 1}, "mens": {"m1": 1, "m2": 1},
        "womens shoes": {"w1": 1}, "womens shirt": {"w2": 3}, "womens": {"w1": 1},
    })
    votes = transform_query_votes(transform_clicks(log), transform_item_facts(cat))
    actual = transform_value_synonym_edges(votes, cfg(value_synonym_min_lift=1.5))
    expected = edges(spark, [
        ("term:mens", "value:audience=men", "value_synonym", 1.0, 3),
        ("term:womens", "value:audience=women", "value_synonym", 1.0, 3),
    ])  # "shoes" and "shirt" split 50/50 between the values: no edge
    assertDataFrameEqual(actual, expected, checkRowOrder=False)
    # Expected shares: "mens shoes" 1/3 (shoes' queries: men 1, women 2), "mens shirt" 1/2; "mens"
    # votes for no category and is left out: lift 1.0 / 0.42 = 2.4. "womens": (2/3 + 1/2 + 2/3) / 3,
    # lift 1.64.
    assertDataFrameEqual(transform_value_synonym_edges(votes, cfg(value_synonym_min_lift=2.0)),
                         expected.where("src = 'term:mens'"))


def test_a_category_word_is_no_synonym_of_its_categorys_usual_value(spark):
    cat = catalog(spark, [
        ("s1", "B", "shirt", {"material": "polyester"}), ("s2", "B", "shirt", {"material": "polyester"}),
        ("s3", "B", "shirt", {"material": "cotton"}), ("j1", "B", "jacket", {"material": "polyester"}),
        ("j2", "B", "jacket", {"material": "leather"}), ("j3", "B", "jacket", {"material": "wool"}),
    ])
    log = clicks_log(spark, {
        "shirt": {"s1": 1}, "tee shirt": {"s2": 1}, "shirt sale": {"s1": 1}, "cotton shirt": {"s3": 1},
        "poly shirt": {"s2": 1}, "poly jacket": {"j1": 1}, "leather jacket": {"j2": 1}, "wool jacket": {"j3": 1},
    })
    votes = transform_query_votes(transform_clicks(log), transform_item_facts(cat))
    # Shirts' queries vote polyester 4 of 5 (0.8), jackets' 1 of 3 each. "shirt": 0.8 of its queries
    # vote polyester against 0.8 expected, lift 1.0 (against all material votes, 5 of 8, it would be
    # 0.8 / 0.625 = 1.28). "poly": 1.0 against (0.8 + 1/3) / 2 = 0.57, lift 1.76.
    assertDataFrameEqual(transform_value_synonym_edges(votes, cfg(value_synonym_min_lift=1.2)), edges(spark, [
        ("term:poly", "value:material=polyester", "value_synonym", 1.0, 2),
    ]))


def test_item_facts_and_nodes(spark):
    cat = catalog(spark, [("i1", "Stridex", "Running Shoes", {"color": "Red", "brand": "Stridex"})])
    log = clicks_log(spark, {"red shoes": {"i1": 1}})
    clicks, facts = transform_clicks(log), transform_item_facts(cat)
    votes, synonyms = transform_query_votes(clicks, facts), transform_synonym_candidates(clicks, cfg())
    mined = transform_mined_edges(transform_brands(cat), facts, votes, synonyms, cfg())
    assertDataFrameEqual(transform_kg_edges(facts, mined), edges(spark, [
        ("item:i1", "brand:stridex", "has_brand", 1.0, 1),
        ("item:i1", "category:running shoes", "in_category", 1.0, 1),
        ("item:i1", "value:color=red", "has_value", 1.0, 1),
    ]), checkRowOrder=False)
    # Two mined edges touching a fact's node and a term: their ends add to the item edges' counts.
    mined = edges(spark, [("brand:stridex", "brand:aeroline", "competitor", 0.5, 1),
                          ("term:scarlet", "value:color=red", "value_synonym", 0.9, 5)])
    nodes = {r["node_id"]: (r["node_type"], r["name"], r["properties"], r["support"])
             for r in transform_kg_nodes(facts, mined, cat).collect()}
    assert nodes == {
        "item:i1": ("item", "i1", {"title": "title i1"}, 3),
        "brand:stridex": ("brand", "stridex", None, 2),
        "brand:aeroline": ("brand", "aeroline", None, 1),
        "category:running shoes": ("category", "running shoes", {"path": "x > Running Shoes"}, 1),
        "value:color=red": ("value", "color=red", None, 2),
        "term:scarlet": ("term", "scarlet", None, 1),
    }


def test_a_category_node_keeps_one_path_whatever_the_row_order(spark):
    # Two spellings of one category whose items disagree on the path: the node must not take
    # whichever row an engine reads first, or a re-run could write another table.
    cat = catalog(spark, [("i1", None, "Running Shoes", {}), ("i2", None, "running shoes", {})])
    cat = cat.withColumn("category_path", cat["category"])
    nodes = transform_kg_nodes(transform_item_facts(cat), edges(spark, []), cat)
    paths = {r["name"]: r["properties"] for r in nodes.where(nodes["node_type"] == "category").collect()}
    assert paths == {"running shoes": {"path": "running shoes"}}  # the greater of the two spellings


@pytest.mark.parametrize("field", ["min_support", "synonym_min_support"])
def test_supports_must_be_positive(field):
    with pytest.raises(ValueError):
        cfg(**{field: 0})
