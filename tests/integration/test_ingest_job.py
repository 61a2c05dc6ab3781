"""Generate a small marketplace, ingest every day, and check counts, reasons and re-runs."""

import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs.generate_marketplace import GenerateConfig, generate
from jobs.ingest import IngestConfig, IncompleteDrop, MissingCatalog, MissingDrop, RejectedDrop, run
from lore_ml.lakehouse import Lakehouse, content_hash

DS = "2026-01-31"


@pytest.fixture(scope="module")
def drop(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    cfg = GenerateConfig.load(overrides={"ds": DS, "rows": 4000, "days": 3, "bad_row_rate": 0.005,
                                         "data": {"raw_root": str(root)}})
    return cfg, generate(cfg)


def ingest(drop, lakehouse_root, ds, **extra):
    gen_cfg, _ = drop
    cfg = IngestConfig.load(overrides={"ds": ds, "lakehouse": {"root": str(lakehouse_root)},
                                       "data": {"raw_root": str(gen_cfg.data.raw_root)}, **extra})
    return run(cfg)


def test_generation_is_deterministic_and_reused(drop, tmp_path):
    cfg, manifest = drop
    again = generate(cfg)  # same spec: the existing drop is reused
    assert again == manifest
    other = GenerateConfig.load(overrides={**cfg.model_dump(exclude={"data"}), "data": {"raw_root": str(tmp_path)}})
    generate(other)
    for relative in ("catalog/ds=2026-01-29/catalog.jsonl", "human_labels/ds=2026-01-31/labels.csv"):
        assert (tmp_path / relative).read_bytes() == (Path(cfg.data.raw_root) / relative).read_bytes()


def test_the_generator_writes_local_folders_only(drop):
    cfg, _ = drop
    with pytest.raises(ValueError, match="writes a local folder, not s3a://bucket/raw"):
        on_storage = {**cfg.model_dump(exclude={"data"}), "data": {"raw_root": "s3a://bucket/raw"}}
        generate(GenerateConfig.load(overrides=on_storage))


def test_every_input_row_lands_in_bronze_or_quarantine(drop, tmp_path, sail_spark):
    _, manifest = drop
    lakehouse_root = tmp_path / "lh"
    results = {}
    for ds in manifest["days"]:
        for counts in ingest(drop, lakehouse_root, ds):
            assert counts.balanced, counts
            results.setdefault(counts.source, []).append(counts)
    assert sum(c.input_rows for c in results["search_log"]) == manifest["counts"]["search_log_rows"]
    assert sum(c.input_rows for c in results["catalog"]) == manifest["counts"]["catalog_lines"]
    assert sum(c.input_rows for c in results["human_labels"]) == manifest["counts"]["human_label_rows"]

    from lore_ml.config import LakehouseConfig

    lakehouse = Lakehouse(sail_spark, LakehouseConfig(root=str(lakehouse_root)))
    reasons = {
        source: {r["reason"] for r in lakehouse.read(f"quarantine.{source}").collect()}
        for source in ("catalog", "search_log", "human_labels")
    }
    assert {"item_id: missing", "price: not a number", "item_id: duplicate of an earlier row"} <= reasons["catalog"]
    assert any(r.startswith("invalid UTF-8") for r in reasons["catalog"])
    assert {"request_id: missing", "query: missing or empty", "position: must be >= 1",
            "item_id: unknown item (not in the catalog snapshot)"} <= reasons["search_log"]
    assert {"label: not one of L1, L2, L3, L4", "query: missing or empty",
            "item_id: unknown item (not in the catalog snapshot)"} <= reasons["human_labels"]
    splits = lakehouse.read("bronze.human_labels").groupBy("query").agg(F.countDistinct("split").alias("n")).collect()
    assert splits and all(row["n"] == 1 for row in splits)

    # A re-run of a day leaves the same content, in bronze and in quarantine.
    before = {t: content_hash(lakehouse.read(t)) for t in ("bronze.search_log", "quarantine.search_log")}
    ingest(drop, lakehouse_root, manifest["days"][-1])
    assert {t: content_hash(lakehouse.read(t)) for t in before} == before


def test_logs_without_a_catalog_fail_with_a_clear_message(drop, tmp_path):
    _, manifest = drop
    with pytest.raises(MissingCatalog, match="ingest a catalog drop first"):
        ingest(drop, tmp_path / "empty", manifest["days"][-1], sources=["search_log"])


def test_a_day_without_its_search_log_drop_fails_before_writing_anything(drop, tmp_path):
    _, manifest = drop
    late = "2026-02-01"  # after the generated days: no drop of any source
    with pytest.raises(MissingDrop, match=r"no raw drop in .*/search_log/ds=2026-02-01 .*may be late"):
        ingest(drop, tmp_path / "lh", late)
    assert not (tmp_path / "lh").exists()
    assert ingest(drop, tmp_path / "lh", late, required_sources=[]) == []  # asked to take what is there
    first_day = manifest["days"][0]  # a source not asked for is not required
    assert [c.source for c in ingest(drop, tmp_path / "lh", first_day, sources=["catalog"])] == ["catalog"]


def test_a_drop_that_mostly_fails_validation_is_rejected_and_bronze_keeps_its_day(drop, tmp_path, sail_spark):
    import pyarrow.parquet as pq

    from lore_ml.config import LakehouseConfig

    gen_cfg, manifest = drop
    day, lakehouse_root = manifest["days"][-1], tmp_path / "lh"
    ingest(drop, lakehouse_root, manifest["days"][0], sources=["catalog"])
    ingest(drop, lakehouse_root, day, sources=["search_log"])
    lakehouse = Lakehouse(sail_spark, LakehouseConfig(root=str(lakehouse_root)))
    good_day = content_hash(lakehouse.read_partition("bronze.search_log", day))

    # The export is re-sent with a renamed column (upstream schema change): no row has a query.
    renamed = tmp_path / "raw" / "search_log" / f"ds={day}"
    renamed.mkdir(parents=True)
    for part in (Path(gen_cfg.data.raw_root) / "search_log" / f"ds={day}").glob("*.parquet"):
        table = pq.read_table(part)
        pq.write_table(table.rename_columns(["search_query" if c == "query" else c for c in table.column_names]),
                       renamed / part.name)
    resent = {"ds": day, "sources": ["search_log"], "lakehouse": {"root": str(lakehouse_root)},
              "data": {"raw_root": str(tmp_path / "raw")}}
    with pytest.raises(RejectedDrop, match=r"search_log: ([\d,]+) of \1 rows \(100.0%\) failed validation, more than "
                       r"max_quarantined_share 5% \(commonest: [\d,]+ × query: missing or empty.*bronze.search_log "
                       r"was not written"):
        run(IngestConfig.load(overrides=resent))
    assert content_hash(lakehouse.read_partition("bronze.search_log", day)) == good_day
    assert {r["reason"] for r in lakehouse.read_partition("quarantine.search_log", day).collect()} >= {
        "query: missing or empty"}

    [accepted] = run(IngestConfig.load(overrides={**resent, "max_quarantined_share": 1}))  # taken as it is
    assert accepted.balanced and accepted.bronze_rows == 0 and accepted.quarantined_rows == accepted.input_rows


def test_a_search_log_drop_far_smaller_than_the_days_before_is_not_taken(drop, tmp_path, sail_spark):
    import shutil

    import pyarrow.parquet as pq

    from lore_ml.config import LakehouseConfig

    gen_cfg, manifest = drop
    generated, raw = Path(gen_cfg.data.raw_root), tmp_path / "raw"
    shutil.copytree(generated / "catalog" / f"ds={manifest['days'][0]}", raw / "catalog" / "ds=2026-01-20")
    one_day = next((generated / "search_log" / f"ds={manifest['days'][0]}").glob("*.parquet"))
    for ds in ("2026-01-21", "2026-01-22", "2026-01-23"):  # three ordinary days to compare with
        (raw / "search_log" / f"ds={ds}").mkdir(parents=True)
        shutil.copy(one_day, raw / "search_log" / f"ds={ds}" / one_day.name)
    cut_short = raw / "search_log" / "ds=2026-01-24"
    cut_short.mkdir()
    table = pq.read_table(one_day)
    pq.write_table(table.slice(0, table.num_rows // 4), cut_short / one_day.name)

    def ingest_day(ds, **extra):
        return run(IngestConfig.load(overrides={"ds": ds, "lakehouse": {"root": str(tmp_path / "lh")},
                                                "data": {"raw_root": str(raw)}, "required_sources": [], **extra}))

    for ds in ("2026-01-20", "2026-01-21", "2026-01-22"):
        ingest_day(ds)
    lakehouse = Lakehouse(sail_spark, LakehouseConfig(root=str(tmp_path / "lh")))
    usual = lakehouse.partition_rows("bronze.search_log")["2026-01-21"]
    assert lakehouse.partition_rows("bronze.search_log") == {"2026-01-21": usual, "2026-01-22": usual}
    ingest_day("2026-01-24")  # only two days before it: too few to judge, so it is taken
    taken_before = content_hash(lakehouse.read_partition("bronze.search_log", "2026-01-24"))
    ingest_day("2026-01-23")  # now three days before it: a re-run of the small day is refused
    with pytest.raises(IncompleteDrop, match=rf"the drop for 2026-01-24 has {table.num_rows // 4:,} rows, 25% of the "
                       rf"median of the days before it \({usual:,}\).*Nothing of it was written"):
        ingest_day("2026-01-24")
    assert content_hash(lakehouse.read_partition("bronze.search_log", "2026-01-24")) == taken_before
    [taken] = ingest_day("2026-01-24", min_search_log_volume=0)
    assert taken.input_rows == table.num_rows // 4


def test_manifest_records_truth_files(drop):
    cfg, manifest = drop
    assert manifest["counts"]["search_log_rows"] == 4000
    first = json.loads((Path(cfg.data.raw_root) / "truth" / "queries.jsonl").open().readline())
    assert {"text", "demands", "traffic_weight"} <= first.keys()
