"""Roll one day of search logs up into the daily aggregates the window jobs read.

The tier, KG and pair-mining jobs read a trailing window (default 28 days) of behaviour. Scanning
the raw impressions of every day in the window each night redoes 27 days of work; instead this
job aggregates each day once, and the window jobs sum the daily rows:

* ``silver.daily_searches``: searches (distinct request ids) per raw query, with ``query_norm``;
* ``silver.daily_impressions``: per (raw query, item, position): impressions, clicks, carts,
  purchases and *skips* (shown above a clicked item of the same request and not clicked; a
  request is one day's, so per-day skips add up over the window);
* ``silver.daily_position_ratios``: per position k, the day's evidence for the examination
  propensity θ_k/θ_1 (intervention harvesting over the (query, item) pairs the day showed at
  both 1 and k), which :mod:`jobs.mine_pairs` pools over its window.

The Python normaliser runs here, once per distinct raw query of the day, so no window job runs
Python over log rows. Changing :func:`lore_ml.text.normalize_query` therefore means re-running
this job for the days still in a window (the window jobs name missing days, not stale ones).

    python -m jobs.rollup_logs --ds 2026-01-31
"""

from __future__ import annotations

import datetime as dt
import logging
import sys

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType

from lore_ml.config import InputsNotReady, JobConfig, WindowJobConfig

log = logging.getLogger("lore.rollup_logs")

# The count columns of silver.daily_impressions, which the window jobs sum.
COUNTS = ("impressions", "clicks", "carts", "purchases", "skips")
# Position ratio terms are summed in this type: exact addition, 26 digits before the point.
EXACT = DecimalType(38, 12)
TABLES = ("silver.daily_searches", "silver.daily_impressions", "silver.daily_position_ratios")


class RollupLogsConfig(JobConfig):
    """Write silver.daily_searches, daily_impressions and daily_position_ratios for one day of bronze.search_log."""


def transform_daily_searches(logs: DataFrame) -> DataFrame:
    """(query, query_norm, searches): distinct request ids per raw query of ``logs``."""
    from lore_ml.spark_udfs import with_query_norm

    per_raw = logs.select("query", "request_id").distinct().groupBy("query").agg(
        F.count("*").cast("long").alias("searches"))
    return with_query_norm(per_raw, unique_keys=True)  # one row per raw query after the groupBy


def transform_daily_impressions(logs: DataFrame, searches: DataFrame) -> DataFrame:
    """Per (query, item_id, position): impressions, clicks, carts, purchases, skips; ``query_norm``
    comes from ``searches`` (:func:`transform_daily_searches` of the same logs)."""
    # A hash aggregate joined back is far cheaper than a window over every log row on Sail.
    lowest_click = logs.where(F.col("clicked")).groupBy("request_id").agg(F.max("position").alias("_lowest_click"))
    count = lambda flag: F.sum(F.col(flag).cast("long"))  # noqa: E731
    skipped = ~F.col("clicked") & (F.col("position") < F.coalesce("_lowest_click", F.lit(0)))
    return (
        logs.join(lowest_click, "request_id", "left")
        .groupBy("query", "item_id", "position")
        .agg(
            F.count("*").cast("long").alias("impressions"),
            count("clicked").alias("clicks"),
            count("carted").alias("carts"),
            count("purchased").alias("purchases"),
            F.sum(skipped.cast("long")).alias("skips"),
        )
        .join(searches.select("query", "query_norm"), "query")
    )


def transform_daily_position_ratios(daily_impressions: DataFrame) -> DataFrame:
    """Per position k of one day's :func:`transform_daily_impressions`: Σ m·ctr_k (numerator) and
    Σ m·ctr_1 (denominator) over the (query, item) pairs shown at both 1 and k, m = min(impressions
    at 1, impressions at k), and how many such pairs there were. Every position shown that day has
    a row (zeros without a pair), so a day with logs is never missing from the table.

    The terms are summed as decimals (12 places), whose addition is exact, so a re-run writes the
    same bits whatever order the engine adds them in (a sum of doubles varies in its last bits)."""
    per = daily_impressions.select("query", "item_id", "position", F.col("impressions").alias("n"),
                                   F.col("clicks").alias("c"))
    first = per.where(F.col("position") == 1).select("query", "item_id", F.col("n").alias("n1"), F.col("c").alias("c1"))
    m = F.least("n", "n1")

    def exact_sum(term: Column) -> Column:
        return F.sum(term.cast(EXACT)).cast("double")

    sums = per.join(first, ["query", "item_id"]).groupBy("position").agg(
        exact_sum(m * F.col("c") / F.col("n")).alias("numerator"),
        exact_sum(m * F.col("c1") / F.col("n1")).alias("denominator"),
        F.count("*").alias("pairs"),
    )
    return per.select("position").distinct().join(sums, "position", "left").select(
        "position",
        F.coalesce("numerator", F.lit(0.0)).alias("numerator"),
        F.coalesce("denominator", F.lit(0.0)).alias("denominator"),
        F.coalesce("pairs", F.lit(0)).cast("long").alias("pairs"),
    )


