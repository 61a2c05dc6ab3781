"""Delta partition writes on the embedded engine: schema enforcement and idempotent days."""

import collections
import concurrent.futures
import datetime as dt
import re
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from lore_ml.lakehouse import SCHEMAS, WRITTEN_BY, SchemaMismatch, content_hash, migrate_main, staging_area, vacuum_main

LABEL_COLUMNS = "query string, item_id string, label string, dimension string, rating double, split string, source string"


def labels(spark, rows):
    return spark.createDataFrame(rows, LABEL_COLUMNS)


def test_every_table_is_partitioned_by_ds():
    for name, schema in SCHEMAS.items():
        assert schema.fieldNames()[-1] == "ds", name


def test_every_table_names_the_command_that_writes_it():  # what a reader that finds none says to run
    assert set(WRITTEN_BY) == set(SCHEMAS)


def test_write_rejects_missing_extra_and_mistyped_columns(lakehouse, sail_spark):
    good = labels(sail_spark, [("q", "i", "L4", None, 3.0, "train", "x")])
    with pytest.raises(SchemaMismatch, match="missing column label"):
        lakehouse.write_partition(good.drop("label"), "bronze.human_labels", "2026-01-01")
    with pytest.raises(SchemaMismatch, match="unexpected columns extra"):
        lakehouse.write_partition(good.withColumn("extra", F.lit(1)), "bronze.human_labels", "2026-01-01")
    with pytest.raises(SchemaMismatch, match="column rating is string, expected double"):
        lakehouse.write_partition(good.withColumn("rating", F.lit("3")), "bronze.human_labels", "2026-01-01")
    assert not lakehouse.exists("bronze.human_labels")
    with pytest.raises(KeyError, match="unknown table"):
        lakehouse.write_partition(good, "bronze.labels", "2026-01-01")
    with pytest.raises(ValueError):
        lakehouse.write_partition(good, "bronze.human_labels", "2026-01-01' OR '1'='1")


def write_as_an_older_version(lakehouse, df, table, ds):
    """``df`` written as an earlier LORE would have, with its own columns, bypassing the schema check."""
    df.withColumn("ds", F.lit(ds)).write.format("delta").partitionBy("ds").mode("error").save(lakehouse.uri(table))


def test_a_table_from_an_older_version_gets_its_new_columns_on_write(lakehouse, sail_spark, caplog):
    row = ("q", "i", "L4", None, 3.0, "train", "x")
    write_as_an_older_version(lakehouse, labels(sail_spark, [row]).drop("source"), "bronze.human_labels", "2026-01-01")
    lakehouse.write_partition(labels(sail_spark, [row]).withColumn("ds", F.lit("")), "bronze.human_labels", "2026-01-02")
    assert "bronze.human_labels: added source" in caplog.text
    assert sorted((r["ds"], r["source"]) for r in lakehouse.read("bronze.human_labels").collect()) == [
        ("2026-01-01", None), ("2026-01-02", "x")]


def test_a_table_not_written_since_an_upgrade_reads_its_new_columns_as_null(lakehouse, sail_spark):
    row = ("q", "i", "L4", None, 3.0, "train", "x")
    write_as_an_older_version(lakehouse, labels(sail_spark, [row]).drop("source"), "bronze.human_labels", "2026-01-01")
    assert [tuple(r) for r in lakehouse.read_partition("bronze.human_labels", "2026-01-01").collect()] == [
        (*row[:-1], None, "2026-01-01")]


