"""The lakehouse: every Delta table's schema, where it lives, and how a day is written.

Table names are contracts between components (DESIGN.md §4). Every table is partitioned by
``ds`` (a ``YYYY-MM-DD`` string) and a job only ever replaces its own day with
``replaceWhere`` — never a dynamic partition overwrite, which Sail ignores (it would replace
the whole table; see STACK.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from lore_ml.config import InputsNotReady, LakehouseConfig
from lore_ml.storage import filesystem

log = logging.getLogger("lore.lakehouse")

PARTITION_COLUMN = "ds"


def _schema(*fields: tuple[str, DataType, bool]) -> StructType:
    return StructType(
        [StructField(name, dtype, nullable) for name, dtype, nullable in fields]
        + [StructField(PARTITION_COLUMN, StringType(), False)]
    )


STR, INT, LONG, DBL, BOOL, TS = StringType(), IntegerType(), LongType(), DoubleType(), BooleanType(), TimestampType()
ATTRS = MapType(StringType(), StringType())

SCHEMAS: dict[str, StructType] = {
    # One row per impression: a search request showed `item_id` at `position` for `query`.
    "bronze.search_log": _schema(
        ("request_id", STR, False),
        ("event_ts", TS, False),
        ("user_id", STR, True),
        ("query", STR, False),
        ("item_id", STR, False),
        ("position", INT, False),
        ("clicked", BOOL, False),
        ("carted", BOOL, False),
        ("purchased", BOOL, False),
    ),
    # A catalog snapshot; readers use the newest snapshot at or before their ds.
    "bronze.catalog": _schema(
        ("item_id", STR, False),
        ("title", STR, False),
        ("shop_id", STR, True),
        ("shop_name", STR, True),
        ("shop_type", STR, True),  # official | other
        ("brand", STR, True),
        ("category", STR, True),  # leaf category
        ("category_path", STR, True),  # industry > ... > leaf
        ("price", DBL, True),
        ("attributes", ATTRS, True),  # demand dimension -> value
        ("image_path", STR, True),
    ),
    # Human relevance labels on the L1-L4 scale.
    "bronze.human_labels": _schema(
        ("query", STR, False),
        ("item_id", STR, False),
        ("label", STR, False),  # L1 | L2 | L3 | L4
        ("dimension", STR, True),  # deciding demand dimension of an L2, when known
        ("rating", DBL, True),  # raw rating where the source has one (Home Depot: 1..3)
        ("split", STR, False),  # train | dev | test, fixed by query
        ("source", STR, False),  # synthetic | home_depot | ...
    ),
    # Daily rollups of bronze.search_log (jobs/rollup_logs.py) that the window jobs sum.
    "silver.daily_searches": _schema(
        ("query", STR, False),
        ("query_norm", STR, True),
        ("searches", LONG, False),  # distinct request ids
    ),
    "silver.daily_impressions": _schema(
        ("query", STR, False),
        ("query_norm", STR, True),
        ("item_id", STR, False),
        ("position", INT, False),
        ("impressions", LONG, False),
        ("clicks", LONG, False),
        ("carts", LONG, False),
        ("purchases", LONG, False),
        ("skips", LONG, False),  # not clicked, shown above a clicked item of the same request
    ),
    "silver.daily_position_ratios": _schema(
        ("position", INT, False),
        ("numerator", DBL, False),  # Σ m·ctr at this position over the day's pairs also shown at 1
        ("denominator", DBL, False),  # Σ m·ctr at position 1 over the same pairs
        ("pairs", LONG, False),  # (query, item) pairs shown at both positions that day
    ),
    "silver.query_tiers": _schema(
        ("query_norm", STR, False),
        ("query_hash", STR, False),
        ("searches", LONG, False),
        ("traffic_share", DBL, False),
        ("cumulative_share", DBL, False),
        ("rank", LONG, False),
        ("tier", STR, False),  # head | mid | tail
    ),
    "silver.kg_nodes": _schema(
        ("node_id", STR, False),
        ("node_type", STR, False),
        ("name", STR, False),
        ("properties", ATTRS, True),
        ("support", LONG, False),
    ),
    "silver.kg_edges": _schema(
        ("src", STR, False),
        ("dst", STR, False),
        ("edge_type", STR, False),
        ("confidence", DBL, False),
        ("support", LONG, False),
    ),
    "silver.training_pairs": _schema(
        ("query", STR, False),
        ("query_norm", STR, False),
        ("item_id", STR, False),
        ("label", STR, False),
        ("dimension", STR, True),
        ("source", STR, False),
        ("confidence", DBL, False),
        ("split", STR, False),
        ("tier", STR, True),
    ),
    # MiniLM tower vectors of the representation student (jobs/embed_vectors.py)
    "silver.item_vectors": _schema(
        ("item_id", STR, False),
        ("text_hash", STR, False),  # SHA-1 (16 hex) of the text the item tower read
        ("model", STR, False),  # encoder id: vectors of another encoder are never reused
        ("vector", ArrayType(FloatType()), False),
    ),
    "silver.query_vectors": _schema(
        ("query_norm", STR, False),
        ("text_hash", STR, False),
        ("model", STR, False),
        ("vector", ArrayType(FloatType()), False),
    ),
    "gold.sft_examples": _schema(
        ("example_id", STR, False),
        ("query", STR, False),
        ("item_id", STR, False),
        ("label", STR, False),
        ("prompt", STR, False),
        ("completion", STR, False),
        ("kind", STR, False),  # the training pair's source (gold, purchase, ...) or hard_case
        ("split", STR, False),
    ),
    "gold.relevance_judgments": _schema(
        ("query_norm", STR, False),
        ("query_hash", STR, False),
        ("item_id", STR, False),
        ("label", STR, True),
        ("p", ArrayType(DBL), True),  # p(L1..L4)
        ("score", DBL, True),
        ("reasoning", STR, True),
        ("status", STR, False),  # ok | failed
        ("model_version", STR, False),
        ("prompt_hash", STR, False),
    ),
    "gold.eval_reports": _schema(
        ("report_id", STR, False),
        ("model_version", STR, False),
        ("dataset", STR, False),
        ("split", STR, False),
        ("metrics_json", STR, False),
        ("report_path", STR, True),
    ),
}

QUARANTINE_SCHEMA = _schema(
    ("reason", STR, False),  # why the row was rejected, e.g. "position: negative"
    ("record", STR, False),  # the raw row as JSON of strings, nothing dropped
    ("source_file", STR, True),
)
QUARANTINE_SOURCES = ("search_log", "catalog", "human_labels")
for _source in QUARANTINE_SOURCES:
    SCHEMAS[f"quarantine.{_source}"] = QUARANTINE_SCHEMA

# The command that writes each table: what a reader that finds no table tells the user to run.
WRITTEN_BY: dict[str, str] = {
    **{table: "lore ingest" for table in SCHEMAS if table.startswith(("bronze.", "quarantine."))},
    **dict.fromkeys(("silver.daily_searches", "silver.daily_impressions", "silver.daily_position_ratios"),
                    "lore rollup-logs"),
    "silver.query_tiers": "lore stratify",
    "silver.kg_nodes": "lore build-kg",
    "silver.kg_edges": "lore build-kg",
    "silver.training_pairs": "lore mine-pairs",
    "silver.item_vectors": "lore embed-vectors",
    "silver.query_vectors": "lore embed-vectors",
    "gold.sft_examples": "lore synth-cot",
    "gold.relevance_judgments": "lore judge-head",
    "gold.eval_reports": "lore eval",
}


def missing_table(config: LakehouseConfig, table: str) -> InputsNotReady:
    """The error of a reader that finds no ``table``: where it looked and what writes it."""
    return InputsNotReady(f"no {table} at {config.table_uri(table)}: run `{WRITTEN_BY[table]}` first "
                          "(for the days this one reads)")


class SchemaMismatch(ValueError):
    """A DataFrame does not match the schema of the table it is written to."""


@dataclass(frozen=True)
class SchemaChanges:
    """How a stored table differs from this version's schema of it (:data:`SCHEMAS`)."""

    new_columns: list[StructField]  # added in place (nullable): older rows read them as null
    retired_columns: list[StructField]  # no longer in this version: kept, and null in new rows
    conflicts: list[str]  # changed types: no Delta write can take this version's rows

    def describe(self) -> str:
        return "; ".join([f"new column {f.name} ({f.dataType.simpleString()})" for f in self.new_columns]
                         + [f"retired column {f.name} (null in new rows)" for f in self.retired_columns]
                         + self.conflicts) or "up to date"


