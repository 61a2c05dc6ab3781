"""Training-pair mining on literal DataFrames, expected values worked out by hand, both runtimes."""

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs.mine_pairs import (
    MinePairsConfig,
    propensities,
    transform_behaviour,
    transform_gold_rows,
    transform_hard_negatives,
    transform_position_ctr_ratios,
    transform_training_pairs,
    transform_weak_labels,
)
from jobs.rollup_logs import transform_daily_impressions, transform_daily_position_ratios, transform_daily_searches

LOG_COLUMNS = "request_id string, query string, item_id string, position int, clicked boolean, carted boolean, purchased boolean"
WEAK_COLUMNS = "query_norm string, item_id string, label string, dimension string, source string, confidence double"


def cfg(**overrides):
    return MinePairsConfig.load(overrides={"ds": "2026-01-31", **overrides})


def impressions(spark, rows):
    """rows: (request_id, query, item_id, position, clicked[, carted, purchased]) -> their impressions
    per (query, item, position): the daily rollup of a one-day window."""
    logs = spark.createDataFrame([tuple(r) + (False,) * (7 - len(r)) for r in rows], LOG_COLUMNS)
    return transform_daily_impressions(logs, transform_daily_searches(logs))


def test_position_bias_from_pairs_shown_at_two_positions(spark):
    rows = []
    # (q, a): position 1 four times (2 clicks), position 2 four times (1 click)
    rows += [(f"a1-{i}", "q", "a", 1, i < 2) for i in range(4)] + [(f"a2-{i}", "q", "a", 2, i < 1) for i in range(4)]
    # (q, b): position 1 twice (2 clicks), position 2 six times (3 clicks)
    rows += [(f"b1-{i}", "q", "b", 1, True) for i in range(2)] + [(f"b2-{i}", "q", "b", 2, i < 3) for i in range(6)]
    rows += [("c", "q", "c", 3, True)]  # position 3 never seen with position 1: no evidence
    daily_ratios = transform_daily_position_ratios(impressions(spark, rows))
    ratios = [tuple(r) for r in transform_position_ctr_ratios(daily_ratios, cfg()).collect()]
    # θ2/θ1 = (4·1/4 + 2·3/6) / (4·2/4 + 2·2/2) = 2/4
    assert propensities(ratios, 3) == {1: 1.0, 2: 0.5, 3: 0.5}


def test_debiased_clicks_and_skip_above(spark):
    theta = {1: 1.0, 2: 0.5, 3: 0.25}
    rows = []
    for r in range(4):  # "a" on top never clicked while "c" below is: skipped above a click
        rows += [(f"r{r}", "q", "a", 1, False), (f"r{r}", "q", "b", 2, r == 0), (f"r{r}", "q", "c", 3, True, r < 2, r < 1)]
    rows += [("s", "q", "a", 1, False), ("s", "q", "b", 2, False)]  # no click in the request: no skips
    rows += [(f"r{r}", "q", "d", 4, False) for r in range(2)]  # below the click; past θ's last position: θ3
    behaviour = transform_behaviour(impressions(spark, rows), theta)
    expected = spark.createDataFrame(
        [("q", "a", 5, 5.0, 0, 0, 0, 4), ("q", "b", 5, 2.5, 1, 0, 0, 3), ("q", "c", 4, 1.0, 4, 2, 1, 0),
         ("q", "d", 2, 0.5, 0, 0, 0, 0)],
        "query_norm string, item_id string, impressions long, examinations double, clicks long, carts long, "
        "purchases long, skips long",
    )
    assertDataFrameEqual(behaviour, expected, checkRowOrder=False)

    weak = transform_weak_labels(behaviour, cfg(min_examinations=1.0, ctr_bound_z=0.0))  # z 0: the CTR itself
    expected_weak = spark.createDataFrame(
        [
            ("q", "a", "L1", None, "skip_above", 5 / 10),  # CTR 0/5, skipped 4 times; confidence 5/(5+5)
            ("q", "b", "L3", None, "click", 2.5 / 7.5),  # debiased CTR 1/2.5 = 0.4: in [0.25, 0.5)
            ("q", "c", "L4", None, "purchase", 0.9),
        ],
        WEAK_COLUMNS,
    )
    assertDataFrameEqual(weak, expected_weak, checkRowOrder=False, rtol=1e-9)