def test_a_change_delta_cannot_make_in_place_is_named(lakehouse, sail_spark):
    row = ("q", "i", "L4", None, 3.0, "train", "x")
    older = labels(sail_spark, [row]).withColumn("rating", F.lit("3")).withColumn("old", F.lit(1))
    write_as_an_older_version(lakehouse, older, "bronze.human_labels", "2026-01-01")
    with pytest.raises(SchemaMismatch, match="column rating is string in the table, double in this version. "
                                             "Delta cannot change that in place"):
        lakehouse.write_partition(labels(sail_spark, [row]).withColumn("ds", F.lit("")), "bronze.human_labels",
                                  "2026-01-02")
    assert lakehouse.spark.read.format("delta").load(lakehouse.uri("bronze.human_labels")).count() == 1  # untouched
    with pytest.raises(SchemaMismatch, match="does not hold what this version reads: column rating is string"):
        lakehouse.read("bronze.human_labels")


def test_a_column_this_version_no_longer_writes_is_kept_and_null_in_new_rows(lakehouse, sail_spark):
    row = ("q", "i", "L4", None, 3.0, "train", "x")
    write_as_an_older_version(lakehouse, labels(sail_spark, [row]).withColumn("old", F.lit(7)), "bronze.human_labels",
                              "2026-01-01")
    lakehouse.write_partition(labels(sail_spark, [row]).withColumn("ds", F.lit("")), "bronze.human_labels", "2026-01-02")
    stored = lakehouse.spark.read.format("delta").load(lakehouse.uri("bronze.human_labels"))
    assert sorted((r["ds"], r["old"]) for r in stored.collect()) == [("2026-01-01", 7), ("2026-01-02", None)]
    assert "old" not in lakehouse.read("bronze.human_labels").columns


def test_migrate_lakehouse_adds_new_columns_and_fails_on_conflicts(lakehouse, sail_spark, capsys):
    row = ("q", "i", "L4", None, 3.0, "train", "x")
    write_as_an_older_version(lakehouse, labels(sail_spark, [row]).drop("source", "split"), "bronze.human_labels",
                              "2026-01-01")
    argv = ["--set", f"lakehouse.root={lakehouse.config.root}"]
    assert migrate_main(argv) == 0
    lines = {line.split()[0]: line.split(None, 1)[1] for line in capsys.readouterr().out.splitlines()[1:]}
    assert lines["bronze.human_labels"] == "new column split (string); new column source (string)"
    assert lines["silver.kg_edges"] == "absent"
    assert lakehouse.read("bronze.human_labels").where(F.col("source").isNull()).count() == 1
    assert migrate_main(argv) == 0
    assert "bronze.human_labels up to date" in " ".join(capsys.readouterr().out.split())
    write_as_an_older_version(lakehouse, sail_spark.createDataFrame([(1,)], "node_id int"), "silver.kg_nodes",
                              "2026-01-01")
    assert migrate_main(argv) == 1
    assert "column node_id is int in the table, string in this version" in capsys.readouterr().out


def test_a_staged_empty_result_keeps_its_columns(lakehouse, sail_spark):
    empty = labels(sail_spark, [("q", "i", "L4", None, 3.0, "train", "x")]).where(F.col("label") == "L1")
    with staging_area(lakehouse.config, "job", "2026-01-01") as scratch:
        staged = scratch.stage(empty, "empty")
        assert staged.schema == empty.schema and staged.count() == 0
        staged = scratch.stage(labels(sail_spark, [("q", "i", "L4", None, 3.0, "train", "x")]), "empty")
        assert staged.collect()[0]["query"] == "q"  # a second stage of one name replaces the first
        parquet = [f for f in staged_files(lakehouse) if f.suffix == ".parquet"]
        assert parquet and {pq.ParquetFile(f).metadata.row_group(0).column(0).compression for f in parquet} == {
            "SNAPPY"}  # scratch favours write speed over size


def staged_files(lakehouse):
    return sorted(p for p in (Path(lakehouse.config.root) / "_staging").rglob("*") if p.is_file())


