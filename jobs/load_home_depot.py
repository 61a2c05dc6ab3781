"""Load the human-rated Home Depot pairs into the same bronze tables as any other drop.

Reads ``train.csv.zip`` (Latin-1) from ``data.home_depot_dir`` (default
``../shared/data/home_depot``; the data is never copied into the project), writes it as a raw
drop — a catalog from the product titles and human labels with the fixed L1-L4 mapping — and
runs ingest on that drop, so validation, quarantine and the fixed split by query are the
same as for every source. The drop gets its own ``ds`` (default 2016-01-18, the competition's
date) so it never shadows a newer catalog snapshot.

    python -m jobs.load_home_depot
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import zipfile
from pathlib import Path

import pandas as pd
from pydantic import Field

from jobs.ingest import IngestConfig, format_counts
from jobs.ingest import run as run_ingest
from lore_ml.config import InputsNotReady
from lore_ml.labels import rating_to_label

log = logging.getLogger("lore.load_home_depot")

SOURCE = "home_depot"


class HomeDepotConfig(IngestConfig):
    """Load ../shared/data/home_depot into bronze.catalog and bronze.human_labels."""

    ds: dt.date = Field(dt.date(2016, 1, 18), description="Partition the Home Depot drop is written to.")
    sources: list = Field(["catalog", "human_labels"], description="Fixed: the drop has no search logs.")
    label_source: str = SOURCE

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--ds", help="Partition for the drop (default 2016-01-18).")
        parser.add_argument("--home-depot-dir", dest="data.home_depot_dir")
        parser.add_argument("--raw-root", dest="data.raw_root")


class HomeDepotMissing(InputsNotReady, FileNotFoundError):
    pass


def read_home_depot(folder: Path) -> pd.DataFrame:
    """The rated pairs as a DataFrame (id, product_uid, product_title, search_term, relevance)."""
    path = Path(folder) / "train.csv.zip"
    if not path.is_file():
        raise HomeDepotMissing(
            f"{path} not found: set data.home_depot_dir (or LORE_DATA__HOME_DEPOT_DIR) to the folder "
            "holding the Home Depot train.csv.zip"
        )
    with zipfile.ZipFile(path) as archive, archive.open("train.csv") as handle:
        return pd.read_csv(handle, encoding="latin-1")


def to_raw_drop(rated: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(catalog rows, label rows) in the raw drop layout; labels use the fixed mapping."""
    rated = rated.assign(item_id="hd-" + rated["product_uid"].astype(str))
    catalog = (
        rated.drop_duplicates("item_id")[["item_id", "product_title"]]
        .rename(columns={"product_title": "title"})
        .reset_index(drop=True)
    )
    labels = pd.DataFrame(
        {
            "query": rated["search_term"],
            "item_id": rated["item_id"],
            "label": rated["relevance"].map(rating_to_label),
            "dimension": None,
            "rating": rated["relevance"],
            "source": SOURCE,
        }
    )
    return catalog, labels


def write_raw_drop(catalog: pd.DataFrame, labels: pd.DataFrame, raw_root: Path, ds: str) -> None:
    catalog_dir = raw_root / "catalog" / f"ds={ds}"
    labels_dir = raw_root / "human_labels" / f"ds={ds}"
    catalog_dir.mkdir(parents=True, exist_ok=True)
    labels_dir.mkdir(parents=True, exist_ok=True)
    catalog.to_json(catalog_dir / f"{SOURCE}.jsonl", orient="records", lines=True, force_ascii=False)
    labels.to_csv(labels_dir / f"{SOURCE}.csv", index=False)


def run(cfg: HomeDepotConfig):
    """Write the raw drop and ingest it; returns ingest's per-source counts."""
    from lore_ml.storage import local_folder

    raw_root = local_folder(cfg.data.raw_root, "jobs.load_home_depot")
    rated = read_home_depot(cfg.data.home_depot_dir)
    catalog, labels = to_raw_drop(rated)
    write_raw_drop(catalog, labels, raw_root, cfg.ds_str)
    log.info("home depot: %d rated pairs, %d products", len(labels), len(catalog))
    return run_ingest(cfg)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = HomeDepotConfig.from_cli(argv, prog="python -m jobs.load_home_depot")
    print(format_counts(run(cfg)))
    return 0


if __name__ == "__main__":
    from lore_ml.cli import run_entry_point

    sys.exit(run_entry_point(main))
