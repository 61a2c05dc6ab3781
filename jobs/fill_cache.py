"""Fill the Redis head cache from ``gold.relevance_judgments`` and switch readers to it.

Writes a new cache version (DESIGN.md §4 key layout, pipelined batches) holding the day's
``ok`` judgments per query and the tier map (head and mid queries of ``silver.query_tiers``),
then switches ``lore:active`` in one step; the previous version expires after
``old_version_ttl_s``. The version id is ``<ds>-<content digest>``: re-running the same day
with the same judgments is a no-op, and a run that died half-way is resumed by the next.

    python -m jobs.fill_cache --ds 2026-01-31 [--force]
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time

from pydantic import Field

from lore_ml.config import JobConfig

log = logging.getLogger("lore.fill_cache")


class FillCacheConfig(JobConfig):
    """Write the day's judgments and tier map into a new Redis cache version."""

    batch_queries: int = Field(200, ge=1, description="Queries per pipelined batch (one round trip each).")
    pending_ttl_s: int = Field(86_400, ge=60, description="TTL of a version's keys until it is switched on.")
    old_version_ttl_s: int = Field(6 * 3600, ge=1, description="TTL given to the replaced version's keys.")
    force: bool = Field(False, description="Switch even if the active version holds a newer day.")

    @classmethod
    def add_arguments(cls, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--force", action="store_true", default=None)


def build_batches(judgments, batch_queries: int) -> list[dict[str, dict[str, str]]]:
    """``[{query_hash: {item_id: packed}}]`` in query-hash order, ``batch_queries`` queries each.

    >>> rows = [("q2", "i1", "L4", [0, 0, 0, 1], "m"), ("q1", "i2", "L1", [1, 0, 0, 0], "m")]
    >>> build_batches(rows, 1)[0]
    {'q1': {'i2': '["L1",[1.0,0.0,0.0,0.0],"m",0.0]'}}
    """
    from lore_ml.online_store import pack

    per_query: dict[str, dict[str, str]] = {}
    for query_hash, item_id, label, p, model_version in judgments:
        per_query.setdefault(query_hash, {})[item_id] = pack(label, p, model_version)
    ordered = sorted(per_query)
    return [{q: per_query[q] for q in ordered[i : i + batch_queries]} for i in range(0, len(ordered), batch_queries)]


def cache_version(ds: str, batches, tiers: dict[str, str]) -> str:
    """``<yyyymmdd>-<digest of the content>``: same content, same version.

    >>> cache_version("2026-01-31", [], {})
    '20260131-da39a3ee'
    """
    digest = hashlib.sha1()
    for batch in batches:
        for query_hash, items in batch.items():
            digest.update(query_hash.encode())
            for item_id in sorted(items):
                digest.update(f"{item_id}={items[item_id]}".encode())
    for query_hash in sorted(tiers):
        digest.update(f"{query_hash}:{tiers[query_hash]}".encode())
    return f"{ds.replace('-', '')}-{digest.hexdigest()[:8]}"


def run(cfg: FillCacheConfig, client=None):
    """Fill and switch; returns :class:`lore_ml.online_store.FillResult`."""
    from pyspark.sql import functions as F
    from tqdm import tqdm

    from lore_ml.lakehouse import open_lakehouse
    from lore_ml.online_store import CacheWriter, Keys, connect

    lakehouse = open_lakehouse(cfg)
    judgments = (
        lakehouse.read_partition("gold.relevance_judgments", cfg.ds_str)
        .where(F.col("status") == "ok")
        .select("query_hash", "item_id", "label", "p", "model_version")
        .collect()
    )
    if not judgments:
        raise ValueError(f"no ok judgments in gold.relevance_judgments for ds={cfg.ds_str}: run jobs.judge_head first")
    tiers = {
        row["query_hash"]: row["tier"]
        for row in lakehouse.read_partition("silver.query_tiers", cfg.ds_str)
        .where(F.col("tier").isin("head", "mid"))
        .select("query_hash", "tier")
        .collect()
    }
    batches = build_batches(judgments, cfg.batch_queries)
    version = cache_version(cfg.ds_str, batches, tiers)
    models = sorted({row["model_version"] for row in judgments})
    writer = CacheWriter(client or connect(cfg.redis), Keys(cfg.redis.key_prefix), cfg.pending_ttl_s,
                         cfg.old_version_ttl_s)
    with tqdm(total=len(batches), desc="fill_cache", unit="batch", disable=None, file=sys.stderr) as bar:
        return writer.fill(version, cfg.ds_str, batches, tiers, {"model_versions": ",".join(models)},
                           force=cfg.force, on_batch=lambda done, total: bar.update(1))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = FillCacheConfig.from_cli(argv, prog="python -m jobs.fill_cache")
    started = time.perf_counter()
    result = run(cfg)
    seconds = time.perf_counter() - started
    if not result.switched:
        print(f"cache version {result.version} is already active for ds={cfg.ds_str}: nothing written")
        return 0
    print(f"cache version {result.version} active (was {result.previous_version or 'none'}) in {seconds:.1f}s")
    print(f"{'queries':<14}{result.queries:>12,}\n{'judgments':<14}{result.judgments:>12,}\n"
          f"{'tier entries':<14}{result.tier_entries:>12,}\n{'bytes':<14}{result.bytes_written:>12,}\n"
          f"{'resumed after':<14}{result.batches_resumed:>12,} batches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
