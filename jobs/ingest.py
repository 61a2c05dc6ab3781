"""Ingest one day's raw drops into bronze Delta tables; every bad row goes to quarantine.

For each source (catalog, human_labels, search_log — in that order, because the others are
checked against the catalog) the files under ``<raw_root>/<source>/ds=<ds>/`` (CSV, JSON
lines or Parquet; ``raw_root`` is a local folder or a storage URI such as ``s3a://bucket/raw``)
are staged as strings (:mod:`lore_ml.raw_io`), typed and validated by the pure
``transform_validate_*`` functions below, and written with a ``ds`` partition overwrite:
valid rows to ``bronze.<source>``, the rest to ``quarantine.<source>`` with the reason.
Input rows = bronze rows + quarantined rows, always; the job checks it and prints the counts.
A day without a search-log drop fails before anything is written (``required_sources``): the
export is late, and the nightly DAG's retries wait for it. A drop whose rejected share exceeds
``max_quarantined_share`` fails the run with its quarantine written and bronze untouched, and a
search-log drop far smaller than the days before it (``min_search_log_volume``) fails it before
anything of that drop is written.

    python -m jobs.ingest --ds 2026-01-31
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Literal

from pydantic import Field
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lore_ml.config import InputsNotReady, JobConfig
from lore_ml.labels import LABELS, MISMATCH_DIMENSIONS

log = logging.getLogger("lore.ingest")
VOLUME_HISTORY_DAYS, VOLUME_MIN_HISTORY = 7, 3  # the days a search-log drop's size is compared with

Source = Literal["catalog", "human_labels", "search_log"]
SOURCE_ORDER: tuple[Source, ...] = ("catalog", "human_labels", "search_log")
RAW_FIELDS: dict[str, tuple[str, ...]] = {
    "search_log": ("request_id", "event_ts", "user_id", "query", "item_id", "position", "clicked", "carted", "purchased"),
    "catalog": ("item_id", "title", "shop_id", "shop_name", "shop_type", "brand", "category", "category_path",
                "price", "attributes", "image_path"),
    "human_labels": ("query", "item_id", "label", "dimension", "rating", "source"),
}
MAX_QUERY_CHARS = 512


class IngestConfig(JobConfig):
    """Validate raw drops of one day into bronze Delta tables, bad rows into quarantine."""

    sources: list[Source] = Field(list(SOURCE_ORDER), description="Which sources to ingest.")
    label_source: str = Field("marketplace", description="`source` for human labels whose drop has none.")
    required_sources: list[Source] = Field(
        ["search_log"], description="Sources (of `sources`) whose drop must be there for ds: without one the run fails "
        "before writing anything (a late export; the DAG's retries wait for it) instead of leaving the day empty. "
        "Catalog and label drops come on some days only.")
    max_quarantined_share: float = Field(
        0.05, ge=0, le=1, description="Largest share of a drop's rows that may fail validation. Above it the drop "
        "is rejected and the run fails: its rejected rows go to quarantine (to see why), bronze keeps what it had. "
        "An upstream change that breaks most rows then stops the night instead of shrinking it; 1 accepts any drop.")
    min_search_log_volume: float = Field(
        0.5, ge=0, le=1, description="Least size of a day's search-log drop, as a share of the median of the "
        f"{VOLUME_HISTORY_DAYS} days bronze holds before it (once it holds {VOLUME_MIN_HISTORY}). A smaller drop (an "
        "export cut short or still landing) fails the run before that drop is written; 0 turns the check off.")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--sources", nargs="+", choices=SOURCE_ORDER)
        parser.add_argument("--raw-root", dest="data.raw_root", help="Raw landing folder or storage URI.")


# -- pure transforms ---------------------------------------------------------------------------

def first_failure(*checks: tuple[Column, str]) -> Column:
    """The message of the first check whose condition is true, else null."""
    return F.coalesce(*[F.when(cond, F.lit(message)) for cond, message in checks])


def _blank(col: Column) -> Column:
    return col.isNull() | (F.trim(col) == "")


def _bool(col: Column) -> Column:
    lowered = F.lower(F.trim(col))
    return (
        F.when(col.isNull(), F.lit(False))
        .when(lowered.isin("true", "1", "yes"), F.lit(True))
        .when(lowered.isin("false", "0", "no"), F.lit(False))
    )


def _with_reason(raw: DataFrame, fields: tuple[str, ...], reason: Column) -> DataFrame:
    record = F.coalesce(F.col("_record"), F.to_json(F.struct(*[F.col(f).alias(f) for f in fields])))
    return raw.withColumn("reason", F.coalesce(F.col("_error"), reason)).withColumn("record", record)


def _flag_known_items(raw: DataFrame, known_items: DataFrame) -> DataFrame:
    known = known_items.select("item_id").distinct().withColumn("_known", F.lit(True))
    return raw.join(known, on="item_id", how="left")


def transform_validate_search_log(raw: DataFrame, known_items: DataFrame) -> DataFrame:
    """Type and check staged log rows; ``reason`` is null for valid rows."""
    df = _flag_known_items(raw, known_items).select(
        "*",
        F.col("event_ts").try_cast("timestamp").alias("_ts"),
        F.col("position").try_cast("int").alias("_position"),
        *[_bool(F.col(c)).alias(f"_{c}") for c in ("clicked", "carted", "purchased")],
    )
    reason = first_failure(
        (_blank(F.col("request_id")), "request_id: missing"),
        (_blank(F.col("query")), "query: missing or empty"),
        (F.length("query") > MAX_QUERY_CHARS, f"query: longer than {MAX_QUERY_CHARS} characters"),
        (_blank(F.col("item_id")), "item_id: missing"),
        (F.col("event_ts").isNull(), "event_ts: missing"),
        (F.col("_ts").isNull(), "event_ts: not a timestamp"),
        (F.col("position").isNull(), "position: missing"),
        (F.col("_position").isNull(), "position: not an integer"),
        (F.col("_position") < 1, "position: must be >= 1"),
        *[(F.col(f"_{c}").isNull(), f"{c}: not a boolean") for c in ("clicked", "carted", "purchased")],
        (F.col("_known").isNull(), "item_id: unknown item (not in the catalog snapshot)"),
    )
    df = _with_reason(df, RAW_FIELDS["search_log"], reason)
    return df.select(
        "request_id",
        F.col("_ts").alias("event_ts"),
        "user_id",
        "query",
        "item_id",
        F.col("_position").alias("position"),
        *[F.col(f"_{c}").alias(c) for c in ("clicked", "carted", "purchased")],
        "reason", "record", "_source_file", "_line",
    )


def transform_validate_catalog(raw: DataFrame) -> DataFrame:
    """Type and check staged catalog rows; the first row of a duplicated item_id wins."""
    first = Window.partitionBy("item_id").orderBy("_line")
    df = raw.select(
        "*",
        F.col("price").try_cast("double").alias("_price"),
        F.from_json(F.col("attributes"), "map<string,string>").alias("_attributes"),
        F.row_number().over(first).alias("_occurrence"),
    )
    reason = first_failure(
        (_blank(F.col("item_id")), "item_id: missing"),
        (_blank(F.col("title")), "title: missing"),
        (F.col("price").isNotNull() & F.col("_price").isNull(), "price: not a number"),
        (F.col("_price") < 0, "price: negative"),
        (F.col("attributes").isNotNull() & F.col("_attributes").isNull(), "attributes: not a JSON object of strings"),
        (F.col("_occurrence") > 1, "item_id: duplicate of an earlier row"),
    )
    df = _with_reason(df, RAW_FIELDS["catalog"], reason)
    return df.select(
        "item_id", "title", "shop_id", "shop_name", "shop_type", "brand", "category", "category_path",
        F.col("_price").alias("price"), F.col("_attributes").alias("attributes"), "image_path",
        "reason", "record", "_source_file", "_line",
    )


def transform_validate_human_labels(raw: DataFrame, known_items: DataFrame, default_source: str) -> DataFrame:
    """Type and check staged label rows and attach the fixed split of each query."""
    from lore_ml.spark_udfs import with_split

    df = with_split(_flag_known_items(raw, known_items), "query", "_split").select(
        "*",
        F.upper(F.trim("label")).alias("_label"),
        F.lower(F.trim("dimension")).alias("_dimension"),
        F.col("rating").try_cast("double").alias("_rating"),
    )
    reason = first_failure(
        (_blank(F.col("query")), "query: missing or empty"),
        (F.length("query") > MAX_QUERY_CHARS, f"query: longer than {MAX_QUERY_CHARS} characters"),
        (_blank(F.col("item_id")), "item_id: missing"),
        (_blank(F.col("label")), "label: missing"),
        (~F.col("_label").isin(*LABELS), "label: not one of L1, L2, L3, L4"),
        (~_blank(F.col("dimension")) & ~F.col("_dimension").isin(*MISMATCH_DIMENSIONS),
         "dimension: not a known demand dimension"),
        (F.col("rating").isNotNull() & F.col("_rating").isNull(), "rating: not a number"),
        (F.col("_known").isNull(), "item_id: unknown item (not in the catalog snapshot)"),
    )
    df = _with_reason(df, RAW_FIELDS["human_labels"], reason)
    return df.select(
        "query", "item_id", F.col("_label").alias("label"),
        F.when(_blank(F.col("dimension")), F.lit(None).cast("string")).otherwise(F.col("_dimension")).alias("dimension"),
        F.col("_rating").alias("rating"),
        F.coalesce(F.col("_split"), F.lit("train")).alias("split"),  # rows without a query are rejected anyway
        F.coalesce(F.col("source"), F.lit(default_source)).alias("source"),
        "reason", "record", "_source_file", "_line",
    )


def transform_quarantine(validated: DataFrame) -> DataFrame:
    """Rejected rows in the quarantine schema (reason, raw record, source file)."""
    return validated.where(F.col("reason").isNotNull()).select(
        "reason", "record", F.col("_source_file").alias("source_file")
    )


def transform_accepted(validated: DataFrame) -> DataFrame:
    return validated.where(F.col("reason").isNull()).drop("reason", "record", "_source_file", "_line")


# -- wiring ---------------------------------------------------------------------------------------

@dataclass
class SourceCounts:
    source: str
    ds: str
    files: int
    input_rows: int
    bronze_rows: int
    quarantined_rows: int
    seconds: float

    @property
    def balanced(self) -> bool:
        return self.input_rows == self.bronze_rows + self.quarantined_rows


class MissingCatalog(InputsNotReady):
    pass


class MissingDrop(InputsNotReady):
    pass


class IncompleteDrop(InputsNotReady):
    """A day's search-log drop is far smaller than the days before it (``min_search_log_volume``)."""