# What Sail says when another writer took the table version this commit wanted, committed while the
# log's first checkpoint was written, or created the table this write found missing a moment before.
COMMIT_RACE_MESSAGES = ("Failed to commit transaction", "Missing commit file", "Delta table already exists")
# Logged at WARNING before each such write is run again (bench/parallel_backfill.py counts them).
COMMIT_RETRY_WARNING = "another writer committed to the table at the same moment"


def lost_commit_race(exc: BaseException) -> bool:
    """Whether a write failed only because another writer committed to (or created) the table at
    the same moment.

    >>> lost_commit_race(RuntimeError("Failed to commit transaction: 0"))
    True
    >>> lost_commit_race(RuntimeError("Permission denied"))
    False
    """
    return any(message in str(exc) for message in COMMIT_RACE_MESSAGES)


def open_delta(uri: str):
    """The ``deltalake.DeltaTable`` at ``uri``, or None when there is none: one read of its log
    (``is_deltatable`` and then ``DeltaTable`` would read it twice: two round trips on a store)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(uri)
    except TableNotFoundError:
        return None


def last_write_of_day(delta, ds: str, commits: int = 500) -> dict | None:
    """The newest of a ``DeltaTable``'s last ``commits`` commits that wrote the ``ds`` partition, or
    None. :meth:`Lakehouse.write_partition` stamps each commit's ``userMetadata`` with the day;
    commits written before that are found by their ``replaceWhere`` predicate (Sail writes it as
    ``ds = '…'``, delta-spark as ``["(ds = '…')"]``)."""
    ds = _checked_ds(ds)
    stamp, predicate = f"{PARTITION_COLUMN}={ds}", f"{PARTITION_COLUMN} = '{ds}'"
    return next((commit for commit in delta.history(commits) if commit.get("userMetadata") == stamp or (
        commit.get("operation") == "WRITE" and predicate in str((commit.get("operationParameters") or {})
                                                                 .get("predicate", "")))), None)


def schema_changes(config: LakehouseConfig, table: str) -> SchemaChanges | None:
    """The stored ``table``'s differences from :func:`schema_of`, read from its Delta log (no
    Spark, ~1 ms), or None when it does not exist. Nullability is not compared."""
    delta = open_delta(config.table_uri(table))
    if delta is None:
        return None
    stored = StructType.fromJson(json.loads(delta.schema().to_json()))
    wanted = schema_of(table)
    stored_types = {f.name: f.dataType.simpleString() for f in stored.fields}
    conflicts = [f"column {f.name} is {stored_types[f.name]} in the table, {f.dataType.simpleString()} in this version"
                 for f in wanted.fields
                 if f.name in stored_types and stored_types[f.name] != f.dataType.simpleString()]
    retired = [f for f in stored.fields if f.name not in wanted.fieldNames()]
    return SchemaChanges([f for f in wanted.fields if f.name not in stored_types], retired, conflicts)


def migrate_table(config: LakehouseConfig, table: str) -> SchemaChanges | None:
    """Bring a stored table to this version's schema where Delta can in place (metadata-only
    commits): add its new columns, nullable, and let its retired columns take nulls. A table with
    conflicts is left as it is."""
    from deltalake import DeltaTable
    from deltalake.schema import Field

    changes = schema_changes(config, table)
    if not changes or changes.conflicts:
        return changes
    alter = DeltaTable(config.table_uri(table)).alter
    if changes.new_columns:
        alter.add_columns([Field.from_json(json.dumps({**f.jsonValue(), "nullable": True}))
                           for f in changes.new_columns])
        log.warning("%s: added %s", table, ", ".join(f.name for f in changes.new_columns))
    for field in changes.retired_columns:
        if not field.nullable:
            alter.drop_column_not_null(field.name)
            log.warning("%s: retired column %s may now be null", table, field.name)
    return changes


@dataclass(frozen=True)
class Lakehouse:
    """Reads and writes the LORE tables through one Spark session."""

    spark: SparkSession
    config: LakehouseConfig

    def uri(self, table: str) -> str:
        schema_of(table)
        return self.config.table_uri(table)

    def exists(self, table: str) -> bool:
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(self.uri(table))

    def write_partition(self, df: DataFrame, table: str, ds: str) -> None:
        """Replace the ``ds`` partition of ``table`` with ``df`` (other days are untouched).

        ``df`` must carry exactly the table's columns (any order) with the table's types;
        its ``ds`` column is set here. Re-running with the same input leaves the same rows. A
        table stored by an older LORE gets its new columns first (:func:`migrate_table`).
        Each write is logged with its time: a long job's progress.

        Writers of other days of the table may run at the same time. Sail makes one commit
        attempt, so a write whose commit collides with another's is run again (up to
        ``lakehouse.commit_attempts`` in all); the loser's data files stay behind, unreferenced,
        until ``lore vacuum-lakehouse``. Two writers of one day leave the last committer's rows.
        """
        started = time.perf_counter()
        df = conform(df.withColumn(PARTITION_COLUMN, F.lit(_checked_ds(ds))), schema_of(table), table)
        retrying = Retrying(
            retry=retry_if_exception(lost_commit_race), stop=stop_after_attempt(self.config.commit_attempts),
            wait=wait_random_exponential(multiplier=0.2, max=10), reraise=True,
            before_sleep=lambda state: log.warning(
                "%s ds=%s: %s; writing again in %.1f s (attempt %d of %d)", table, ds, COMMIT_RETRY_WARNING,
                state.next_action.sleep, state.attempt_number + 1,
                self.config.commit_attempts))
        retrying(self._write_once, df, table, ds)
        log.info("wrote %s ds=%s (%.2f s)", table, ds, time.perf_counter() - started)

    def _write_once(self, df: DataFrame, table: str, ds: str) -> None:
        # A table written by another LORE version: Sail would drop a new column's values without a
        # word and refuse a write without a retired column, so both are settled here first.
        changes = migrate_table(self.config, table)
        if changes and changes.conflicts:
            raise SchemaMismatch(f"{table} at {self.uri(table)} cannot take this version's rows: "
                                 f"{'; '.join(changes.conflicts)}. Delta cannot change that in place: rewrite the "
                                 "table (e.g. re-run its jobs into a new lakehouse.root)")
        if changes:
            df = df.select("*", *(F.lit(None).cast(f.dataType).alias(f.name) for f in changes.retired_columns))
        # The day goes in the commit: require_partition tells a day written with no rows from one never written.
        writer = (df.write.format("delta").partitionBy(PARTITION_COLUMN)
                  .option("userMetadata", f"{PARTITION_COLUMN}={ds}"))
        if changes is None:  # replaceWhere needs an existing table; a new one is created by the first write
            writer = writer.mode("error")
        else:
            writer = writer.mode("overwrite").option("replaceWhere", f"{PARTITION_COLUMN} = '{ds}'")
        writer.save(self.uri(table))

    def write_arrow(self, rows, table: str, ds: str) -> None:
        """:meth:`write_partition` for rows built in Python (a ``pyarrow.Table``).

        The rows reach Spark as a Parquet file in a :func:`staging_area`, not over the Connect
        channel, which caps one message at 128 MiB (a day of prompts is far more).
        """
        import pyarrow.parquet as pq

        with staging_area(self.config, table.replace(".", "_"), ds) as scratch:
            with scratch.open_output("rows.parquet") as sink:
                pq.write_table(rows, sink)
            self.write_partition(self.spark.read.parquet(scratch.path("rows.parquet")), table, ds)

    def read(self, table: str) -> DataFrame:
        """The whole table, columns in schema order (Sail returns partition columns last). A column
        this version added and the stored table lacks yet (not migrated, not written since the
        upgrade) reads as null. Raises :class:`InputsNotReady` when there is no such table yet."""
        changes = schema_changes(self.config, table)
        if changes is None:
            raise missing_table(self.config, table)
        df = self.spark.read.format("delta").load(self.uri(table))
        if changes and changes.conflicts:
            raise SchemaMismatch(f"{table} at {self.uri(table)} does not hold what this version reads: "
                                 f"{'; '.join(changes.conflicts)}")
        not_stored = {f.name for f in changes.new_columns} if changes else set()
        return df.select(*(F.lit(None).cast(f.dataType).alias(f.name) if f.name in not_stored else F.col(f.name)
                           for f in schema_of(table).fields))

    def read_partition(self, table: str, ds: str) -> DataFrame:
        return self.read(table).where(F.col(PARTITION_COLUMN) == F.lit(_checked_ds(ds)))

    def read_window(self, table: str, first_ds: str, last_ds: str) -> DataFrame:
        """Partitions ``first_ds`` .. ``last_ds`` inclusive."""
        col = F.col(PARTITION_COLUMN)
        return self.read(table).where((col >= F.lit(_checked_ds(first_ds))) & (col <= F.lit(_checked_ds(last_ds))))

    def latest_partition(self, table: str, ds: str) -> str | None:
        """The newest ``ds`` of ``table`` at or before ``ds`` (snapshot tables like the catalog)."""
        if not self.exists(table):
            return None
        row = (
            self.read(table)
            .where(F.col(PARTITION_COLUMN) <= F.lit(_checked_ds(ds)))
            .agg(F.max(PARTITION_COLUMN).alias("latest"))
            .collect()[0]
        )
        return row["latest"]

    def partitions(self, table: str) -> set[str]:
        """The ``ds`` values ``table`` holds, read from the Delta log (no data file is opened)."""
        delta = open_delta(self.uri(table))
        return set() if delta is None else {p[PARTITION_COLUMN] for p in delta.partitions()}

    def partition_rows(self, table: str) -> dict[str, int]:
        """Rows per ``ds`` of ``table``, summed from the file statistics in its Delta log (no data
        file is opened); the days of files written without statistics are counted with Spark."""
        import pyarrow as pa

        delta = open_delta(self.uri(table))
        if delta is None:
            return {}
        files = pa.table(delta.get_add_actions(flatten=True)).select(
            ["num_records", f"partition.{PARTITION_COLUMN}"]).to_pylist()
        rows, unknown = {}, set()
        for file in files:
            ds, records = file[f"partition.{PARTITION_COLUMN}"], file["num_records"]
            if records is None:
                unknown.add(ds)
            rows[ds] = rows.get(ds, 0) + (records or 0)
        if unknown:
            counted = self.read(table).where(F.col(PARTITION_COLUMN).isin(*unknown)).groupBy(PARTITION_COLUMN).count()
            rows.update({r[PARTITION_COLUMN]: r["count"] for r in counted.collect()})
        return rows

    def has_partition(self, table: str, ds: str) -> bool:
        """Whether ``table`` has rows for exactly ``ds``."""
        return self.latest_partition(table, ds) == ds

    def require_partition(self, table: str, ds: str) -> None:
        """Raise :class:`InputsNotReady` unless ``table`` holds ``ds``: a job fed an empty day would
        write an empty day of its own and exit 0. The message says, from the table's Delta history,
        whether the day was never written, written with no rows, or written and removed since."""
        if ds in self.partitions(table):
            return
        delta = open_delta(self.uri(table))  # only on the way to an error: the history says why
        write = None if delta is None else last_write_of_day(delta, ds)
        if write is None:  # Sail commits nothing for an empty write of a day the table does not hold
            happened = "not written for that day, or written with no rows"
        else:
            when = dt.datetime.fromtimestamp(write["timestamp"] / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            rows = int((write.get("operationMetrics") or {}).get("numOutputRows", -1))
            happened = (f"its last write, Delta version {write['version']} at {when}, had no rows" if rows == 0 else
                        f"written at Delta version {write['version']} ({when}) and removed since")
        raise InputsNotReady(f"no {table} rows for ds={ds} ({happened}): run `{WRITTEN_BY[table]} --ds {ds}` first")

    def read_snapshot(self, table: str, ds: str) -> DataFrame | None:
        """The newest partition at or before ``ds``, or None when there is none."""
        latest = self.latest_partition(table, ds)
        return None if latest is None else self.read_partition(table, latest)


class StagingArea:
    """Scratch space of one job run (made by :func:`staging_area`).

    Sail has no effective ``cache()``: a plan that uses one result in several branches recomputes
    it in each, so jobs stage such results here once. Rows built in Python reach Spark through
    a file here too. Every path is under ``uri``, on the lakehouse's own storage, so Spark
    executors and this process see the same files.
    """

    def __init__(self, uri: str, job: str, fs, root: str):
        """``uri`` for Spark; ``fs`` and ``root``, the same folder for pyarrow."""
        self.uri, self.job, self._fs, self._root = uri, job, fs, root

    def path(self, name: str) -> str:
        """The URI of ``name`` in the area, for Spark."""
        return f"{self.uri}/{name}"

    def stage(self, df: DataFrame, name: str) -> DataFrame:
        """``df`` materialised as Parquet at ``name``, read back; logged with its time (progress).

        Snappy, not Sail's default zstd: scratch is read once or twice within the run, so writing
        fast matters more than size (build_kg ~8% faster at 10M log rows, bench/RESULTS.md)."""
        path, started = self.path(name), time.perf_counter()
        df.write.mode("overwrite").option("compression", "snappy").parquet(path)
        log.info("%s: staged %s (%.2f s)", self.job, name, time.perf_counter() - started)
        # With the schema given, an empty result (no Parquet file written) reads back as empty, not schemaless.
        return df.sparkSession.read.schema(df.schema).parquet(path)

    def open_output(self, name: str):
        """A pyarrow output stream that writes file ``name`` of the area."""
        self._fs.create_dir(self._root, recursive=True)
        return self._fs.open_output_stream(f"{self._root}/{name}")

    def remove(self) -> None:
        """Delete the area and everything in it (nothing to do when nothing was staged)."""
        import pyarrow.fs

        if self._fs.get_file_info(self._root).type != pyarrow.fs.FileType.NotFound:
            self._fs.delete_dir(self._root)


STALE_AREA_SECONDS = 2 * 24 * 3600  # no run lasts two days: an older area is a killed run's


@contextmanager
def staging_area(lakehouse: LakehouseConfig, job: str, ds: str) -> Iterator[StagingArea]:
    """A :class:`StagingArea` at ``<root>/_staging/<job>/<ds>.<start second>.<run id>`` for one run of
    ``job``.

    The run id keeps two runs of one day (a retry beside a manual re-run) out of each other's
    scratch, and the area is deleted when the block ends, failed or not, so scratch does not pile
    up night after night. A run that was killed cannot delete its area: the next run of the job
    deletes areas started more than ``STALE_AREA_SECONDS`` ago. DataFrames read from the area are
    only valid inside the block. An area that cannot be deleted is logged, not raised: the run's
    own outcome (or error) stands.
    """
    job_root, started = lakehouse.table_uri(f"_staging.{job}"), int(time.time())
    fs, job_path = filesystem(job_root)  # once: for an object store it is a network lookup
    try:
        _remove_stale_areas(fs, job_path, started)
    except OSError as error:
        log.warning("could not remove stale scratch areas under %s: %s", job_root, error)
    name = f"{_checked_ds(ds)}.{started}.{uuid.uuid4().hex[:12]}"
    area = StagingArea(f"{job_root}/{name}", job, fs, f"{job_path}/{name}")
    try:
        yield area
    finally:
        try:
            area.remove()
        except OSError as error:
            log.warning("could not remove the scratch area %s (delete it by hand): %s", area.uri, error)


def _remove_stale_areas(fs, job_path: str, now: int) -> None:
    """Delete the areas in folder ``job_path`` of ``fs`` that killed runs left, i.e. started over
    ``STALE_AREA_SECONDS`` before ``now`` (names ``<ds>.<start second>.<run id>``)."""
    import pyarrow.fs

    if fs.get_file_info(job_path).type != pyarrow.fs.FileType.Directory:
        return
    for area in fs.get_file_info(pyarrow.fs.FileSelector(job_path)):
        parts = area.base_name.split(".")
        if len(parts) == 3 and parts[1].isdigit() and now - int(parts[1]) > STALE_AREA_SECONDS:
            log.info("removing the scratch area of a run that did not finish: %s", area.path)
            fs.delete_dir(area.path)


def open_lakehouse(cfg) -> Lakehouse:
    """A job's lakehouse: the Spark session of ``cfg.spark``, checked to read and write Delta."""
    from lore_ml.spark import get_spark, require_delta

    spark = get_spark(cfg.spark)
    require_delta(spark, cfg.spark)
    return Lakehouse(spark, cfg.lakehouse)


