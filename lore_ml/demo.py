"""The main job on the embedded defaults: generate a marketplace and run the pipeline over it.

Today this covers generate → ingest every day of the window → query tiers → load the Home
Depot human labels when present, and prints where the tables are. Later stages are
added here as they land. A second run reuses the generated drop and rewrites the same days
with the same content.

    lore demo --ds 2026-01-31 --rows 200000
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time

from pydantic import Field

from jobs.generate_marketplace import GenerateConfig, generate
from jobs.ingest import IngestConfig, format_counts
from jobs.ingest import run as run_ingest
from jobs.stratify import StratifyConfig, format_summary
from jobs.stratify import run as run_stratify
from lore_ml.config import JobConfig


class DemoConfig(JobConfig):
    """Run the LORE pipeline end to end on a generated marketplace."""

    ds: dt.date = Field(dt.date(2026, 1, 31), description="Last day of the generated logs (a fixed demo date).")
    rows: int = Field(200_000, ge=1000, description="Search-log rows of the generated marketplace.")
    days: int = Field(7, ge=1, description="Days of logs, ending at ds.")
    home_depot: bool = Field(True, description="Also load the Home Depot human labels when the folder exists.")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--rows", type=int)
        parser.add_argument("--days", type=int)


def run(cfg: DemoConfig) -> None:
    shared = cfg.model_dump(include={"spark", "lakehouse", "data", "redis"})
    started = time.perf_counter()
    manifest = generate(GenerateConfig.load(overrides={**shared, "ds": cfg.ds, "rows": cfg.rows, "days": cfg.days}))
    print(f"[1/3] marketplace: {manifest['counts']['search_log_rows']:,} log rows, "
          f"{manifest['counts']['items']:,} items, {manifest['counts']['queries']:,} queries")
    results = []
    for ds in manifest["days"]:
        results += run_ingest(IngestConfig.load(overrides={**shared, "ds": ds}))
    print("[2/3] ingest")
    print(format_counts(results))
    print("[3/3] query tiers")
    print(format_summary(run_stratify(StratifyConfig.load(overrides={**shared, "ds": cfg.ds}))))
    if cfg.home_depot and (cfg.data.home_depot_dir / "train.csv.zip").is_file():
        from jobs.load_home_depot import main as load_home_depot

        load_home_depot(["--set", f"lakehouse.root={cfg.lakehouse.root}", "--raw-root", str(cfg.data.raw_root),
                         "--home-depot-dir", str(cfg.data.home_depot_dir)])
        print("Home Depot human labels loaded into bronze.human_labels (source=home_depot)")
    print(f"\ndone in {time.perf_counter() - started:.0f}s; Delta tables under {cfg.lakehouse.table_uri('bronze.x').rsplit('/', 2)[0]}")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    cfg = DemoConfig.from_cli(argv, prog="lore demo")
    run(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
