"""Tier boundaries and the trailing window, worked out by hand, on both runtimes."""

import datetime as dt

import pytest
from pyspark.testing import assertDataFrameEqual

from jobs.rollup_logs import read_window, transform_daily_searches
from jobs.stratify import StratifyConfig, transform_query_tiers
from lore_ml.config import InputsNotReady
from lore_ml.text import query_hash

TIERS_SCHEMA = ("query_norm string, query_hash string, searches long, traffic_share double, "
                "cumulative_share double, rank long, tier string")


def logs(spark, searches):
    """The daily rollup of one log row per impression: `searches` maps a raw query to its request
    ids (2 impressions each)."""
    rows = [(rid, q) for q, rids in searches.items() for rid in rids for _ in range(2)]
    return transform_daily_searches(spark.createDataFrame(rows, "request_id string, query string"))


def config(**overrides):
    return StratifyConfig.load(overrides={"ds": "2026-01-31", "head_min_searches": 2, "mid_min_searches": 2, **overrides})


SEARCHES = {
    "Red Shoes": [f"r{i}" for i in range(5)],
    "red  shoes!": ["r5"],  # same normalised query: 6 searches in all
    "blue hat": ["r6", "r7", "r8"],
    "green sock": ["r9"],
    "  !! ": ["r10"],  # normalises to nothing: dropped
}


def expected(spark, tiers):
    rows = [
        ("red shoes", 6, 0.6, 0.6, 1, tiers[0]),
        ("blue hat", 3, 0.3, 0.9, 2, tiers[1]),
        ("green sock", 1, 0.1, 1.0, 3, tiers[2]),
    ]
    return spark.createDataFrame([(q, query_hash(q), *rest) for q, *rest in rows], TIERS_SCHEMA)


@pytest.mark.parametrize(
    "head_share, tiers",
    [
        (0.5, ("head", "mid", "tail")),  # red shoes alone crosses 50%
        (0.6, ("head", "mid", "tail")),  # exactly reaching the share ends the head
        (0.65, ("head", "head", "tail")),  # blue hat starts below 65% and crosses it: head
    ],
)
def test_tier_boundaries(spark, head_share, tiers):
    actual = transform_query_tiers(logs(spark, SEARCHES), config(head_share=head_share))
    assertDataFrameEqual(actual, expected(spark, tiers), checkRowOrder=False, rtol=1e-9)


def test_head_needs_a_minimum_count(spark):
    actual = transform_query_tiers(logs(spark, SEARCHES), config(head_share=1.0, head_min_searches=4))
    assert {r["query_norm"]: r["tier"] for r in actual.collect()} == {
        "red shoes": "head", "blue hat": "mid", "green sock": "tail"}


def test_window_is_trailing_and_inclusive():
    cfg = StratifyConfig.load(overrides={"ds": "2026-01-31", "window_days": 28})
    assert cfg.first_ds == "2026-01-04"
    assert (dt.date(2026, 1, 31) - dt.date.fromisoformat(cfg.first_ds)).days + 1 == 28


DAYS = (("2026-01-28", "too old"), ("2026-01-29", "first day"), ("2026-01-31", "last day"), ("2026-02-01", "too new"))


def write_logs_and_rollups(lakehouse, spark, days):
    from lore_ml.lakehouse import SCHEMAS

    columns = ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in SCHEMAS["bronze.search_log"].fields[:-1])
    for ds, query in days:
        row = (f"r-{ds}", dt.datetime.fromisoformat(ds), "u", query, "i", 1, False, False, False)
        log = spark.createDataFrame([row], columns)
        lakehouse.write_partition(log, "bronze.search_log", ds)
        lakehouse.write_partition(transform_daily_searches(log), "silver.daily_searches", ds)


def test_window_edges_on_the_lakehouse(lakehouse, sail_spark, caplog):
    write_logs_and_rollups(lakehouse, sail_spark, DAYS)
    cfg = StratifyConfig.load(overrides={"ds": "2026-01-31", "window_days": 3, "max_missing_days": 1})
    window = read_window(lakehouse, "silver.daily_searches", cfg)
    assert {r["query_norm"] for r in transform_query_tiers(window, cfg).collect()} == {"first day", "last day"}
    assert "window 2026-01-29..2026-01-31 without logs for 2026-01-30 (max_missing_days=1)" in caplog.text


def test_a_window_day_without_logs_after_logs_began_is_named(lakehouse, sail_spark):
    write_logs_and_rollups(lakehouse, sail_spark, DAYS)  # the 30th has no logs
    cfg = StratifyConfig.load(overrides={"ds": "2026-01-31", "window_days": 3})
    with pytest.raises(InputsNotReady, match=r"no rows for 1 day\(s\) of the window 2026-01-29..2026-01-31 "
                       r"\(2026-01-30\), more than max_missing_days=0.*lore ingest --ds"):
        read_window(lakehouse, "silver.daily_searches", cfg)
    # Days before the first day with logs are not missing: a lakehouse younger than the window is fine.
    young = StratifyConfig.load(overrides={"ds": "2026-01-29", "window_days": 28})
    assert read_window(lakehouse, "silver.daily_searches", young).count() == 2


def test_a_window_day_without_its_rollup_is_named(lakehouse, sail_spark):
    cfg = StratifyConfig.load(overrides={"ds": "2026-01-31", "window_days": 3})
    with pytest.raises(RuntimeError, match=r"no silver.daily_searches yet.*lore rollup-logs"):
        read_window(lakehouse, "silver.daily_searches", cfg)
    write_logs_and_rollups(lakehouse, sail_spark, DAYS[1:])
    lakehouse.write_partition(lakehouse.read_partition("bronze.search_log", "2026-01-31").drop("ds"),
                              "bronze.search_log", "2026-01-30")  # logs for the 30th, no rollup yet
    with pytest.raises(RuntimeError, match=r"lacks 1 day\(s\).*\(2026-01-30\).*lore rollup-logs"):
        read_window(lakehouse, "silver.daily_searches", cfg)


def test_a_window_without_any_logs_fails_instead_of_writing_empty_tables(lakehouse, sail_spark):
    write_logs_and_rollups(lakehouse, sail_spark, DAYS)
    cfg = StratifyConfig.load(overrides={"ds": "2027-01-31", "window_days": 28})  # a year off
    with pytest.raises(RuntimeError, match=r"no day of the window 2027-01-04..2027-01-31 has search logs.*--ds"):
        read_window(lakehouse, "silver.daily_searches", cfg)


def test_a_window_longer_than_the_rollups_retention_fails():
    # Expired days would read as days before the logs began: the window would count fewer days silently.
    cfg = StratifyConfig.load(overrides={"ds": "2026-01-31", "window_days": 28,
                                         "lakehouse": {"keep_days": {"silver": {"daily_searches": 14}}}})
    with pytest.raises(InputsNotReady, match="silver.daily_searches keeps 14 days .*fewer than the window of 28"):
        read_window(None, "silver.daily_searches", cfg)