def read_window(lakehouse, table: str, cfg: WindowJobConfig) -> DataFrame:
    """The rows of daily rollup ``table`` in ``cfg``'s window; fails naming each day of the window
    that has search logs but no rollup (a window job must not silently count fewer days), and
    when no day of the window has any (a mistyped ``--ds`` or a day not ingested yet would
    otherwise write empty tiers, a KG without mined edges and pairs without weak labels), and when
    ``table`` keeps fewer days than the window (``lakehouse.keep_days``: the days expired would read
    as days before the logs began)."""
    kept = cfg.lakehouse.retention().get(table)
    if kept is not None and kept < cfg.window_days:
        raise InputsNotReady(f"{table} keeps {kept} days (lakehouse.keep_days), fewer than the window of "
                             f"{cfg.window_days}: shorten --window-days or keep more days")
    if not lakehouse.exists(table):
        raise InputsNotReady(f"no {table} yet: run `lore rollup-logs --ds <day>` for each day of the window "
                             f"{cfg.first_ds}..{cfg.ds_str} (after `lore ingest`)")
    in_window = lambda days: {d for d in days if cfg.first_ds <= d <= cfg.ds_str}  # noqa: E731
    logged = lakehouse.partitions("bronze.search_log")
    rolled_up = in_window(lakehouse.partitions(table))
    missing = sorted(in_window(logged) - rolled_up)
    if missing:
        raise InputsNotReady(
            f"{table} lacks {len(missing)} day(s) of the window {cfg.first_ds}..{cfg.ds_str} that "
            f"bronze.search_log has ({', '.join(missing)}): run `lore rollup-logs --ds <day>` for each")
    if not rolled_up:
        raise InputsNotReady(
            f"no day of the window {cfg.first_ds}..{cfg.ds_str} has search logs in {table}: check --ds, or run "
            f"`lore ingest --ds <day>` and `lore rollup-logs --ds <day>` for the window's days first")
    gaps = days_without_logs(logged, cfg.first_ds, cfg.ds_str)
    if len(gaps) > cfg.max_missing_days:
        raise InputsNotReady(
            f"bronze.search_log has no rows for {len(gaps)} day(s) of the window {cfg.first_ds}..{cfg.ds_str} "
            f"({', '.join(gaps)}), more than max_missing_days={cfg.max_missing_days}: the job would count fewer "
            "days without saying so. Ingest and roll up each (`lore ingest --ds <day>`, then "
            "`lore rollup-logs --ds <day>`), or, for days that had no traffic, allow them with --set max_missing_days=N")
    if gaps:
        log.warning("%s: window %s..%s without logs for %s (max_missing_days=%d)", table, cfg.first_ds, cfg.ds_str,
                    ", ".join(gaps), cfg.max_missing_days)
    return lakehouse.read_window(table, cfg.first_ds, cfg.ds_str)


def days_without_logs(logged: set[str], first_ds: str, last_ds: str) -> list[str]:
    """The days ``first_ds``..``last_ds`` missing from ``logged`` (the days bronze.search_log holds),
    from the first day it holds on: days before logs began are not gaps.

    >>> days_without_logs({"2026-01-02", "2026-01-03", "2026-01-05"}, "2026-01-01", "2026-01-06")
    ['2026-01-04', '2026-01-06']
    >>> days_without_logs({"2025-12-01", "2026-01-02"}, "2026-01-01", "2026-01-02")
    ['2026-01-01']
    """
    first, last = dt.date.fromisoformat(first_ds), dt.date.fromisoformat(last_ds)
    if logged:
        first = max(first, dt.date.fromisoformat(min(logged)))
    days = (first + dt.timedelta(days=n) for n in range((last - first).days + 1))
    return [day.isoformat() for day in days if day.isoformat() not in logged]


def run(cfg: RollupLogsConfig) -> dict[str, int]:
    """Write the three daily tables for cfg.ds; return their row counts."""
    from lore_ml.lakehouse import open_lakehouse, staging_area

    lakehouse = open_lakehouse(cfg)
    lakehouse.require_partition("bronze.search_log", cfg.ds_str)
    logs = lakehouse.read_partition("bronze.search_log", cfg.ds_str)
    with staging_area(cfg.lakehouse, "rollup_logs", cfg.ds_str) as scratch:
        searches = scratch.stage(transform_daily_searches(logs), "searches")  # read twice
        lakehouse.write_partition(searches, "silver.daily_searches", cfg.ds_str)
        lakehouse.write_partition(transform_daily_impressions(logs, searches), "silver.daily_impressions", cfg.ds_str)
    impressions = lakehouse.read_partition("silver.daily_impressions", cfg.ds_str)
    lakehouse.write_partition(transform_daily_position_ratios(impressions), "silver.daily_position_ratios", cfg.ds_str)
    return {table: lakehouse.read_partition(table, cfg.ds_str).count() for table in TABLES}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = RollupLogsConfig.from_cli(argv, prog="python -m jobs.rollup_logs")
    counts = run(cfg)
    print(f"daily log rollups ds={cfg.ds_str}")
    for table, rows in counts.items():
        print(f"{table:<28}{rows:>12,}")
    return 0


if __name__ == "__main__":
    from lore_ml.cli import run_entry_point

    sys.exit(run_entry_point(main))
