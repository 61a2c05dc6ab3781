"""Time each nightly Spark job at several scales on the embedded engine, against a baseline.

    .venv/bin/python bench/spark_jobs.py                  # 1M and 10M log rows
    .venv/bin/python bench/spark_jobs.py --rows 1000000

For each scale: generate the marketplace, ingest every day (not timed here: see
bench/ingest_throughput.py), then time rollup_logs, stratify, build_kg and mine_pairs against a
bare scan + ``groupBy(query).count()`` of the same log table (the whole window). Each job runs
``--repeat`` times (default 5), each run right after its own baseline run: the jobs are
idempotent, so a re-run redoes the same work, and this VM's speed drifts within minutes, so a
ratio is only meaningful between runs made side by side. Prints the median wall time, log rows/s,
the median of the paired ratios to the baseline with their range, and the growth of the median
time from the first scale to the last. ``rollup_logs`` is shown for the last day alone (what the
nightly run does: one day's logs) and for every day of the window in turn (a backfill); log
rows/s count the rows each timing read.

Two columns say what the ratios are made of. ``cpu s`` is the CPU time this process spent per
run (the Sail engine runs in it), and ``busy`` that time over wall time × cores: a job near
100% is bound by the work it does, not by waiting, so running its steps side by side cannot
make it much faster. The ``floor`` row is a one-row Delta partition write and its read-back,
the least any job that writes a table costs (its rows/s is left blank): at small scales it alone
is a visible share of 3× the baseline.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from machine import speed_line

DS = "2026-01-31"


@dataclass
class Timing:
    """Paired runs of one job: its seconds and CPU seconds and, per run, the baseline's seconds just
    before it."""

    seconds: list[float]
    baseline: list[float]
    cpu: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    @property
    def ratios(self) -> list[float]:
        return [job / base for job, base in zip(self.seconds, self.baseline)]


def cpu_seconds() -> float:
    """User + system CPU time of this process so far, engine threads included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def paired(job, baseline, repeat: int) -> Timing:
    """``repeat`` runs of ``job``, each right after a run of ``baseline`` (every job is idempotent,
    so a re-run redoes the same work)."""
    timing = Timing([], [], [])
    for _ in range(repeat):
        started = time.perf_counter()
        baseline()
        timing.baseline.append(time.perf_counter() - started)
        started, cpu_started = time.perf_counter(), cpu_seconds()
        job()
        timing.seconds.append(time.perf_counter() - started)
        timing.cpu.append(cpu_seconds() - cpu_started)
    return timing


def run_scale(rows: int, workdir: Path, repeat: int) -> dict:
    from jobs import build_kg, mine_pairs, rollup_logs, stratify
    from jobs.generate_marketplace import GenerateConfig, generate
    from jobs.ingest import IngestConfig
    from jobs.ingest import run as ingest
    from lore_ml.config import LakehouseConfig, SparkConfig
    from lore_ml.lakehouse import Lakehouse
    from lore_ml.spark import get_spark

    raw, lake = workdir / f"raw-{rows}", workdir / f"lake-{rows}"
    shutil.rmtree(lake, ignore_errors=True)
    paths = {"data": {"raw_root": str(raw)}, "lakehouse": {"root": str(lake)}}
    manifest = generate(GenerateConfig.load(overrides={"ds": DS, "rows": rows, **paths}))
    for ds in manifest["days"]:
        ingest(IngestConfig.load(overrides={"ds": ds, "sources": ["catalog", "search_log"], **paths}))
    lakehouse = Lakehouse(get_spark(SparkConfig()), LakehouseConfig(root=str(lake)))
    log_rows = lakehouse.read("bronze.search_log").count()
    day_rows = lakehouse.read_partition("bronze.search_log", DS).count()

    def baseline():
        lakehouse.read("bronze.search_log").groupBy("query").count().collect()

    # The jobs' own write path (schema check, replaceWhere of one day) into a lake of its own.
    floor_lake = Lakehouse(lakehouse.spark, LakehouseConfig(root=str(workdir / f"floor-{rows}")))
    one_row = lakehouse.spark.createDataFrame([(1, 1.0, 1.0, 1)], "position int, numerator double, "
                                              "denominator double, pairs long")

    def floor():
        floor_lake.write_partition(one_row, "silver.daily_position_ratios", DS)
        floor_lake.read_partition("silver.daily_position_ratios", DS).count()

    def rollup(days):
        for ds in days:
            rollup_logs.run(rollup_logs.RollupLogsConfig.load(overrides={**paths, "ds": ds}))

    job = {"ds": DS, **paths}
    jobs = {
        "floor": floor,
        "rollup_logs (1 day)": lambda: rollup([DS]),
        "rollup_logs (all days)": lambda: rollup(manifest["days"]),
        "stratify": lambda: stratify.run(stratify.StratifyConfig.load(overrides=job)),
        "build_kg": lambda: build_kg.run(build_kg.BuildKgConfig.load(overrides=job)),
        "mine_pairs": lambda: mine_pairs.run(mine_pairs.MinePairsConfig.load(overrides=job)),
    }
    timings = {"baseline": paired(baseline, baseline, repeat)}
    timings.update({name: paired(fn, baseline, repeat) for name, fn in jobs.items()})
    shutil.rmtree(lake, ignore_errors=True)
    shutil.rmtree(workdir / f"floor-{rows}", ignore_errors=True)
    rows_read = {"rollup_logs (1 day)": day_rows, "floor": None}
    return {"timings": timings, "rows": {name: rows_read.get(name, log_rows) for name in timings}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=5, help="paired runs of each job and the baseline")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "lore-bench")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = {rows: run_scale(rows, args.workdir, args.repeat) for rows in args.rows}
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; engine: sail; "
          + speed_line())
    cores = os.cpu_count() or 1
    print(f"{'log rows':>12} {'job':<24}{'seconds':>9}{'rows/s':>12}{'x baseline':>12}{'range':>13}"
          f"{'cpu s':>8}{'busy':>7}")
    for rows, result in results.items():
        for name, timing in result["timings"].items():
            ratios = timing.ratios
            read = result["rows"][name]
            rate = f"{read / timing.median:,.0f}" if read else "-"
            print(f"{rows:>12,} {name:<24}{timing.median:>9.2f}{rate:>12}"
                  f"{statistics.median(ratios):>12.1f}{f'{min(ratios):.1f}-{max(ratios):.1f}':>13}"
                  f"{timing.cpu_median:>8.2f}{timing.cpu_median / (timing.median * cores):>7.0%}")
    print("seconds: median of the runs; x baseline: median of the ratios of each run to the baseline run just "
          f"before it (range: lowest-highest); cpu s: median CPU seconds of the runs; busy: cpu s / (seconds x "
          f"{cores} cores); floor: a one-row Delta partition write and its read-back")
    if len(results) > 1:
        first, last = min(results), max(results)
        print(f"\ntime growth from {first:,} to {last:,} rows ({last / first:.0f}x data), medians:")
        for name, timing in results[last]["timings"].items():
            print(f"  {name:<24}{timing.median / results[first]['timings'][name].median:>6.1f}x")


if __name__ == "__main__":
    main()