def test_a_staging_area_is_private_to_its_run_and_removed_after_it(lakehouse, sail_spark, caplog):
    caplog.set_level("INFO", logger="lore.lakehouse")
    rows = labels(sail_spark, [("q", "i", "L4", None, 3.0, "train", "x")])
    with staging_area(lakehouse.config, "job", "2026-01-01") as first, \
            staging_area(lakehouse.config, "job", "2026-01-01") as second:
        assert first.uri != second.uri  # two runs of one day (a retry beside a re-run)
        first.stage(rows, "rows")
        assert second.stage(rows.where(F.col("label") == "L1"), "rows").count() == 0
        assert first.stage(rows, "rows").count() == 1
        assert staged_files(lakehouse)
    assert staged_files(lakehouse) == []
    assert "job: staged rows (" in caplog.text  # a long job's progress
    with pytest.raises(RuntimeError, match="failed run"):
        with staging_area(lakehouse.config, "job", "2026-01-01") as scratch:
            scratch.stage(rows, "rows")
            raise RuntimeError("failed run")
    assert staged_files(lakehouse) == []


def test_rewriting_a_day_replaces_only_that_day(lakehouse, sail_spark, caplog):
    caplog.set_level("INFO", logger="lore.lakehouse")
    day1 = labels(sail_spark, [("a", "i1", "L4", None, None, "train", "x"), ("b", "i2", "L1", None, None, "dev", "x")])
    day2 = labels(sail_spark, [("c", "i3", "L2", "brand", None, "test", "x")])
    lakehouse.write_partition(day1, "bronze.human_labels", "2026-01-01")
    lakehouse.write_partition(day2, "bronze.human_labels", "2026-01-02")
    assert "wrote bronze.human_labels ds=2026-01-02 (" in caplog.text  # a long job's progress
    before = content_hash(lakehouse.read("bronze.human_labels"))

    lakehouse.write_partition(day2, "bronze.human_labels", "2026-01-02")  # re-run of day 2
    assert content_hash(lakehouse.read("bronze.human_labels")) == before

    replacement = labels(sail_spark, [("d", "i4", "L3", None, None, "train", "x")])
    lakehouse.write_partition(replacement, "bronze.human_labels", "2026-01-02")
    rows = {(r["query"], r["ds"]) for r in lakehouse.read("bronze.human_labels").collect()}
    assert rows == {("a", "2026-01-01"), ("b", "2026-01-01"), ("d", "2026-01-02")}


def test_writers_of_one_table_at_once_each_commit_and_a_day_holds_one_writers_rows(lakehouse, sail_spark, caplog):
    """A backfill writing many days of a new table at once. Sail fails all but one of a set of
    simultaneous commits; it also fails writers that found no table a moment before another
    created it, and commits made while the log's first checkpoint (version 10) is written. Each
    loser writes again. Three of the twelve writers race for one day, whose rows must be one
    writer's."""
    from deltalake import DeltaTable

    caplog.set_level("WARNING", logger="lore.lakehouse")
    days = [f"2026-02-{day:02d}" for day in range(1, 11)] + ["2026-02-01", "2026-02-01"]
    writes = [(labels(sail_spark, [(f"q{n}-{i}", "i", "L4", None, 3.0, "train", f"writer {n}") for i in range(50)]), day)
              for n, day in enumerate(days)]
    start = threading.Barrier(len(writes))

    def write(df, day):
        start.wait()
        lakehouse.write_partition(df, "bronze.human_labels", day)

    with concurrent.futures.ThreadPoolExecutor(len(writes)) as pool:
        for future in [pool.submit(write, df, day) for df, day in writes]:
            future.result()  # raises what the write raised

    assert "another writer committed to the table at the same moment; writing again" in caplog.text
    assert DeltaTable(lakehouse.uri("bronze.human_labels")).version() == len(writes) - 1  # one commit per write
    writers = collections.defaultdict(collections.Counter)
    for row in lakehouse.read("bronze.human_labels").collect():
        writers[row["ds"]][row["source"]] += 1
    assert {day: dict(count) for day, count in writers.items() if day != "2026-02-01"} == {
        day: {f"writer {n}": 50} for n, day in enumerate(days[:10]) if n}
    assert len(writers["2026-02-01"]) == 1 and set(writers["2026-02-01"].values()) == {50}