def migrate_main(argv: list[str] | None = None) -> int:
    """``lore migrate-lakehouse``: after an upgrade, bring every stored table to this version's
    schemas at once (writes also do it, table by table, when they meet an older table; reads of a
    table not written since do not). Exit status 1 when a table has changes Delta cannot make."""
    from lore_ml.config import LoreConfig

    class MigrateConfig(LoreConfig):
        """Add this LORE version's new columns to the lakehouse's tables; list what cannot change in place."""

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = MigrateConfig.from_cli(argv, prog="lore migrate-lakehouse")
    print(f"lakehouse {cfg.lakehouse.root}")
    conflicts = 0
    for table in SCHEMAS:
        changes = migrate_table(cfg.lakehouse, table)
        conflicts += bool(changes and changes.conflicts)
        print(f"{table:<30}{'absent' if changes is None else changes.describe()}")
    return 1 if conflicts else 0


def vacuum_table(config: LakehouseConfig, table: str, retention_hours: int, dry_run: bool) -> list[str] | None:
    """Delete the files of ``table`` that its current version does not use and that were replaced
    (a re-run of a day), removed (a day past its retention, :mod:`lore_ml.retention`) or left by a
    killed write more than ``retention_hours`` ago, and the Delta log entries past the table's log
    retention (30 days); return the files deleted (with ``dry_run``: that would be), or None when
    the table does not exist. No Spark: ``deltalake`` does it.

    Delta keeps naming a replaced file until its removal expires from the log, after a vacuum has
    deleted it too; only files still stored are counted, so a second run reports 0, not the same
    files again.
    """
    import pyarrow.fs

    uri = config.table_uri(table)
    delta = open_delta(uri)
    if delta is None:
        return None
    fs, path = filesystem(uri)
    stored = {info.path[len(path) + 1:] for info in fs.get_file_info(pyarrow.fs.FileSelector(path, recursive=True))
              if info.type == pyarrow.fs.FileType.File}
    files = delta.vacuum(retention_hours=retention_hours, dry_run=dry_run, enforce_retention_duration=False,
                         full=True)  # full: also what a killed write left, which the log never mentions
    if not dry_run:
        delta.cleanup_metadata()
    return [file for file in files if file in stored]


