"""Weekly teacher training (DESIGN.md §2): SFT data → SFT → RL → evaluation → promotion.

synth_cot → sft → rl → distill → evaluate → promote. ``distill`` makes the new student current
only if it is not worse on dev; otherwise it exits with 99 and the task is *skipped* (the teacher's
evaluation still runs: ``none_failed``). ``promote`` runs ``lore promote``, which likewise exits
with 99 when the new teacher does not beat the champion on the evaluation gate, so a worse model
never reaches judging. ``evaluate`` fits the new teacher's decision rule on dev (how p(L1..L4)
becomes a label; stored in its manifest); ``promote`` evaluates the champion itself when it has
no report for the day yet. ``distill_cross`` trains the offline cross-encoder student after RL (not
beside SFT: both are CPU/GPU heavy) and likewise replaces ``current-cross`` only if not worse.

A run starts on Sunday six hours after the nightly run (06:00 UTC by default, ``LORE_NIGHTLY_HOUR``)
and trains on the day before its logical date: Saturday's training pairs, which the nightly run for
Saturday has written by then (if not yet, synth_cot stops with "inputs not ready" and its two
retries look again within half an hour). Runs are scheduled or triggered by hand, one at a time;
backfills are refused: Airflow runs a backfill's weeks at once whatever ``max_active_runs`` says,
and the weeks would share the GPU and the model folders (``artifacts/teacher-*``). To train on an
older day's pairs, trigger a run dated the day after it:
``airflow dags trigger lore_weekly_training --logical-date 2026-01-04T06:00:00+00:00`` (2026-01-03).
"""

from __future__ import annotations

import datetime as dt
from functools import partial

from airflow.sdk import DAG, CronTriggerTimetable

from lore_tasks import DAY_BEFORE, DEFAULT_ARGS, WEEKLY_HOUR, lore_task

week_task = partial(lore_task, ds=DAY_BEFORE)  # every task works on Saturday's data

with DAG(
    dag_id="lore_weekly_training",
    description="Synthesise reasoning, train the teacher (SFT, RL), evaluate, promote on the gate.",
    schedule=CronTriggerTimetable(f"0 {WEEKLY_HOUR} * * 0", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 4),
    catchup=False,
    max_active_runs=1,
    allowed_run_types=["scheduled", "manual"],
    dagrun_timeout=dt.timedelta(hours=48),
    default_args=DEFAULT_ARGS,
    tags=["lore", "training"],
):
    # hours when an LLM writes the reasoning; a run that times out resumes on retry from its checkpoint
    synth_cot = week_task("synth_cot", "synth-cot", spark_job="synth_cot", timeout_h=12)
    sft = week_task("sft", "train sft", timeout_h=24)
    rl = week_task("rl", "train rl", timeout_h=12)
    distill = week_task("distill", "distill", timeout_h=4)
    distill_cross = week_task("distill_cross", "distill --student cross", timeout_h=12)
    evaluate = week_task("evaluate", "eval --model artifacts/teacher-rl --split dev --fit-decision", timeout_h=4,
                         trigger_rule="none_failed")
    promote = week_task("promote", "promote --model artifacts/teacher-rl --split dev", timeout_h=1)

    synth_cot >> sft >> rl >> distill >> evaluate >> promote
    rl >> distill_cross
