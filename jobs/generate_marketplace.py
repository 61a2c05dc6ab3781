"""Generate the synthetic marketplace as raw drops, the way upstream systems would land them.

Writes under ``data.raw_root`` (default ``data/raw``):

* ``catalog/ds=<first day>/catalog.jsonl`` — the catalog snapshot (JSON lines),
* ``images/<leaf>_<colour>.png`` — small product images whose colour matches the attribute,
* ``search_log/ds=<day>/part-*.parquet`` — impressions with click/cart/purchase, ``days`` days
  ending at ``--ds``,
* ``human_labels/ds=<ds>/labels.csv`` — a rated sample with true L1-L4 and deciding dimension,
* ``truth/pairs.parquet`` and ``truth/queries.jsonl`` — the generator's truth, for evaluating
  weak labels (never read by the pipeline itself),
* ``_manifest.json`` — the spec and row counts; a re-run with the same spec reuses the drop.

A small share of rows is deliberately bad (``bad_row_rate``) so ingest's quarantine is
exercised. Deterministic: the same spec and seed give byte-identical data.

    python -m jobs.generate_marketplace --ds 2026-01-31 --rows 1000000
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from pydantic import Field

from lore_ml.config import JobConfig

log = logging.getLogger("lore.generate_marketplace")

CHUNK_REQUESTS = 100_000


class GenerateConfig(JobConfig):
    """Generate a synthetic marketplace drop (catalog, images, search logs, human labels)."""

    rows: int = Field(100_000, ge=100, description="Search-log impression rows to generate.")
    days: int = Field(7, ge=1, le=60, description="Days of logs, ending at ds.")
    seed: int = Field(7, description="Random seed; same seed and spec give identical data.")
    label_pairs: int | None = Field(None, ge=1, description="Human-label sample size (default scales with rows).")
    bad_row_rate: float = Field(0.0005, ge=0.0, le=0.5, description="Share of deliberately bad raw rows.")
    force: bool = Field(False, description="Regenerate even when a drop with the same spec exists.")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--rows", type=int, help="Impression rows (1k .. 10M+).")
        parser.add_argument("--days", type=int)
        parser.add_argument("--seed", type=int)
        parser.add_argument("--out", dest="data.raw_root", help="Raw landing folder.")
        parser.add_argument("--force", action="store_true", default=None)


def generate(cfg: GenerateConfig) -> dict:
    """Write the whole drop and return the manifest."""
    from lore_ml.marketplace import Marketplace, MarketplaceSpec
    from lore_ml.storage import local_folder

    root = local_folder(cfg.data.raw_root, "jobs.generate_marketplace")
    spec = MarketplaceSpec(
        rows=cfg.rows, days=cfg.days, seed=cfg.seed, label_pairs=cfg.label_pairs, bad_row_rate=cfg.bad_row_rate
    )
    wanted = {"ds": cfg.ds_str, **spec.__dict__}
    manifest_path = root / "_manifest.json"
    if manifest_path.exists() and not cfg.force:
        existing = json.loads(manifest_path.read_text())
        if existing.get("spec") == wanted:
            log.info("reusing the existing drop at %s (same spec; --force regenerates)", root)
            return existing
    for sub in ("catalog", "images", "search_log", "human_labels", "truth"):
        shutil.rmtree(root / sub, ignore_errors=True)
    manifest_path.unlink(missing_ok=True)

    started = time.perf_counter()
    market = Marketplace(spec)
    days = [cfg.ds - dt.timedelta(days=cfg.days - 1 - i) for i in range(cfg.days)]
    with _step("catalog"):
        catalog_rows = _write_catalog(market, root / "catalog" / f"ds={days[0].isoformat()}" / "catalog.jsonl")
        images = _write_images(market, root)
    with _step(f"queries and candidate pools ({spec.n_queries:,} queries)"):
        pools = market.pools
    with _step("truth"):
        _write_truth(market, root / "truth")
    log_rows = _write_search_logs(market, root / "search_log", days)
    with _step("human labels"):
        label_rows = _write_labels(market, root / "human_labels" / f"ds={cfg.ds_str}" / "labels.csv")
    manifest = {
        "spec": wanted,
        "counts": {
            "items": len(market.items),
            "queries": len(market.queries),
            "pool_pairs": int(pools[0].size),
            "images": images,
            "catalog_lines": catalog_rows,
            "search_log_rows": log_rows,
            "human_label_rows": label_rows,
        },
        "days": [d.isoformat() for d in days],
        "seconds": round(time.perf_counter() - started, 1),
    }
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return manifest


class _step:
    """Log how long one generation step took."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.started = time.perf_counter()
        log.info("%s ...", self.name)

    def __exit__(self, *exc):
        log.info("%s done in %.1fs", self.name, time.perf_counter() - self.started)


