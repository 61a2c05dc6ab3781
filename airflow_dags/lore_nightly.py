"""Nightly LORE pipeline (DESIGN.md §2): raw drops → tiers, KG, training pairs → head judgments → cache.

ingest → rollup_logs → stratify → build_kg → mine_pairs → judge_head → fill_cache → expire_partitions →
vacuum_lakehouse, one run per day (rollup_logs aggregates the day's logs once; the window jobs sum the
daily rollups); embed_vectors (the representation student's tower vectors) runs beside the KG branch
after stratify. expire_partitions removes the days older than each table's retention
(``lakehouse.keep_days``; none by default) and vacuum_lakehouse deletes the files of days replaced or
removed over a week ago. Each task is idempotent for its ``ds`` (re-running a day rewrites that day),
so clearing and re-running a task is always safe. Settings: see ``lore_tasks.py``.

A run's logical date (``ds``) is the day it processes: the run for day D starts the next day at
``LORE_NIGHTLY_HOUR`` (00:00 UTC by default), when D's raw drops are complete (a data-interval
timetable; with a plain cron string Airflow 3 would start it at 00:00 of D itself, with ``ds`` = D
and none of D's drops there yet).

Scheduled runs go one day at a time (``max_active_runs=1``), but a backfill (``airflow backfill
create``) runs up to its own ``--max-active-runs`` days at once (Airflow's default 10). So what reads
the days before its own waits for the day before (``depends_on_past``): ``ingest`` (a day's logs
and labels are checked against the newest catalog snapshot at or before it) and ``stratify``, the
first window job (it and build_kg and mine_pairs read the window's daily rollups); rollups, vectors
and judgments of several days run side by side. One ``judge_head`` at a time (each takes the
GPU), one ``expire_partitions`` and one ``vacuum_lakehouse``. ``fill_cache`` of a day older than
the one the cache serves exits 99 and is skipped, and so are the tasks after it.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, CronDataIntervalTimetable

from lore_tasks import DEFAULT_ARGS, NIGHTLY_HOUR, lore_task

with DAG(
    dag_id="lore_nightly",
    description="Ingest, tiers, knowledge graph, training pairs, tower vectors, head judgments, Redis cache.",
    schedule=CronDataIntervalTimetable(f"0 {NIGHTLY_HOUR} * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=8),
    default_args=DEFAULT_ARGS,
    tags=["lore", "nightly"],
):
    ingest = lore_task("ingest", "ingest", spark_job="ingest", depends_on_past=True)
    rollup_logs = lore_task("rollup_logs", "rollup-logs", spark_job="rollup_logs")
    stratify = lore_task("stratify", "stratify", spark_job="stratify", depends_on_past=True)
    build_kg = lore_task("build_kg", "build-kg", spark_job="build_kg")
    mine_pairs = lore_task("mine_pairs", "mine-pairs", spark_job="mine_pairs")
    # driver-side vLLM: not spark-submitted; a run that times out resumes on retry from its checkpoint
    judge_head = lore_task("judge_head", "judge-head", timeout_h=4, max_active_tis_per_dag=1)
    fill_cache = lore_task("fill_cache", "fill-cache", timeout_h=1)
    embed_vectors = lore_task("embed_vectors", "embed-vectors", spark_job="embed_vectors", timeout_h=2)
    expire_partitions = lore_task("expire_partitions", "expire-partitions", timeout_h=1, max_active_tis_per_dag=1)
    vacuum_lakehouse = lore_task("vacuum_lakehouse", "vacuum-lakehouse", ds=None, timeout_h=1,
                                 max_active_tis_per_dag=1)

    ingest >> rollup_logs >> stratify >> build_kg >> mine_pairs >> judge_head >> fill_cache >> expire_partitions
    stratify >> embed_vectors >> expire_partitions >> vacuum_lakehouse