def volume_baseline(rows: int, history: dict[str, int], ds: str, min_share: float) -> float | None:
    """The median rows of the last ``VOLUME_HISTORY_DAYS`` days of ``history`` (rows per ds) before
    ``ds`` when ``rows`` is less than ``min_share`` of it, else None (also with fewer than
    ``VOLUME_MIN_HISTORY`` days to compare with).

    >>> history = {"2026-01-01": 1000, "2026-01-02": 1200, "2026-01-03": 900, "2026-01-05": 10}
    >>> volume_baseline(400, history, "2026-01-04", 0.5)
    1000
    >>> volume_baseline(600, history, "2026-01-04", 0.5) is None, volume_baseline(9, history, "2026-01-03", 0.5)
    (True, None)
    """
    before = [history[day] for day in sorted(day for day in history if day < ds)[-VOLUME_HISTORY_DAYS:]]
    if len(before) < VOLUME_MIN_HISTORY:
        return None
    median = statistics.median(before)
    return median if rows < min_share * median else None


class RejectedDrop(InputsNotReady):
    """More of a drop failed validation than ``max_quarantined_share`` allows."""


def rejection_message(source: str, cfg: IngestConfig, input_rows: int, quarantined, rows: int) -> str:
    """Why ``source``'s drop was rejected: its share of bad rows and their commonest reasons
    (``quarantined``: the day's quarantine partition, of ``rows`` rows)."""
    reasons = quarantined.groupBy("reason").count().orderBy(F.desc("count"), "reason").limit(3).collect()
    listed = "; ".join(f"{r['count']:,} × {r['reason'][:120]}" for r in reasons)
    return (f"{source}: {rows:,} of {input_rows:,} rows ({rows / input_rows:.1%}) failed validation, more than "
            f"max_quarantined_share {cfg.max_quarantined_share:.0%} (commonest: {listed}). They are in "
            f"quarantine.{source} ds={cfg.ds_str}; bronze.{source} was not written. Fix the drop and re-run, or "
            f"accept it with --set max_quarantined_share=1")