def test_click_positives_and_l1_skips_need_the_wilson_bound(spark):
    # With z = 1 the Wilson bounds of c clicks in n examinations are
    # (c + 1/2 -/+ sqrt(c(n - c)/n + 1/4)) / (n + 1).
    behaviour = spark.createDataFrame(
        [("q", "x", 9, 9.0, 3, 0, 0, 0),  # CTR 1/3, but lower bound (3.5 - 1.5)/10 = 0.2 < 0.25: no label
         ("q", "y", 8, 8.0, 4, 0, 0, 0),  # lower bound (4.5 - 1.5)/9 = 1/3 >= 0.25: a click; CTR 0.5 -> L4
         ("q", "z", 19, 19.0, 0, 0, 0, 3),  # CTR 0, but upper bound 1/20 = 0.05 >= 0.04: L2
         ("q", "w", 49, 49.0, 0, 0, 0, 3)],  # upper bound 1/50 = 0.02 < 0.04: L1
        "query_norm string, item_id string, impressions long, examinations double, clicks long, carts long, "
        "purchases long, skips long")
    expected = spark.createDataFrame(
        [("q", "y", "L4", None, "click", 8 / 13), ("q", "z", "L2", None, "skip_above", 19 / 24),
         ("q", "w", "L1", None, "skip_above", 0.8)],  # confidence min(0.8, n / (n + 5))
        WEAK_COLUMNS)
    weak = transform_weak_labels(behaviour, cfg(ctr_bound_z=1.0))
    assertDataFrameEqual(weak, expected, checkRowOrder=False, rtol=1e-9)


def test_hard_negatives_are_competitor_items_of_the_query_category(spark):
    kg_edges = spark.createDataFrame(
        [("brand:stridex", "brand:velora", "competitor", 0.5, 3),
         ("brand:velora", "brand:velora kids", "sub_brand", 1.0, 2),
         ("term:shoes", "category:shoes", "term_category", 0.9, 10)],
        "src string, dst string, edge_type string, confidence double, support long")
    catalog = spark.createDataFrame(
        [("v1", "Shoes", "Velora"), ("v2", "Shoes", "Velora Kids"),  # a competitor and its sub-brand
         ("s1", "Shoes", "Stridex"),  # the brand asked for
         ("v3", "Socks", "Velora")],  # a competitor, another category
        "item_id string, category string, brand string")
    queries = spark.createDataFrame([("stridex shoes",), ("shoes",)], "query_norm string")  # "shoes" names no brand
    expected = spark.createDataFrame(
        [("stridex shoes", item, "L2", "brand", "hard_negative", 0.6) for item in ("v1", "v2")], WEAK_COLUMNS)
    assertDataFrameEqual(transform_hard_negatives(queries, catalog, kg_edges, cfg()), expected, checkRowOrder=False)


def test_a_query_naming_two_brands_of_one_length_asks_for_the_greater_name(spark):
    kg_edges = spark.createDataFrame(
        [("brand:acme", "brand:kopa", "competitor", 0.5, 3), ("brand:volt", "brand:zeta", "competitor", 0.5, 3),
         ("term:shoes", "category:shoes", "term_category", 0.9, 10)],
        "src string, dst string, edge_type string, confidence double, support long")
    catalog = spark.createDataFrame(
        [("a1", "Shoes", "Acme"), ("z1", "Shoes", "Zeta"), ("k1", "Shoes", "Kopa"), ("v1", "Shoes", "Volt")],
        "item_id string, category string, brand string")
    queries = spark.createDataFrame([("acme zeta shoes",)], "query_norm string")
    # "acme" and "zeta" are both 4 letters: "zeta" is asked for, so Volt's item is the negative, never Kopa's.
    expected = spark.createDataFrame([("acme zeta shoes", "v1", "L2", "brand", "hard_negative", 0.6)], WEAK_COLUMNS)
    for _ in range(3):
        assertDataFrameEqual(transform_hard_negatives(queries, catalog, kg_edges, cfg()), expected)