def vacuum_main(argv: list[str] | None = None) -> int:
    """``lore vacuum-lakehouse``: every re-run of a day replaces its partition and leaves the old
    files behind, so does a day removed by ``lore expire-partitions``, and a killed write leaves
    files no commit names; this deletes them once they are older than the retention, for every
    table (the nightly DAG's last task)."""
    from pydantic import Field

    from lore_ml.config import LoreConfig

    class VacuumConfig(LoreConfig):
        """Delete the lakehouse files that no table's current version uses, once older than the retention."""

        retention_hours: int = Field(
            168, ge=0, description="Keep replaced files this long: a job still reading an older version of a table "
            "(the longest runs for hours) needs them, as does reading a table as of an earlier version.")
        dry_run: bool = Field(False, description="List what would be deleted; delete nothing.")

        @classmethod
        def add_arguments(cls, parser) -> None:
            parser.add_argument("--retention-hours", dest="retention_hours", type=int,
                                help="Delete only files replaced or written longer ago than this (default 168).")
            parser.add_argument("--dry-run", dest="dry_run", action="store_const", const=True,
                                help="List the counts; delete nothing.")

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = VacuumConfig.from_cli(argv, prog="lore vacuum-lakehouse")
    verb = "would delete" if cfg.dry_run else "deleted"
    print(f"lakehouse {cfg.lakehouse.root}: files replaced, expired or orphaned over {cfg.retention_hours} h ago")
    print(f"{'table':<30}{verb:>14}")
    total = 0
    for table in SCHEMAS:
        files = vacuum_table(cfg.lakehouse, table, cfg.retention_hours, cfg.dry_run)
        total += len(files or [])
        print(f"{table:<30}{'absent' if files is None else f'{len(files):,}':>14}")
    print(f"{'all tables':<30}{total:>14,}")
    return 0


