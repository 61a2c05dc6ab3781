"""judge_head's candidate selection and reuse of earlier judgments on literal DataFrames, both runtimes."""

from pyspark.testing import assertDataFrameEqual

from jobs.judge_head import JudgeHeadConfig, transform_candidates, transform_previous_judgments

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


JUDGMENTS = ("query_hash string, item_id string, prompt_hash string, label string, p array<double>, score double, "
             "reasoning string, status string, model_version string, ds string")


def test_only_the_candidates_latest_ok_judgments_by_the_same_model_are_reused(spark):
    candidates = spark.createDataFrame([("red shoes", "h1", "a", 9), ("red shoes", "h1", "b", 5)],
                                       "query_norm string, query_hash string, item_id string, impressions long")
    p = [0.1, 0.2, 0.3, 0.4]
    judgments = spark.createDataFrame([
        ("h1", "a", "v1", "L2", p, 0.5, "old day", "ok", "m1", "2026-01-01"),
        ("h1", "a", "v1", "L4", p, 0.5, "latest", "ok", "m1", "2026-01-03"),
        ("h1", "a", "v2", "L3", p, 0.5, "other prompt", "ok", "m1", "2026-01-02"),
        ("h1", "b", "v1", "L1", p, 0.5, "newer but failed", "failed", "m1", "2026-01-04"),
        ("h1", "b", "v1", "L1", p, 0.5, "ok", "ok", "m1", "2026-01-02"),
        ("h1", "b", "v1", "L4", p, 0.5, "other model", "ok", "m0", "2026-01-05"),
        ("h1", "c", "v1", "L4", p, 0.5, "not a candidate today", "ok", "m1", "2026-01-03"),
        ("h2", "a", "v1", "L4", p, 0.5, "another query", "ok", "m1", "2026-01-03"),
    ], JUDGMENTS)
    expected = spark.createDataFrame([
        ("h1", "a", "v1", "L4", p, 0.5, "latest"), ("h1", "a", "v2", "L3", p, 0.5, "other prompt"),
        ("h1", "b", "v1", "L1", p, 0.5, "ok"),
    ], "query_hash string, item_id string, prompt_hash string, label string, p array<double>, score double, "
       "reasoning string")
    assertDataFrameEqual(transform_previous_judgments(judgments, candidates, "m1"), expected)