def drop_folder(cfg: IngestConfig, source: str) -> str:
    """``<raw_root>/<source>/ds=<ds>``, where one day's drop of ``source`` lands."""
    return f"{cfg.data.raw_root.rstrip('/')}/{source}/ds={cfg.ds_str}"


def ingest_source(lakehouse, cfg: IngestConfig, source: str, raw_fs, files: list[str]) -> SourceCounts | None:
    """Ingest ``files`` (on ``raw_fs``), the day's drop of ``source``; None when there are none."""
    from tqdm import tqdm

    from lore_ml.lakehouse import staging_area
    from lore_ml.raw_io import stage_drop

    started = time.perf_counter()
    if not files:
        log.info("%s: no raw drop for %s, partition left as it is", source, cfg.ds_str)
        return None
    with staging_area(lakehouse.config, f"ingest_{source}", cfg.ds_str) as scratch:
        with scratch.open_output("drop.parquet") as sink, tqdm(
                desc=f"stage {source}", unit="row", unit_scale=True, disable=None, file=sys.stderr) as bar:
            staged = stage_drop(files, RAW_FIELDS[source], sink, on_rows=bar.update, fs=raw_fs)
        if source == "search_log" and cfg.min_search_log_volume:  # 0: no check, no read of bronze's log
            usual = volume_baseline(staged.rows, lakehouse.partition_rows("bronze.search_log"), cfg.ds_str,
                                    cfg.min_search_log_volume)
            if usual is not None:
                raise IncompleteDrop(
                    f"search_log: the drop for {cfg.ds_str} has {staged.rows:,} rows, {staged.rows / usual:.0%} of the "
                    f"median of the days before it ({usual:,.0f}): the export may be cut short or still landing. "
                    f"Nothing of it was written; a re-run ingests it once complete (--set min_search_log_volume=0 "
                    "takes it as it is)")
        raw = lakehouse.spark.read.parquet(scratch.path("drop.parquet"))
        if source == "catalog":
            validated = transform_validate_catalog(raw)
        else:
            catalog = lakehouse.read_snapshot("bronze.catalog", cfg.ds_str)
            if catalog is None:
                raise MissingCatalog(
                    f"no bronze.catalog snapshot at or before {cfg.ds_str}: ingest a catalog drop first "
                    f"(raw folder {cfg.data.raw_root.rstrip('/')}/catalog)"
                )
            if source == "search_log":
                validated = transform_validate_search_log(raw, catalog)
            else:
                validated = transform_validate_human_labels(raw, catalog, cfg.label_source)
        log.info("%s: writing quarantine and bronze partitions", source)
        lakehouse.write_partition(transform_quarantine(validated), f"quarantine.{source}", cfg.ds_str)
        quarantined = lakehouse.read_partition(f"quarantine.{source}", cfg.ds_str)
        quarantined_rows = quarantined.count()
        if quarantined_rows > cfg.max_quarantined_share * staged.rows:
            raise RejectedDrop(rejection_message(source, cfg, staged.rows, quarantined, quarantined_rows))
        lakehouse.write_partition(transform_accepted(validated), f"bronze.{source}", cfg.ds_str)
    counts = SourceCounts(
        source=source,
        ds=cfg.ds_str,
        files=staged.files,
        input_rows=staged.rows,
        bronze_rows=lakehouse.read_partition(f"bronze.{source}", cfg.ds_str).count(),
        quarantined_rows=quarantined_rows,
        seconds=time.perf_counter() - started,
    )
    if not counts.balanced:
        raise RuntimeError(f"{source}: {counts.input_rows} input rows but {counts.bronze_rows} bronze + "
                           f"{counts.quarantined_rows} quarantined — rows were lost")
    return counts


