"""Time generate + ingest of the synthetic marketplace at several scales and print rows/s.

    .venv/bin/python bench/ingest_throughput.py                 # 1M and 10M log rows
    .venv/bin/python bench/ingest_throughput.py --rows 1000000  # one scale

Each scale is generated into a fresh folder under --workdir and ingested day by day on the
embedded engine (Sail); input/bronze/quarantine counts are checked to balance.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def run_scale(rows: int, workdir: Path) -> dict:
    from jobs.generate_marketplace import GenerateConfig, generate
    from jobs.ingest import IngestConfig, run

    raw, lake = workdir / f"raw-{rows}", workdir / f"lake-{rows}"
    shutil.rmtree(raw, ignore_errors=True)
    shutil.rmtree(lake, ignore_errors=True)
    started = time.perf_counter()
    manifest = generate(GenerateConfig.load(overrides={"ds": "2026-01-31", "rows": rows, "data": {"raw_root": str(raw)}}))
    generate_s = time.perf_counter() - started
    started = time.perf_counter()
    input_rows = quarantined = 0
    for ds in manifest["days"]:
        cfg = IngestConfig.load(overrides={"ds": ds, "lakehouse": {"root": str(lake)}, "data": {"raw_root": str(raw)}})
        for counts in run(cfg):
            assert counts.balanced, counts
            if counts.source == "search_log":
                input_rows += counts.input_rows
                quarantined += counts.quarantined_rows
    ingest_s = time.perf_counter() - started
    shutil.rmtree(raw, ignore_errors=True)
    shutil.rmtree(lake, ignore_errors=True)
    return {"rows": rows, "generate_s": generate_s, "ingest_s": ingest_s, "log_rows_in": input_rows,
            "quarantined": quarantined}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "lore-bench")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = [run_scale(rows, args.workdir) for rows in args.rows]
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}; engine: sail")
    header = f"{'log rows':>12} {'generate s':>11} {'gen rows/s':>11} {'ingest s':>9} {'ingest rows/s':>14} {'quarantined':>12}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['rows']:>12,} {r['generate_s']:>11.1f} {r['rows'] / r['generate_s']:>11,.0f} "
              f"{r['ingest_s']:>9.1f} {r['log_rows_in'] / r['ingest_s']:>14,.0f} {r['quarantined']:>12,}")


if __name__ == "__main__":
    main()
