"""Fill the Redis head cache from ``gold.relevance_judgments`` and switch readers to it.

Writes a new cache version (DESIGN.md §4 key layout, pipelined batches) holding the day's
``ok`` judgments per query and the tier map (head and mid queries of ``silver.query_tiers``),
then switches ``lore:active`` in one step; the previous version expires after
``old_version_ttl_s``, and the tail judgments written back into it in the last
``write_back_max_age_s`` are carried into the new one. The version id is
``<ds>-<content digest>``: re-running the same day with the same judgments is a no-op, and a
run that died half-way is resumed by the next. Spark packs the judgments, encodes them for
Redis and gathers them per query (:func:`transform_cache_entries`); the queries stream into a
local file (the system's temporary folder), which the Redis writer reads back in batches of
queries in query-hash order (:class:`SpilledBatches`): the process never holds the day's
judgments at once. A day older than the one the active version holds (a backfill) is refused
before anything is read, with exit status 99 (the DAG skips the task); ``--force`` switches
back to it.

    python -m jobs.fill_cache --ds 2026-01-31 [--force]
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from pydantic import Field
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lore_ml.cli import SKIPPED
from lore_ml.config import InputsNotReady, JobConfig
from lore_ml.labels import LABELS
from lore_ml.online_store import HashFields, StaleVersion

log = logging.getLogger("lore.fill_cache")


class FillCacheConfig(JobConfig):
    """Write the day's judgments and tier map into a new Redis cache version."""

    batch_queries: int = Field(200, ge=1, description="Queries per pipelined batch (one round trip each).")
    pending_ttl_s: int = Field(86_400, ge=60, description="TTL of a version's keys until it is switched on.")
    old_version_ttl_s: int = Field(6 * 3600, ge=1, description="TTL given to the replaced version's keys.")
    write_back_max_age_s: int = Field(7 * 86_400, ge=0, description=(
        "Tail judgments the write-back worker stored in the replaced version within this many seconds "
        "are carried into the new one (never over what the fill writes); 0 carries none, e.g. after "
        "promoting a new teacher."))
    force: bool = Field(False, description="Switch even if the active version holds a newer day.")

    @classmethod
    def add_arguments(cls, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--force", action="store_true", default=None)


def transform_cache_entries(judgments: DataFrame) -> DataFrame:
    """(query_hash, items, fields) per query of ``gold.relevance_judgments``, in no particular order:
    what the cache holds for the query, as the ``items`` field/value pairs of its ``HSET``
    (:class:`lore_ml.online_store.HashFields`), in item id order.

    Only ``ok`` judgments with an item, a label and four probabilities in [0, 1] are kept
    (:func:`packable`). The Python workers pack them (:func:`lore_ml.online_store.pack_many`)
    and encode them for Redis (:func:`lore_ml.online_store.encode_hash_fields`) batch by batch,
    and Spark gathers them per query, so the driver receives one row per query and forwards its
    bytes (turning each judgment into a ``Row`` cost 4 µs, packing it in the driver 9 µs more,
    encoding it 0.1–0.3 µs). An item judged twice for a query keeps the greater encoded entry.
    """
    encoded = judgments.where(packable()).select("query_hash", "item_id", "label", "p", "model_version").mapInArrow(
        _encode_arrow_batches, "query_hash string, item_id string, entry string")
    one_per_item = encoded.groupBy("query_hash", "item_id").agg(F.max("entry").alias("entry"))
    entries = F.array_sort(F.collect_list(F.struct("item_id", "entry")))
    return one_per_item.groupBy("query_hash").agg(entries.alias("entries")).select(
        "query_hash", F.size("entries").alias("items"), F.array_join("entries.entry", "").alias("fields")
    )


def packable() -> Column:
    """An ``ok`` judgment the cache can hold: an item, a label and p(L1..L4) of four values in
    [0, 1] (false, never null, for any other row, so that it can be counted)."""
    four_values = F.size(F.array_compact("p")) == len(LABELS)  # not F.forall: Sail cannot resolve its lambda
    in_range = (F.array_min("p") >= 0) & (F.array_max("p") <= 1)  # NaN is the greatest double
    named = F.col("item_id").isNotNull() & F.col("label").isNotNull()
    return F.coalesce((F.col("status") == "ok") & named & four_values & in_range, F.lit(False))


def _encode_arrow_batches(batches):
    """``mapInArrow``: (query_hash, item_id, label, p, model_version) → (query_hash, item_id,
    entry), the entry being the item and its packed judgment encoded for ``HSET``."""
    import pyarrow as pa

    from lore_ml.online_store import encode_hash_fields, pack_many

    for batch in batches:
        p = batch.column("p").flatten().to_numpy().reshape(-1, len(LABELS))
        packed = pack_many(batch.column("label").to_pylist(), p, batch.column("model_version").to_pylist())
        entries = encode_hash_fields(batch.column("item_id"), pa.array(packed, pa.string()))
        yield pa.RecordBatch.from_arrays([batch.column("query_hash"), batch.column("item_id"), entries],
                                         names=["query_hash", "item_id", "entry"])


def version_id(ds: str, digest, tiers: Mapping[str, str]) -> str:
    """``<yyyymmdd>-<digest>``, the digest of the batches (``digest``, see :class:`SpilledBatches`)
    and then of ``tiers``: same content, same version.

    >>> version_id("2026-01-31", hashlib.sha1(), {})
    '20260131-da39a3ee'
    """
    for query_hash in sorted(tiers):
        digest.update(f"{query_hash}:{tiers[query_hash]}".encode())
    return f"{ds.replace('-', '')}-{digest.hexdigest()[:8]}"


class SpilledBatches(Sequence):
    """The (query_hash, items, fields) rows of :func:`transform_cache_entries`, written to ``path``
    as they stream from Spark, in whatever order they come, and read back in batches of
    ``batch_queries`` queries in query_hash order by the writer's threads: the process holds an
    index of the queries and a batch or two, not the day's judgments (2M of them collected at
    once took 2.2 GB).

    The queries are sorted here, not by Spark: the batches must be the same on every run, so that
    a resumed fill skips the ones already written, and a global sort in Spark moved every encoded
    judgment through one more shuffle (a fill of 500k judgments took 1.8–2.1 s with it, 1.5–1.7 s
    without). The content digest that names the version (:func:`version_id`) covers each query's
    hash, item count and fields, in query_hash order, so it does not depend on the order the rows
    came in.
    """

    def __init__(self, path: Path, entries: Iterable[tuple], batch_queries: int):
        self.path, self.batch_queries = path, batch_queries
        keys, counts, lengths, digests = [], [], [], []
        with path.open("wb") as out:
            for query_hash, count, fields in entries:
                data = fields.encode()
                out.write(data)
                keys.append(query_hash)
                counts.append(count)
                lengths.append(len(data))
                digests.append(hashlib.sha1(data).digest())
            size = out.tell()
        order = sorted(range(len(keys)), key=keys.__getitem__)
        self.keys = [keys[i] for i in order]
        repeated = sum(a == b for a, b in zip(self.keys, self.keys[1:]))
        if repeated:
            raise ValueError(f"{repeated} queries streamed more than once to {path}")
        self.offsets = np.cumsum([0, *lengths[:-1]], dtype=np.int64)[order]
        self.lengths, self.counts = np.array(lengths, dtype=np.int64)[order], np.array(counts, dtype=np.int64)[order]
        self.digest = hashlib.sha1()
        for key, count, i in zip(self.keys, self.counts.tolist(), order):
            self.digest.update(f"{key}\0{count}\0".encode())
            self.digest.update(digests[i])
        # Mapped, not read through a file position: the writer's threads slice it at once (an
        # empty file cannot be mapped).
        self._spill = b""
        if size:
            with path.open("rb") as spilled:
                self._spill = mmap.mmap(spilled.fileno(), 0, access=mmap.ACCESS_READ)

    def version(self, ds: str, tiers: Mapping[str, str]) -> str:
        """:func:`version_id` of these batches and ``tiers``."""
        return version_id(ds, self.digest.copy(), tiers)

    def __len__(self) -> int:
        return -(-len(self.keys) // self.batch_queries)

    def __getitem__(self, index: int) -> dict[str, HashFields]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        index %= len(self)
        rows = slice(index * self.batch_queries, (index + 1) * self.batch_queries)
        spill = self._spill
        return {key: HashFields(count, spill[offset:offset + length].decode()) for key, count, length, offset
                in zip(self.keys[rows], self.counts[rows].tolist(), self.lengths[rows].tolist(),
                       self.offsets[rows].tolist())}

    def close(self) -> None:
        if isinstance(self._spill, mmap.mmap):
            self._spill.close()

    def __enter__(self) -> "SpilledBatches":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run(cfg: FillCacheConfig, client=None):
    """Fill and switch; returns :class:`lore_ml.online_store.FillResult`."""
    import redis
    from tqdm import tqdm

    from lore_ml.lakehouse import open_lakehouse
    from lore_ml.online_store import CacheWriter, Keys, connect, unavailable

    lakehouse = open_lakehouse(cfg)
    lakehouse.require_partition("gold.relevance_judgments", cfg.ds_str)
    client = client or connect(cfg.redis)
    try:  # before the read: a server that is down fails the run in seconds, not after streaming every judgment
        client.ping()
    except redis.RedisError as exc:
        raise unavailable(client, exc) from exc
    writer = CacheWriter(client, Keys(cfg.redis.key_prefix), cfg.pending_ttl_s,
                         cfg.old_version_ttl_s, write_back_max_age_s=cfg.write_back_max_age_s)
    writer.refuse_stale(cfg.ds_str, cfg.force)  # likewise: a backfilled day is refused before any read
    judgments = lakehouse.read_partition("gold.relevance_judgments", cfg.ds_str)
    fit = packable()
    ok, cacheable, models = judgments.agg(F.count(F.when(F.col("status") == "ok", 1)), F.count(F.when(fit, 1)),
                                          F.array_sort(F.collect_set(F.when(fit, F.col("model_version"))))).first()
    unfit = "no item or label, or p is not four probabilities in [0, 1]"
    if not cacheable:
        raise InputsNotReady(f"no ok judgments in gold.relevance_judgments for ds={cfg.ds_str}"
                             + (f" that the cache can hold ({ok} have {unfit})" if ok else "")
                             + f": run `lore judge-head --ds {cfg.ds_str}` first")
    if cacheable < ok:
        log.warning("%d of %d ok judgments skipped: %s", ok - cacheable, ok, unfit)
    tiers = {
        row["query_hash"]: row["tier"]
        for row in lakehouse.read_partition("silver.query_tiers", cfg.ds_str)
        .where(F.col("tier").isin("head", "mid"))
        .select("query_hash", "tier")
        .collect()
    }
    started = time.perf_counter()
    entries = tqdm(transform_cache_entries(judgments).toLocalIterator(prefetchPartitions=True),
                   desc="fill_cache: from Spark", unit="query", disable=None, file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="lore-fill-cache-") as scratch, \
            SpilledBatches(Path(scratch) / "entries.resp", entries, cfg.batch_queries) as batches:
        log.info("%d queries (%d batches) streamed to %s in %.1f s", len(batches.keys), len(batches), batches.path,
                 time.perf_counter() - started)
        with tqdm(total=len(batches), desc="fill_cache: to Redis", unit="batch", disable=None, file=sys.stderr) as bar:
            return writer.fill(batches.version(cfg.ds_str, tiers), cfg.ds_str, batches, tiers,
                               {"model_versions": ",".join(models)}, force=cfg.force,
                               on_batch=lambda done, total: bar.update(1))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = FillCacheConfig.from_cli(argv, prog="python -m jobs.fill_cache")
    started = time.perf_counter()
    try:
        result = run(cfg)
    except StaleVersion as exc:  # a backfilled day: the cache keeps serving the newer one
        print(f"skipped: {exc}", file=sys.stderr)
        return SKIPPED
    seconds = time.perf_counter() - started
    if not result.switched:
        print(f"cache version {result.version} is already active for ds={cfg.ds_str}: nothing written")
        return 0
    print(f"cache version {result.version} active (was {result.previous_version or 'none'}) in {seconds:.1f}s")
    print(f"{'queries':<14}{result.queries:>12,}\n{'judgments':<14}{result.judgments:>12,}\n"
          f"{'tier entries':<14}{result.tier_entries:>12,}\n{'write-backs':<14}{result.write_backs_carried:>12,} "
          f"tail queries carried over\n{'bytes':<14}{result.bytes_written:>12,}\n"
          f"{'resumed after':<14}{result.batches_resumed:>12,} batches")
    return 0


if __name__ == "__main__":
    from lore_ml.cli import run_entry_point

    sys.exit(run_entry_point(main))