def run(cfg: IngestConfig) -> list[SourceCounts]:
    from lore_ml.lakehouse import open_lakehouse
    from lore_ml.raw_io import find_drop_files

    drops = {s: find_drop_files(drop_folder(cfg, s)) for s in SOURCE_ORDER if s in cfg.sources}
    missing = [drop_folder(cfg, s) for s, (_, files) in drops.items() if s in cfg.required_sources and not files]
    if missing:
        raise MissingDrop(f"no raw drop in {', '.join(missing)} (no .csv, .jsonl or .parquet file): the export for "
                          f"{cfg.ds_str} may be late. Nothing was written; a re-run ingests it once it lands "
                          "(--set required_sources=[] ingests whatever is there)")
    lakehouse = open_lakehouse(cfg)
    results = []
    for source, (raw_fs, files) in drops.items():  # in SOURCE_ORDER
        counts = ingest_source(lakehouse, cfg, source, raw_fs, files)
        if counts:
            results.append(counts)
    return results


def format_counts(results: list[SourceCounts]) -> str:
    header = f"{'source':<14}{'ds':<12}{'files':>6}{'input':>12}{'bronze':>12}{'quarantined':>13}{'rows/s':>11}  balanced"
    lines = [header, "-" * len(header)]
    for c in results:
        rate = c.input_rows / c.seconds if c.seconds else 0.0
        lines.append(f"{c.source:<14}{c.ds:<12}{c.files:>6}{c.input_rows:>12,}{c.bronze_rows:>12,}"
                     f"{c.quarantined_rows:>13,}{rate:>11,.0f}  {'yes' if c.balanced else 'NO'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = IngestConfig.from_cli(argv, prog="python -m jobs.ingest")
    results = run(cfg)
    print(f"ingest ds={cfg.ds_str} into {cfg.lakehouse.root}")
    print(format_counts(results) if results else "nothing to ingest")
    return 0


if __name__ == "__main__":
    from lore_ml.cli import run_entry_point

    sys.exit(run_entry_point(main))
