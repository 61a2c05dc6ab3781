"""Every day-keyed command run before its inputs exist ends with one line that says what to run
(exit status 1, an ``InputsNotReady`` the DAG's retries wait out), never a traceback; so does a
batch command that finds Redis down."""

import pytest
from pyspark.sql.types import StructType

from lore_ml.cli import main

DS = "2026-01-31"

# (command and its own options, what the line must say)
COMMANDS = [
    (["rollup-logs"], "no bronze.search_log rows for ds=2026-01-31"),
    (["stratify"], "run `lore rollup-logs"),
    (["build-kg"], "no bronze.catalog snapshot at or before 2026-01-31: run `lore ingest` first"),
    (["mine-pairs"], "run `lore rollup-logs"),
    (["embed-vectors"], "run `lore stratify --ds 2026-01-31` first"),
    (["synth-cot"], "run `lore mine-pairs --ds 2026-01-31` first"),
    (["judge-head", "--set", "judge.model_path={root}/no-model"], "is not a Hugging Face model directory"),
    (["fill-cache"], "run `lore judge-head --ds 2026-01-31` first"),
    (["train", "sft", "--model", "{root}/no-model"], "is not a Hugging Face model directory"),
    (["eval", "--model", "{root}/no-model"], "no gold.sft_examples at {root}/gold/sft_examples: run `lore synth-cot`"),
    (["distill"], "run `lore mine-pairs --ds 2026-01-31` first"),
    (["promote", "--model", "{root}/no-model"], "is not a Hugging Face model directory"),
]


@pytest.mark.parametrize("command, says", COMMANDS, ids=[command[0] for command, _ in COMMANDS])
def test_a_command_on_an_empty_lakehouse_says_what_to_run(sail_spark, tmp_path, capsys, command, says):
    root = str(tmp_path / "lakehouse")
    argv = [part.format(root=root) for part in command] + ["--ds", DS, "--set", f"lakehouse.root={root}"]
    assert main(argv) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("error: ") and says.format(root=root) in lines[-1], lines[-3:]
    assert not (tmp_path / "lakehouse" / "silver").exists() and not (tmp_path / "lakehouse" / "gold").exists()


def test_a_job_whose_input_lacks_its_day_says_so_instead_of_writing_an_empty_day(lakehouse, capsys):
    from lore_ml.lakehouse import schema_of

    fields = [f for f in schema_of("silver.training_pairs").fields if f.name != "ds"]
    lakehouse.write_partition(lakehouse.spark.createDataFrame([], StructType(fields)), "silver.training_pairs",
                              "2026-01-30")
    root = lakehouse.config.root
    assert main(["synth-cot", "--ds", DS, "--set", f"lakehouse.root={root}"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: no silver.training_pairs rows for ds=2026-01-31 (not written for that day, or written with no rows): "
        "run `lore mine-pairs --ds 2026-01-31` first")
    assert not lakehouse.exists("gold.sft_examples")


def test_fill_cache_with_redis_down_fails_before_reading_the_judgments(lakehouse, capsys, monkeypatch):
    import jobs.fill_cache as fill_cache

    monkeypatch.setattr(fill_cache.SpilledBatches, "__init__", lambda *a: pytest.fail("judgments were read"))
    monkeypatch.setattr(lakehouse.__class__, "require_partition", lambda *a: None)  # as if judge-head had run
    root = lakehouse.config.root
    assert main(["fill-cache", "--ds", DS, "--set", f"lakehouse.root={root}",
                 "--set", "redis.url=redis://127.0.0.1:1/0"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        "error: Redis at 127.0.0.1:1 did not answer (ConnectionError: Error 111 connecting to 127.0.0.1:1. ")


def test_a_worker_draining_the_queue_once_with_redis_down_says_so_in_one_line(capsys):
    assert main(["worker", "--once", "--set", "redis.url=redis://127.0.0.1:1/0",
                 "--set", "teacher_url=http://127.0.0.1:9", "--set", "teacher_model=teacher"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: Redis at 127.0.0.1:1 did not answer")