def test_a_missing_day_is_told_apart_never_written_written_empty_or_removed_since(lakehouse, sail_spark):
    from deltalake import DeltaTable

    from lore_ml.config import InputsNotReady

    def refusal(ds):
        with pytest.raises(InputsNotReady) as refused:
            lakehouse.require_partition("bronze.human_labels", ds)
        return str(refused.value)

    never = "(not written for that day, or written with no rows): run `lore ingest --ds 2026-01-0{}` first"
    assert never.format(1) in refusal("2026-01-01")  # no table yet
    empty, one = labels(sail_spark, []).where(F.lit(False)), labels(sail_spark, [("a", "i", "L4", None, None, "t", "x")])
    lakehouse.write_partition(empty, "bronze.human_labels", "2026-01-01")  # the write that creates the table
    for ds in ("2026-01-02", "2026-01-03"):
        lakehouse.write_partition(one, "bronze.human_labels", ds)
    lakehouse.write_partition(empty, "bronze.human_labels", "2026-01-03")  # a re-run that found no rows
    lakehouse.write_partition(empty, "bronze.human_labels", "2026-01-04")  # a new day: Sail commits nothing
    lakehouse.require_partition("bronze.human_labels", "2026-01-02")
    assert re.search(r"ds=2026-01-01 \(its last write, Delta version 0 at 20\d\d-.* UTC, had no rows\)",
                     refusal("2026-01-01"))
    assert "ds=2026-01-03 (its last write, Delta version 3 at " in refusal("2026-01-03")
    assert never.format(4) in refusal("2026-01-04")
    DeltaTable(lakehouse.uri("bronze.human_labels")).delete("ds = '2026-01-02'")  # e.g. expired by retention
    assert re.search(r"ds=2026-01-02 \(written at Delta version 1 \(.* UTC\) and removed since\)",
                     refusal("2026-01-02"))


def test_vacuum_deletes_replaced_and_orphaned_files_past_the_retention_only(lakehouse, sail_spark, capsys):
    day = labels(sail_spark, [("a", "i1", "L4", None, None, "train", "x")])
    for _ in range(2):  # a day and its re-run: the first run's file is replaced
        lakehouse.write_partition(day, "bronze.human_labels", "2026-01-01")
    table_dir = Path(lakehouse.uri("bronze.human_labels"))
    orphan = table_dir / "ds=2026-01-01" / "part-killed-write.parquet"  # a write killed before its commit
    orphan.write_bytes(next(table_dir.glob("ds=2026-01-01/*.parquet")).read_bytes())
    files = lambda: set(table_dir.glob("ds=*/*.parquet"))  # noqa: E731
    before, content = files(), content_hash(lakehouse.read("bronze.human_labels"))
    assert len(before) == 3
    root = ["--set", f"lakehouse.root={lakehouse.config.root}"]

    assert vacuum_main([*root]) == 0 and files() == before  # all younger than the 7-day retention
    assert re.search(r"bronze.human_labels +0\n", capsys.readouterr().out)
    assert vacuum_main([*root, "--retention-hours", "0", "--dry-run"]) == 0 and files() == before
    assert re.search(r"would delete\n.*bronze.human_labels +2\n", capsys.readouterr().out, re.S)
    assert vacuum_main([*root, "--retention-hours", "0"]) == 0
    assert re.search(r"deleted\n.*bronze.human_labels +2\n", capsys.readouterr().out, re.S)
    assert len(files()) == 1 and not orphan.exists()
    assert content_hash(lakehouse.read("bronze.human_labels")) == content
    assert vacuum_main([*root, "--retention-hours", "0"]) == 0  # the log still names the two: not counted again
    assert re.search(r"deleted\n.*bronze.human_labels +0\n", capsys.readouterr().out, re.S)


