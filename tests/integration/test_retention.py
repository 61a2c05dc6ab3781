"""`lore expire-partitions`: which days a retention removes from the lakehouse, and which policies it refuses."""

import re
from pathlib import Path

import pytest

from lore_ml.lakehouse import vacuum_main
from lore_ml.retention import main as expire_main

TABLE = "silver.daily_position_ratios"
DAYS = ("2026-01-01", "2026-01-02", "2026-01-03", "2026-01-05", "2026-01-09")


@pytest.fixture
def ratios_by_day(lakehouse, sail_spark):
    """One row per day of ``DAYS`` in ``TABLE``, its position the day's index."""
    for position, ds in enumerate(DAYS):
        row = sail_spark.createDataFrame([(position, 1.0, 1.0, 1)], "position int, numerator double, "
                                                                    "denominator double, pairs long")
        lakehouse.write_partition(row, TABLE, ds)
    return lakehouse


def expire(lakehouse, ds: str, *flags: str) -> int:
    return expire_main(["--ds", ds, "--set", f"lakehouse.root={lakehouse.config.root}", "--window-days", "2",
                        "--set", "lakehouse.keep_days.silver.daily_position_ratios=2", *flags])


def positions(lakehouse) -> dict[str, int]:
    return {r["ds"]: r["position"] for r in lakehouse.read(TABLE).collect()}


def test_expire_removes_the_days_before_the_retention_in_one_commit(ratios_by_day, capsys):
    lakehouse = ratios_by_day
    assert expire(lakehouse, "2026-01-06", "--dry-run") == 0  # keeps 01-05..01-06; 01-09 is after ds
    assert re.search(r"would remove .*\n" + re.escape(TABLE) + r" +2 +3 +2  2026-01-01..2026-01-03\n",
                     capsys.readouterr().out)
    assert lakehouse.partitions(TABLE) == set(DAYS)

    assert expire(lakehouse, "2026-01-06") == 0
    assert re.search(re.escape(TABLE) + r" +2 +3 +2  2026-01-01..2026-01-03\n", capsys.readouterr().out)
    assert positions(lakehouse) == {"2026-01-05": 3, "2026-01-09": 4}
    assert expire(lakehouse, "2026-01-06") == 0  # a re-run removes nothing more
    assert re.search(re.escape(TABLE) + r" +2 +0 +2  -\n", capsys.readouterr().out)

    # The removed days' files stay until the vacuum deletes them.
    table_dir = Path(lakehouse.uri(TABLE))
    assert len(list(table_dir.glob("ds=*/*.parquet"))) == 5
    assert vacuum_main(["--set", f"lakehouse.root={lakehouse.config.root}", "--retention-hours", "0"]) == 0
    assert sorted(path.parent.name for path in table_dir.glob("ds=*/*.parquet")) == ["ds=2026-01-05", "ds=2026-01-09"]
    assert positions(lakehouse) == {"2026-01-05": 3, "2026-01-09": 4}


def test_the_newest_day_at_or_before_ds_is_kept_however_old(ratios_by_day):
    lakehouse = ratios_by_day
    assert expire(lakehouse, "2026-01-08") == 0  # keeps 01-07..01-08, but 01-05 is the newest day by then
    assert set(positions(lakehouse)) == {"2026-01-05", "2026-01-09"}


def test_without_a_policy_nothing_is_removed(ratios_by_day, capsys):
    lakehouse = ratios_by_day
    assert expire_main(["--ds", "2026-01-31", "--set", f"lakehouse.root={lakehouse.config.root}"]) == 0
    assert "no lakehouse.keep_days set, every day of every table is kept" in capsys.readouterr().out
    assert lakehouse.partitions(TABLE) == set(DAYS)


def test_a_table_not_written_yet_is_reported_absent(lakehouse, capsys):
    assert expire(lakehouse, "2026-01-06") == 0
    assert re.search(re.escape(TABLE) + r" +2 +absent\n", capsys.readouterr().out)


def test_run_checkpoints_of_days_not_run_again_are_deleted_without_a_policy(tmp_path, capsys):
    from lore_ml.checkpoint import RunCheckpoint
    from lore_ml.config import LakehouseConfig

    lake = LakehouseConfig(root=str(tmp_path / "lake"))
    for job, day in [("judge_head", "2026-01-20"), ("judge_head", "2026-01-25"), ("synth_cot", "2026-01-24"),
                     ("synth_cot", "2026-01-31"), ("synth_cot", "2026-02-02")]:  # 02-02: a backfill ahead of ds
        saving = RunCheckpoint.for_job(lake, job, day)
        saving.add("key", "value")
        saving.flush()
    checkpoints = tmp_path / "lake" / "_checkpoints"
    every = {str(p.relative_to(checkpoints)) for p in checkpoints.glob("*/*")}
    command = ["--ds", "2026-01-31", "--set", f"lakehouse.root={lake.root}"]
    assert expire_main([*command, "--dry-run"]) == 0  # the default keeps 01-25..01-31
    assert re.search(r"_checkpoints/judge_head +7 +1 +1  2026-01-20..2026-01-20\n"
                     r"_checkpoints/synth_cot +7 +1 +2  2026-01-24..2026-01-24\n", capsys.readouterr().out)
    assert {str(p.relative_to(checkpoints)) for p in checkpoints.glob("*/*")} == every
    assert expire_main([*command, "--set", "checkpoint_keep_days=8"]) == 0  # keeps 01-24..01-31
    assert re.search(r"_checkpoints/judge_head +8 +1 +1  2026-01-20..2026-01-20\n"
                     r"_checkpoints/synth_cot +8 +0 +3  -\n", capsys.readouterr().out)
    assert {str(p.relative_to(checkpoints)) for p in checkpoints.glob("*/*")} == every - {"judge_head/2026-01-20"}


@pytest.mark.parametrize(("keep", "problem"), [
    ("bronze.human_labels=30", "bronze.human_labels cannot expire: every label up to ds trains"),
    ("bronze.catalog=30", "bronze.catalog cannot expire: embed_vectors and the pair context read every snapshot"),
    ("silver.daily_impressions=7", "silver.daily_impressions must keep at least 28 days, got 7"),
    ("bronze.search_log=3", "bronze.search_log must keep at least 8 days, got 3"),
    ("silver.kg_edgez=3", "silver.kg_edgez: no such table; tables that may expire: bronze.search_log,"),
    ("silver.kg_edges=0", "Input should be greater than 0"),
])
def test_a_policy_that_would_break_a_job_is_refused(tmp_path, capsys, keep, problem):
    with pytest.raises(SystemExit) as exit_info:
        expire_main(["--ds", "2026-01-31", "--set", f"lakehouse.root={tmp_path}",
                     "--set", f"lakehouse.keep_days.{keep}"])
    assert exit_info.value.code == 2 and problem in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