def schema_of(table: str) -> StructType:
    try:
        return SCHEMAS[table]
    except KeyError:
        raise KeyError(f"unknown table {table!r}; known: {', '.join(sorted(SCHEMAS))}") from None


def conform(df: DataFrame, expected: StructType, table: str) -> DataFrame:
    """Select ``expected``'s columns in order; fail loudly on missing, extra or mistyped ones."""
    actual = {field.name: field.dataType for field in df.schema.fields}
    problems = []
    for field in expected.fields:
        if field.name not in actual:
            problems.append(f"missing column {field.name} ({field.dataType.simpleString()})")
        elif actual[field.name] != field.dataType:
            problems.append(
                f"column {field.name} is {actual[field.name].simpleString()}, "
                f"expected {field.dataType.simpleString()}"
            )
    extra = sorted(set(actual) - set(expected.fieldNames()))
    if extra:
        problems.append(f"unexpected columns {', '.join(extra)}")
    if problems:
        raise SchemaMismatch(f"write to {table} rejected: " + "; ".join(problems))
    return df.select(*expected.fieldNames())


def read_delta(config: LakehouseConfig, table: str, columns: list[str] | None = None,
               filters: list[tuple] | None = None):
    """The rows of ``table`` as a ``pyarrow.Table``, without Spark: ``columns`` (default all) of
    the rows matching ``filters`` (``[("ds", "=", day), ("kind", "in", [...])]``, all of them; a
    ``ds`` filter skips the other days' files). Raises :class:`InputsNotReady` when there is no
    such table yet.

    deltalake lists the table's current files and pyarrow reads them through its own filesystem
    for the URI. Left to its own file handler, deltalake's read from S3 is right but the process
    then aborts at exit (SIGABRT, in 6 of 10 runs here against an S3-protocol server), which would
    fail the task that read it.
    """
    import pyarrow.fs
    import pyarrow.parquet as pq

    uri = config.table_uri(table)
    delta = open_delta(uri)
    if delta is None:
        raise missing_table(config, table)
    fs, path = filesystem(uri)
    dataset = delta.to_pyarrow_dataset(filesystem=pyarrow.fs.SubTreeFileSystem(path, fs))
    return dataset.to_table(columns=columns, filter=pq.filters_to_expression(filters) if filters else None)


def content_hash(df: DataFrame) -> str:
    """Order-independent SHA-256 of a DataFrame's rows: equal hashes mean equal contents.

    Collects the rows to the driver: meant for tests and small partitions, not 10M-row tables.
    """
    rows = sorted(repr(tuple(row)) for row in df.collect())
    digest = hashlib.sha256()
    for row in rows:
        digest.update(row.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _checked_ds(ds: str) -> str:
    dt.date.fromisoformat(ds)  # raises on anything but YYYY-MM-DD, so it is safe in a predicate
    return ds
