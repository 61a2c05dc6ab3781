"""Time each nightly Spark job at several scales on the embedded engine, against a baseline.

    .venv/bin/python bench/spark_jobs.py                  # 1M and 10M log rows
    .venv/bin/python bench/spark_jobs.py --rows 1000000

For each scale: generate the marketplace, ingest every day (not timed here: see
bench/ingest_throughput.py), then time rollup_logs for every day, stratify, build_kg and
mine_pairs, and in the same run a bare scan + ``groupBy(query).count()`` of the same log table
(the whole window). Every timing, the baseline's too, is the best of ``--repeat`` runs (default
3): the jobs are idempotent, so a re-run redoes the same work, and the ratio compares like with
like on this VM, whose speed drifts. Prints wall time, log rows/s and the ratio to the baseline,
and the growth from the first scale to the last. ``rollup_logs`` is shown for the last day alone
(what the nightly run does: one day's logs) and summed over every day of the window (a
backfill); log rows/s count the rows each timing read.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from machine import speed_line

DS = "2026-01-31"


def timed(fn, repeat: int) -> float:
    """The best of ``repeat`` runs of ``fn`` (every job is idempotent, so a re-run redoes the same work)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def run_scale(rows: int, workdir: Path, repeat: int) -> dict[str, float]:
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

    job = {"ds": DS, **paths}
    times = {"baseline": timed(baseline, repeat)}
    per_day = {ds: timed(lambda: rollup_logs.run(rollup_logs.RollupLogsConfig.load(overrides={**paths, "ds": ds})),
                         repeat)
               for ds in manifest["days"]}
    times["rollup_logs (1 day)"], times["rollup_logs (all days)"] = per_day[DS], sum(per_day.values())
    times["stratify"] = timed(lambda: stratify.run(stratify.StratifyConfig.load(overrides=job)), repeat)
    times["build_kg"] = timed(lambda: build_kg.run(build_kg.BuildKgConfig.load(overrides=job)), repeat)
    times["mine_pairs"] = timed(lambda: mine_pairs.run(mine_pairs.MinePairsConfig.load(overrides=job)), repeat)
    shutil.rmtree(lake, ignore_errors=True)
    return {"times": times, "rows": {job: day_rows if job == "rollup_logs (1 day)" else log_rows for job in times}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each timing; the best is reported")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "lore-bench")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = {rows: run_scale(rows, args.workdir, args.repeat) for rows in args.rows}
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; engine: sail; "
          + speed_line())
    print(f"{'log rows':>12} {'job':<24}{'seconds':>9}{'rows/s':>12}{'x baseline':>12}")
    for rows, result in results.items():
        times = result["times"]
        for job, seconds in times.items():
            print(f"{rows:>12,} {job:<24}{seconds:>9.2f}{result['rows'][job] / seconds:>12,.0f}"
                  f"{seconds / times['baseline']:>12.1f}")
    if len(results) > 1:
        first, last = min(results), max(results)
        print(f"\ntime growth from {first:,} to {last:,} rows ({last / first:.0f}x data):")
        for job, seconds in results[last]["times"].items():
            print(f"  {job:<24}{seconds / results[first]['times'][job]:>6.1f}x")


if __name__ == "__main__":
    main()
