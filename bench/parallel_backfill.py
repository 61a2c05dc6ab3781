"""A backfill run as many processes at once leaves the same tables as one run after another.

    .venv/bin/python bench/parallel_backfill.py --rows 100000 --days 7

Generates a marketplace of --days days under --workdir, then backfills it twice, each time into a
new lakehouse: once serially (each step's run of each day after the last), once with each step's
runs of all days started at once (the first day's ingest, whose drop holds the catalog the other
days read, goes first). Prints, per way, the runs, the runs that failed, the commits retried after
losing a race with another writer (``lakehouse.commit_attempts``) and the wall time, then whether
each table the steps wrote is the same both ways. Exit status 1 when a run failed or a table differs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from machine import speed_line

from lore_ml.lakehouse import COMMIT_RETRY_WARNING

# The Spark job steps of a nightly run, in order; the tables each writes come from lakehouse.WRITTEN_BY.
STEPS = ("ingest", "rollup-logs", "stratify", "build-kg", "mine-pairs")


def run_step(step: str, ds: str, raw_root: Path, lake: Path, logs: Path) -> tuple[int, int]:
    """One ``lore <step> --ds <ds>`` process: its exit status and the commits it retried."""
    log = logs / f"{step}.{ds}.{time.monotonic_ns()}.log"
    with log.open("w") as out:
        status = subprocess.run(
            [sys.executable, "-m", "lore_ml.cli", step, "--ds", ds, "--set", f"data.raw_root={raw_root}",
             "--set", f"lakehouse.root={lake}"], stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    return status, log.read_text().count(COMMIT_RETRY_WARNING)


def backfill(way: str, days: list[str], steps: list[str], raw_root: Path, workdir: Path) -> dict:
    """Run ``steps`` for ``days`` into ``<workdir>/<way>/lake``; runs, failures, retries, seconds."""
    lake, logs = workdir / way / "lake", workdir / way / "logs"
    shutil.rmtree(workdir / way, ignore_errors=True)
    logs.mkdir(parents=True)
    started, results = time.perf_counter(), []
    for step in steps:
        if way == "serial":
            results += [run_step(step, ds, raw_root, lake, logs) for ds in days]
            continue
        if step == "ingest":
            results.append(run_step(step, days[0], raw_root, lake, logs))
        with ThreadPoolExecutor(len(days)) as pool:
            results += pool.map(lambda ds: run_step(step, ds, raw_root, lake, logs), days)
    return {"way": way, "lake": lake, "runs": len(results), "failed": sum(status != 0 for status, _ in results),
            "retries": sum(retries for _, retries in results), "seconds": time.perf_counter() - started}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="search log rows over all days")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--ds", default="2026-01-07", help="the last day")
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS),
                        help="in the order given (each reads what the ones before it wrote)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/lore-parallel-backfill"))
    args = parser.parse_args()

    from lore_ml.config import LakehouseConfig, SparkConfig
    from lore_ml.lakehouse import WRITTEN_BY, Lakehouse, content_hash
    from lore_ml.spark import get_spark

    raw_root = args.workdir / "raw"
    shutil.rmtree(raw_root, ignore_errors=True)
    generated = subprocess.run([sys.executable, "-m", "lore_ml.cli", "generate", "--ds", args.ds, "--rows",
                                str(args.rows), "--days", str(args.days), "--set", f"data.raw_root={raw_root}"],
                               capture_output=True, text=True, check=False)
    if generated.returncode:
        sys.exit(f"generating the marketplace failed:\n{generated.stderr[-2000:]}")
    last = dt.date.fromisoformat(args.ds)
    days = [str(last - dt.timedelta(days=back)) for back in range(args.days - 1, -1, -1)]

    print(f"backfill of {args.days} days ({args.rows:,} search rows), steps {' then '.join(args.steps)}; {speed_line()}")
    ways = [backfill(way, days, args.steps, raw_root, args.workdir) for way in ("serial", "parallel")]
    print(f"{'way':<10}{'runs':>6}{'failed':>8}{'retried commits':>17}{'seconds':>9}")
    for way in ways:
        print(f"{way['way']:<10}{way['runs']:>6}{way['failed']:>8}{way['retries']:>17}{way['seconds']:>9.1f}")

    spark = get_spark(SparkConfig())
    serial, parallel = (Lakehouse(spark, LakehouseConfig(root=str(way["lake"]))) for way in ways)
    print(f"\n{'table':<32}{'rows (serial)':>15}{'rows (parallel)':>17}  same")
    differ = 0
    for table in [table for step in args.steps for table, command in WRITTEN_BY.items() if command == f"lore {step}"]:
        in_serial, in_parallel = serial.exists(table), parallel.exists(table)  # each a read of the Delta log
        if not (in_serial or in_parallel):
            print(f"{table:<32}{'not written either way':>32}")
            continue
        if not (in_serial and in_parallel):
            print(f"{table:<32}{'not written ' + ('in parallel' if in_serial else 'serially'):>32}  no")
            differ += 1
            continue
        a, b = serial.read(table), parallel.read(table)
        same = content_hash(a) == content_hash(b)
        differ += not same
        print(f"{table:<32}{a.count():>15,}{b.count():>17,}  {'yes' if same else 'NO'}")
    return 1 if differ or any(way["failed"] for way in ways) else 0


if __name__ == "__main__":
    sys.exit(main())
