"""The main job on the embedded defaults: generate a marketplace and run the pipeline over it.

Today this covers generate → ingest every day of the window → query tiers → knowledge graph
→ Home Depot human labels (when the folder exists) → training pairs → SFT examples, and prints where the tables are. Later stages are
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
from pathlib import Path

from pydantic import Field

from jobs.generate_marketplace import GenerateConfig, generate
from jobs.ingest import IngestConfig, format_counts
from jobs.ingest import run as run_ingest
from jobs import build_kg, load_home_depot, mine_pairs, synth_cot
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
    print(f"[1/6] marketplace: {manifest['counts']['search_log_rows']:,} log rows, "
          f"{manifest['counts']['items']:,} items, {manifest['counts']['queries']:,} queries")
    results = []
    for ds in manifest["days"]:
        results += run_ingest(IngestConfig.load(overrides={**shared, "ds": ds}))
    print("[2/6] ingest")
    print(format_counts(results))
    print("[3/6] query tiers")
    print(format_summary(run_stratify(StratifyConfig.load(overrides={**shared, "ds": cfg.ds}))))
    edges = build_kg.run(build_kg.BuildKgConfig.load(overrides={**shared, "ds": cfg.ds}))
    print("[4/6] knowledge graph: " + ", ".join(f"{n:,} {t}" for t, n in sorted(edges.items())))
    if cfg.home_depot and (cfg.data.home_depot_dir / "train.csv.zip").is_file():
        counts = load_home_depot.run(load_home_depot.HomeDepotConfig.load(overrides=shared))
        labels = sum(c.bronze_rows for c in counts if c.source == "human_labels")
        print(f"      Home Depot: {labels:,} human-rated pairs in bronze.human_labels (source=home_depot)")
    pairs = mine_pairs.run(mine_pairs.MinePairsConfig.load(overrides={**shared, "ds": cfg.ds}))
    per_source: dict[str, int] = {}
    for source, _, rows in pairs:
        per_source[source] = per_source.get(source, 0) + rows
    print("[5/6] training pairs: " + ", ".join(f"{n:,} {s}" for s, n in per_source.items()))
    examples = synth_cot.run(synth_cot.SynthCotConfig.load(overrides={**shared, "ds": cfg.ds}))
    print(f"[6/6] SFT examples: {sum(examples.values()):,} ({examples[('hard_case', 'L2')]:,} hard cases) "
          "in gold.sft_examples")
    print(f"\ndone in {time.perf_counter() - started:.0f}s; Delta tables under {Path(cfg.lakehouse.root).resolve()}")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    cfg = DemoConfig.from_cli(argv, prog="lore demo")
    run(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