def test_gold_wins_splits_by_query_and_balances(spark):
    gold = spark.createDataFrame(
        [("Red Shoes", "i1", "L2", "brand", "test", "2026-01-30"),
         ("Red Shoes", "i1", "L3", None, "test", "2026-01-01")],  # older label for the same pair
        "query string, item_id string, label string, dimension string, split string, ds string")
    weak = spark.createDataFrame(
        [("red shoes", "i1", "L4", None, "purchase", 0.9),  # loses to gold
         ("red shoes", "i2", "L3", None, "click", 0.5),  # same query: takes the gold split (test)
         ("angle bracket", "i3", "L2", None, "skip_above", 0.4),
         ("angle bracket", "i4", "L2", None, "hard_negative", 0.6),
         ("angle bracket", "i5", "L2", None, "hard_negative", 0.6)],
        WEAK_COLUMNS)
    spellings = spark.createDataFrame([("red shoes", "red  shoes!"), ("angle bracket", "Angle Bracket")],
                                      "query_norm string, query string")
    tiers = spark.createDataFrame([("red shoes", "head"), ("angle bracket", "mid")], "query_norm string, tier string")
    pairs = transform_training_pairs(transform_gold_rows(gold), weak, spellings, tiers, cfg(max_per_tier_label=2))
    rows = {(r["query_norm"], r["item_id"]): r for r in pairs.collect()}
    assert (rows["red shoes", "i1"]["label"], rows["red shoes", "i1"]["source"], rows["red shoes", "i1"]["query"]) == (
        "L2", "gold", "Red Shoes")
    assert {r["split"] for k, r in rows.items() if k[0] == "red shoes"} == {"test"}
    assert (rows["red shoes", "i2"]["tier"], rows["red shoes", "i2"]["query"]) == ("head", "red  shoes!")
    assert {r["split"] for k, r in rows.items() if k[0] == "angle bracket"} == {"train"}
    assert sum(k[0] == "angle bracket" for k in rows) == 2  # (mid, L2) capped at 2 weak rows
    per_query = pairs.groupBy("query_norm").agg(F.countDistinct("split").alias("n")).collect()
    assert all(r["n"] == 1 for r in per_query)


def test_two_spellings_of_a_gold_query_label_an_item_once(spark):
    gold = spark.createDataFrame(
        [("red shoes", "i9", "L3", None, "train", "2026-01-30"),
         ("Red Shoes!", "i9", "L1", None, "test", "2026-01-01")],
        "query string, item_id string, label string, dimension string, split string, ds string")
    weak = spark.createDataFrame([("red shoes", "i9", "L4", None, "purchase", 0.9)], WEAK_COLUMNS)
    spellings = spark.createDataFrame([("red shoes", "red shoes")], "query_norm string, query string")
    tiers = spark.createDataFrame([("red shoes", "head")], "query_norm string, tier string")
    pairs = transform_training_pairs(transform_gold_rows(gold), weak, spellings, tiers, cfg())
    # "red shoes" (train) is left out for the more held-out "Red Shoes!" (test): its label is kept.
    assert [(r["query"], r["label"], r["source"], r["split"]) for r in pairs.collect()] == [
        ("Red Shoes!", "L1", "gold", "test")]


def test_a_spelling_less_held_out_than_another_of_its_query_is_left_out(spark):
    gold = spark.createDataFrame(
        [("10 inch duct", "i1", "L3", None, "train", "2026-01-30"),
         ("10 inch duct", "i2", "L4", None, "train", "2026-01-30"),
         ("10 in duct", "i2", "L2", None, "test", "2026-01-30"),
         ("10 In Duct", "i3", "L1", None, "test", "2026-01-30"),
         ("angle bracket", "i4", "L4", None, "dev", "2026-01-30")],
        "query string, item_id string, label string, dimension string, split string, ds string")
    gold_rows = transform_gold_rows(gold)
    expected = spark.createDataFrame(
        [("10 in duct", "10 inch duct", "i1", "L3", None, "gold", 1.0, "train", True),
         ("10 in duct", "10 inch duct", "i2", "L4", None, "gold", 1.0, "train", True),
         ("10 in duct", "10 in duct", "i2", "L2", None, "gold", 1.0, "test", False),
         ("10 in duct", "10 In Duct", "i3", "L1", None, "gold", 1.0, "test", False),
         ("angle bracket", "angle bracket", "i4", "L4", None, "gold", 1.0, "dev", False)],
        "query_norm string, query string, item_id string, label string, dimension string, source string, "
        "confidence double, split string, left_out boolean")
    assertDataFrameEqual(gold_rows.select(*expected.columns), expected)

    weak = spark.createDataFrame([("10 in duct", "i1", "L4", None, "purchase", 0.9)], WEAK_COLUMNS)
    spellings = spark.createDataFrame([("10 in duct", "10 inch duct")], "query_norm string, query string")
    tiers = spark.createDataFrame([], "query_norm string, tier string")
    pairs = transform_training_pairs(gold_rows, weak, spellings, tiers, cfg())
    # i1 keeps no gold label (its only one was left out): the purchase labels it, in the query's split.
    assert sorted((r["query_norm"], r["item_id"], r["label"], r["source"], r["split"]) for r in pairs.collect()) == [
        ("10 in duct", "i1", "L4", "purchase", "test"),
        ("10 in duct", "i2", "L2", "gold", "test"),
        ("10 in duct", "i3", "L1", "gold", "test"),
        ("angle bracket", "i4", "L4", "gold", "dev")]
