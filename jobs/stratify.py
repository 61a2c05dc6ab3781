"""Query-frequency tiers: which queries are head, mid and tail (DESIGN.md §2).

Counts searches per normalised query over a trailing window ending at ``ds`` (the sum of the
``silver.daily_searches`` rows of :mod:`jobs.rollup_logs`) and writes ``silver.query_tiers`` for
that ``ds`` with count, traffic share, cumulative share, rank and tier; the tier rule is in
``sql/stratify.sql``.

    python -m jobs.stratify --ds 2026-01-31
"""

from __future__ import annotations

import argparse
import logging
import sys

from pydantic import Field
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lore_ml.config import WindowJobConfig

log = logging.getLogger("lore.stratify")


class StratifyConfig(WindowJobConfig):
    """Compute silver.query_tiers for one day from a trailing window of search logs."""

    head_share: float = Field(0.6, gt=0, le=1, description="Share of traffic the head queries cover together.")
    head_min_searches: int = Field(20, ge=1, description="A head query has at least this many searches.")
    mid_min_searches: int = Field(3, ge=1, description="Fewer searches than this make a query tail.")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--head-share", dest="head_share", type=float)


def transform_searches_per_query(daily_searches: DataFrame) -> DataFrame:
    """Searches per normalised query over the window's ``silver.daily_searches`` rows; empty
    normalised queries are dropped. A request has one raw query, so summing per-raw-query counts
    over a normalised key counts each request once."""
    from lore_ml.spark_udfs import query_hash_column

    return (
        daily_searches.where(F.col("query_norm") != "")
        .groupBy("query_norm")
        .agg(F.sum("searches").cast("long").alias("searches"))
        .withColumn("query_hash", query_hash_column(F.col("query_norm")))
    )


def transform_query_tiers(daily_searches: DataFrame, cfg: StratifyConfig) -> DataFrame:
    """``silver.query_tiers`` rows (without ``ds``) from the window's ``silver.daily_searches`` rows."""
    import sql

    searches = transform_searches_per_query(daily_searches)
    return daily_searches.sparkSession.sql(
        sql.load("stratify"),
        args={
            "head_share": cfg.head_share,
            "head_min_searches": cfg.head_min_searches,
            "mid_min_searches": cfg.mid_min_searches,
        },
        searches=searches,
    )


def tier_summary(tiers: DataFrame) -> list[tuple[str, int, int, float]]:
    """(tier, queries, searches, traffic share) per tier, head first."""
    rows = tiers.groupBy("tier").agg(
        F.count("*").alias("queries"), F.sum("searches").alias("searches"), F.sum("traffic_share").alias("share")
    ).collect()
    order = {"head": 0, "mid": 1, "tail": 2}
    return sorted(((r["tier"], r["queries"], r["searches"], r["share"]) for r in rows), key=lambda r: order[r[0]])


def run(cfg: StratifyConfig) -> list[tuple[str, int, int, float]]:
    """Write silver.query_tiers for cfg.ds and return the tier summary."""
    from jobs.rollup_logs import read_window
    from lore_ml.lakehouse import open_lakehouse

    lakehouse = open_lakehouse(cfg)
    daily_searches = read_window(lakehouse, "silver.daily_searches", cfg)
    lakehouse.write_partition(transform_query_tiers(daily_searches, cfg), "silver.query_tiers", cfg.ds_str)
    return tier_summary(lakehouse.read_partition("silver.query_tiers", cfg.ds_str))


def format_summary(summary: list[tuple[str, int, int, float]]) -> str:
    lines = [f"{'tier':<6}{'queries':>10}{'searches':>12}{'share':>9}"]
    lines += [f"{tier:<6}{queries:>10,}{searches:>12,}{share:>9.1%}" for tier, queries, searches, share in summary]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = StratifyConfig.from_cli(argv, prog="python -m jobs.stratify")
    summary = run(cfg)
    print(f"query tiers ds={cfg.ds_str} window {cfg.first_ds}..{cfg.ds_str}")
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    from lore_ml.cli import run_entry_point

    sys.exit(run_entry_point(main))
