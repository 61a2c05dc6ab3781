"""judge_head's candidate selection on literal DataFrames, both runtimes."""

from pyspark.testing import assertDataFrameEqual

from jobs.judge_head import JudgeHeadConfig, transform_candidates

TIERS = "query_norm string, query_hash string, tier string"
IMPRESSIONS = "query_norm string, item_id string, impressions long"


def test_each_head_query_keeps_its_most_impressed_items_ties_by_item_id(spark):
    tiers = spark.createDataFrame([("red shoes", "h1", "head"), ("blue hat", "h2", "mid"), ("tv", "h3", "head")], TIERS)
    impressions = spark.createDataFrame(
        [("red shoes", "a", 5), ("red shoes", "b", 9), ("red shoes", "c", 5), ("red shoes", "d", 1),
         ("blue hat", "x", 50), ("tv", "t", 2), ("lamp", "l", 99)],
        IMPRESSIONS,
    )
    cfg = JudgeHeadConfig.load(overrides={"ds": "2026-01-31", "max_items_per_query": 2})
    expected = spark.createDataFrame(
        [("red shoes", "h1", "b", 9), ("red shoes", "h1", "a", 5), ("tv", "h3", "t", 2)],
        "query_norm string, query_hash string, item_id string, impressions long",
    )
    assertDataFrameEqual(transform_candidates(impressions, tiers, cfg), expected)


def test_mid_queries_are_judged_when_configured(spark):
    tiers = spark.createDataFrame([("red shoes", "h1", "head"), ("blue hat", "h2", "mid")], TIERS)
    impressions = spark.createDataFrame([("red shoes", "a", 1), ("blue hat", "x", 3)], IMPRESSIONS)
    cfg = JudgeHeadConfig.load(overrides={"ds": "2026-01-31", "tiers": ["head", "mid"]})
    assert sorted(r["item_id"] for r in transform_candidates(impressions, tiers, cfg).collect()) == ["a", "x"]
