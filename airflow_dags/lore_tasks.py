"""Task factory shared by the LORE DAG files; imports nothing heavy (parse time stays small).

Every task runs the same ``lore`` command a data engineer runs by hand, keyed by a day (``--ds``).
Deployment settings come from the environment of the scheduler/workers:

* ``LORE_CLI``            the command to run (default ``lore``; e.g. ``/opt/lore/.venv/bin/lore``)
* ``LORE_DAG_ARGS``       extra flags for every task (e.g. ``--config /etc/lore/prod.yaml``)
* ``LORE_SPARK_SUBMIT``   ``1``: Spark jobs go to a cluster through the Spark provider's
                          ``SparkSubmitOperator`` (connection ``LORE_SPARK_CONN_ID``, default
                          ``spark_default``) with ``spark.engine=jvm``, instead of the embedded engine
* ``LORE_JOBS_DIR``       where ``jobs/*.py`` live for spark-submit (default: next to this folder)
* ``LORE_NIGHTLY_HOUR``   the UTC hour, 0 to 17, at which the nightly run for the day before starts
                          (default ``0``): later when the raw drops land later; the run still gets
                          that day. The weekly training starts on Sundays six hours after it.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

LORE = os.environ.get("LORE_CLI", "lore")
EXTRA_ARGS = os.environ.get("LORE_DAG_ARGS", "")
SPARK_SUBMIT = os.environ.get("LORE_SPARK_SUBMIT", "") == "1"
JOBS_DIR = Path(os.environ.get("LORE_JOBS_DIR", Path(__file__).resolve().parent.parent / "jobs"))
NIGHTLY_HOUR = int(os.environ.get("LORE_NIGHTLY_HOUR", "0"))
if not 0 <= NIGHTLY_HOUR <= 17:  # the weekly run, six hours later, must start on the same Sunday
    raise ValueError(f"LORE_NIGHTLY_HOUR={NIGHTLY_HOUR}: give an hour of the day from 0 to 17 (UTC)")
WEEKLY_HOUR = NIGHTLY_HOUR + 6
SKIP_EXIT_CODE = 99  # lore_ml.cli.SKIPPED: a command declined to act (a gate, a backfilled day): skip, not fail

DEFAULT_ARGS = {
    "owner": "lore",
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=5),
    # a multiplier in Airflow 3 (True counts as 1: no back-off): retries after 5-10 and 10-20 minutes
    "retry_exponential_backoff": 2.0,
    "execution_timeout": dt.timedelta(hours=2),
}


LOGICAL_DAY = "{{ ds }}"  # the run's logical date
DAY_BEFORE = "{{ macros.ds_add(ds, -1) }}"


def lore_task(task_id: str, command: str, *, spark_job: str | None = None, timeout_h: float = 2,
              ds: str | None = LOGICAL_DAY, **kwargs):
    """``lore <command> --ds <ds>`` as a BashOperator, ``ds`` a template of the day (None for a command
    that is not about one day), or ``spark_job`` through spark-submit."""
    timeout = dt.timedelta(hours=timeout_h)
    if spark_job and SPARK_SUBMIT:
        from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

        return SparkSubmitOperator(
            task_id=task_id,
            application=str(JOBS_DIR / f"{spark_job}.py"),
            application_args=["--ds", ds, "--set", "spark.engine=jvm", *EXTRA_ARGS.split()],
            conn_id=os.environ.get("LORE_SPARK_CONN_ID", "spark_default"),
            execution_timeout=timeout,
            **kwargs,
        )
    from airflow.providers.standard.operators.bash import BashOperator

    return BashOperator(
        task_id=task_id,
        bash_command=f"{LORE} {command}{f' --ds {ds}' if ds else ''} {EXTRA_ARGS}".rstrip(),
        skip_on_exit_code=SKIP_EXIT_CODE,
        execution_timeout=timeout,
        **kwargs,
    )