def test_snapshot_reads_pick_the_newest_day_not_after_ds(lakehouse, sail_spark):
    for ds, query in (("2026-01-01", "old"), ("2026-01-05", "new")):
        lakehouse.write_partition(labels(sail_spark, [(query, "i", "L4", None, None, "train", "x")]),
                                  "bronze.human_labels", ds)
    assert lakehouse.latest_partition("bronze.human_labels", "2026-01-04") == "2026-01-01"
    assert lakehouse.read_snapshot("bronze.human_labels", "2026-01-09").first()["query"] == "new"
    assert lakehouse.read_snapshot("bronze.human_labels", "2025-12-31") is None
    window = lakehouse.read_window("bronze.human_labels", "2026-01-02", "2026-01-05")
    assert [r["query"] for r in window.collect()] == ["new"]


def test_rows_per_day_come_from_the_delta_log_or_a_count_where_it_has_no_statistics(lakehouse, sail_spark):
    import json

    assert lakehouse.partition_rows("bronze.human_labels") == {}  # no table yet
    rows = [("a", "i1", "L4", None, None, "train", "x"), ("b", "i2", "L1", None, None, "dev", "x")]
    lakehouse.write_partition(labels(sail_spark, rows), "bronze.human_labels", "2026-01-01")
    lakehouse.write_partition(labels(sail_spark, rows[:1]), "bronze.human_labels", "2026-01-02")
    assert lakehouse.partition_rows("bronze.human_labels") == {"2026-01-01": 2, "2026-01-02": 1}

    # A writer that records no statistics (Delta makes them optional): that day is counted instead.
    commit = Path(lakehouse.uri("bronze.human_labels")) / "_delta_log" / "00000000000000000001.json"
    actions = [json.loads(line) for line in commit.read_text().splitlines()]
    for action in actions:
        action.get("add", {}).pop("stats", None)
    commit.write_text("\n".join(json.dumps(action) for action in actions) + "\n")
    assert lakehouse.partition_rows("bronze.human_labels") == {"2026-01-01": 2, "2026-01-02": 1}


def test_timestamps_round_trip(lakehouse, sail_spark):
    schema = SCHEMAS["bronze.search_log"]
    row = ("r1", dt.datetime(2026, 1, 1, 12, 30), "u", "q", "i", 1, True, False, False)
    df = sail_spark.createDataFrame([row], ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in schema.fields[:-1]))
    lakehouse.write_partition(df, "bronze.search_log", "2026-01-01")
    back = lakehouse.read_partition("bronze.search_log", "2026-01-01").first()
    assert back["event_ts"] == dt.datetime(2026, 1, 1, 12, 30) and back["position"] == 1


def test_a_killed_runs_scratch_is_removed_by_a_later_run_and_a_running_ones_kept(lakehouse):
    job_root, now = Path(lakehouse.config.root) / "_staging" / "job", int(time.time())
    killed = job_root / f"2026-01-01.{now - 3 * 24 * 3600}.a1"  # its run was killed three days ago
    running = job_root / f"2026-01-02.{now - 3600}.b2"  # another run, one hour in
    for area in (killed, running):
        (area / "rows").mkdir(parents=True)
        (area / "rows" / "part-0.parquet").write_bytes(b"staged")
    with staging_area(lakehouse.config, "job", "2026-01-03"):
        pass
    assert not killed.exists() and (running / "rows" / "part-0.parquet").exists()


def test_scratch_that_cannot_be_deleted_is_logged_and_the_run_error_stands(lakehouse, monkeypatch, caplog):
    from lore_ml.lakehouse import StagingArea

    def storage_down(area):
        raise OSError("storage unreachable")

    monkeypatch.setattr(StagingArea, "remove", storage_down)
    with pytest.raises(ValueError, match="the job's own error"):
        with staging_area(lakehouse.config, "job", "2026-01-01"):
            raise ValueError("the job's own error")
    assert "could not remove the scratch area" in caplog.text and "storage unreachable" in caplog.text