def _bad_count(market, n: int) -> int:
    return int(round(n * market.spec.bad_row_rate)) if market.spec.bad_row_rate > 0 else 0


def _write_catalog(market, path: Path) -> int:
    """JSON lines; a few bad lines: no item_id, price not a number, invalid UTF-8, duplicate id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    world, items = market.world, market.items
    n_bad = max(4, _bad_count(market, len(items))) if market.spec.bad_row_rate > 0 else 0
    chosen = np.random.default_rng(market.spec.seed + 1).choice(len(items), size=n_bad, replace=False)
    bad_kind = {int(index): kind % 4 for kind, index in enumerate(sorted(chosen.tolist()))}
    lines = 0
    with path.open("wb") as out:
        for index, item in enumerate(items):
            record = item.catalog_record(world)
            out.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
            lines += 1
            if index in bad_kind:
                kind = bad_kind[index]
                broken = dict(record)
                if kind == 0:
                    broken.pop("item_id")
                    line = json.dumps(broken).encode()
                elif kind == 1:
                    broken["item_id"] = f"{item.item_id}-b"
                    broken["price"] = "n/a"
                    line = json.dumps(broken).encode()
                elif kind == 2:
                    broken["item_id"] = f"{item.item_id}-u"
                    line = json.dumps(broken).encode().replace(b'"title": "', b'"title": "\xff\xfe', 1)
                else:
                    line = json.dumps(broken).encode()  # same item_id twice
                out.write(line + b"\n")
                lines += 1
    return lines


def _write_images(market, root: Path) -> int:
    from PIL import Image, ImageDraw

    folder = root / "images"
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for path in sorted({item.image_path for item in market.items}):
        color_name = Path(path).stem.rsplit("_", 1)[1]
        rgb = market.world.colors.get(color_name, (128, 128, 128))
        image = Image.new("RGB", (32, 32), rgb)
        shade = tuple(max(0, c - 60) for c in rgb)
        ImageDraw.Draw(image).ellipse((8, 8, 24, 24), fill=shade)
        image.save(root / path, format="PNG")
        written += 1
    return written


def _write_truth(market, folder: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    pool_items, pool_labels, pool_dims = market.pools
    texts = pa.array([q.text for q in market.queries])
    item_ids = pa.array([item.item_id for item in market.items])
    q_index = np.repeat(np.arange(len(market.queries)), pool_items.shape[1])
    table = pa.table(
        {
            "query": texts.take(pa.array(q_index)),
            "item_id": item_ids.take(pa.array(pool_items.ravel())),
            "label": pa.array([f"L{code + 1}" for code in pool_labels.ravel().tolist()]),
            "dimension": pa.array([d for row in pool_dims for d in row], pa.string()),
        }
    )
    pq.write_table(table, folder / "pairs.parquet")
    weights = market.query_weights()
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as out:
        for query, weight in zip(market.queries, weights.tolist()):
            out.write(json.dumps({**query.record(), "traffic_weight": weight}, ensure_ascii=False) + "\n")


def _write_search_logs(market, folder: Path, days: list[dt.date]) -> int:
    """Parquet per day and chunk; bad rows: null request_id/query, negative position, unknown item."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from tqdm import tqdm

    spec = market.spec
    rng = np.random.default_rng(spec.seed + 2)
    texts = pa.array([q.text for q in market.queries])
    item_ids = pa.array([item.item_id for item in market.items])
    n_requests, n_days = spec.requests, len(days)
    written = 0
    with tqdm(total=n_requests * spec.impressions_per_request, unit="row", desc="search_log", unit_scale=True,
              disable=None, file=sys.stderr) as bar:
        for start in range(0, n_requests, CHUNK_REQUESTS):
            request_ids = np.arange(start, min(n_requests, start + CHUNK_REQUESTS))
            imp = market.impressions(request_ids, rng)
            n = len(imp["request"])
            day_index = imp["request"] * n_days // n_requests
            seconds = rng.integers(0, 86_400, size=n_requests)[imp["request"] % n_requests]
            epoch = np.array([np.datetime64(d.isoformat(), "s") for d in days])[day_index] + seconds.astype("timedelta64[s]")
            users = rng.integers(0, spec.n_users, size=n_requests)[imp["request"]]
            request = pa.array(np.char.add("r", imp["request"].astype(str)))
            query = texts.take(pa.array(imp["query"]))
            item = item_ids.take(pa.array(imp["item"]))
            position = imp["position"].copy()
            n_bad = _bad_count(market, n)
            if n_bad:
                bad = rng.choice(n, size=n_bad, replace=False)
                kinds = np.arange(n_bad) % 4
                position[bad[kinds == 0]] = -1
                null_request = np.zeros(n, dtype=bool)
                null_request[bad[kinds == 1]] = True
                request = pc.if_else(pa.array(null_request), pa.scalar(None, pa.string()), request)
                null_query = np.zeros(n, dtype=bool)
                null_query[bad[kinds == 2]] = True
                query = pc.if_else(pa.array(null_query), pa.scalar(None, pa.string()), query)
                ghost = np.zeros(n, dtype=bool)
                ghost[bad[kinds == 3]] = True
                item = pc.if_else(pa.array(ghost), pa.scalar("ghost-item"), item)
            table = pa.table(
                {
                    "request_id": request,
                    "event_ts": pa.array(epoch.astype("datetime64[us]"), pa.timestamp("us", tz="UTC")),
                    "user_id": pa.array(np.char.add("u", users.astype(str))),
                    "query": query,
                    "item_id": item,
                    "position": pa.array(position, pa.int32()),
                    "clicked": pa.array(imp["clicked"]),
                    "carted": pa.array(imp["carted"]),
                    "purchased": pa.array(imp["purchased"]),
                }
            )
            for d in np.unique(day_index).tolist():
                part = table.filter(pa.array(day_index == d))
                out = folder / f"ds={days[d].isoformat()}" / f"part-{start // CHUNK_REQUESTS:05d}.parquet"
                out.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(part, out)
            written += n
            bar.update(n)
    return written


def _write_labels(market, path: Path) -> int:
    """CSV with a header; bad rows: label outside L1-L4, empty query, unknown item."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {"query": q.text, "item_id": item.item_id, "label": label, "dimension": dim or ""}
        for q, item, label, dim in market.label_sample()
    ]
    n_bad = max(3, _bad_count(market, len(rows))) if market.spec.bad_row_rate > 0 else 0
    for i in range(n_bad):
        row = dict(rows[(i * 7919) % len(rows)])
        kind = i % 3
        if kind == 0:
            row["label"] = "L5"
        elif kind == 1:
            row["query"] = ""
        else:
            row["item_id"] = "ghost-item"
        rows.append(row)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=["query", "item_id", "label", "dimension"])
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = GenerateConfig.from_cli(argv, prog="python -m jobs.generate_marketplace")
    manifest = generate(cfg)
    print(f"marketplace drop at {cfg.data.raw_root} ({manifest['seconds']}s)")
    for name, count in manifest["counts"].items():
        print(f"  {name:<18} {count:>12,}")
    return 0


if __name__ == "__main__":
    from lore_ml.cli import run_entry_point

    sys.exit(run_entry_point(main))
