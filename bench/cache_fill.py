"""Head-cache fill throughput against `redis-benchmark -t set -P 64` on the same server.

    .venv/bin/python bench/cache_fill.py --queries 5000 --items 100

Writes --queries × --items packed judgments, encoded for HSET as the job's Spark workers encode
them and read back from a spilled file as the job reads them, through the same CacheWriter
`jobs.fill_cache` uses (pipelined batches, pending TTL, persist, atomic switch) under a
throw-away key prefix, then runs redis-benchmark's pipelined SET on the same server, and prints
judgments/s, SET/s and their ratio (target ≥ 0.5). It also times carrying --tail-queries ×
--items written-back tail judgments into the next version, the step a fill adds before its
switch, and the whole `jobs.fill_cache` run on the embedded engine (the judgments read from a
throw-away lakehouse, packed and encoded by Spark's Python workers, streamed to the driver,
written to Redis). The bench's keys and lakehouse are deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse


def redis_benchmark_sets_per_second(url: str, requests: int) -> float:
    parsed = urlparse(url)
    command = ["redis-benchmark", "-h", parsed.hostname or "127.0.0.1", "-p", str(parsed.port or 6379),
               "-t", "set", "-P", "64", "-n", str(requests), "-q"]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600).stdout
    match = re.search(r"SET: ([\d.]+) requests per second", out.replace("\r", "\n"))
    if not match:
        raise RuntimeError(f"unexpected redis-benchmark output: {out[-300:]!r}")
    return float(match.group(1))


def carry_write_backs(client, writer, tail_queries: int, items: int) -> float:
    """Leave ``tail_queries`` × ``items`` judgments in the active version as the write-back worker
    does, then time :meth:`CacheWriter.carry_write_backs` into a next version; seconds taken."""
    from lore_ml.online_store import pack

    judged = {f"item-{i}": pack("L4", [0.01, 0.02, 0.07, 0.9], "teacher-rl@0123456789") for i in range(items)}
    pipe = client.pipeline(transaction=False)
    for q in range(tail_queries):
        pipe.hset(writer.keys.query("bench", f"tail-{q:011x}"), mapping=judged)
        pipe.zadd(writer.keys.written_back("bench"), {f"tail-{q:011x}": time.time()})
    pipe.execute()
    started = time.perf_counter()
    carried = writer.carry_write_backs("bench", "bench-next")
    seconds = time.perf_counter() - started
    if len(carried) != tail_queries:
        raise RuntimeError(f"carried {len(carried)} of {tail_queries} written-back queries")
    return seconds


def fill_job(queries: int, items: int, key_prefix: str) -> tuple[float, int]:
    """Seconds :func:`jobs.fill_cache.run` takes, and the judgments it wrote, on a throw-away
    lakehouse of ``queries`` × ``items`` ok judgments whose queries are all head."""
    import tempfile

    import pyarrow as pa

    from jobs.fill_cache import FillCacheConfig, run
    from lore_ml.lakehouse import open_lakehouse

    root = tempfile.mkdtemp(prefix="lore-bench-fill-")
    try:
        cfg = FillCacheConfig.from_cli(["--ds", "2026-01-31", "--set", f"lakehouse.root={root}",
                                        "--set", f"redis.key_prefix={key_prefix}"])
        lakehouse = open_lakehouse(cfg)
        hashes = [f"{q:016x}" for q in range(queries)]
        n = queries * items

        def repeated(value, kind=pa.string()):
            return pa.repeat(pa.scalar(value, kind), n)

        lakehouse.write_arrow(pa.table({
            "query_norm": pa.array([f"query {q}" for q in range(queries) for _ in range(items)]),
            "query_hash": pa.array([h for h in hashes for _ in range(items)]),
            "item_id": pa.array([f"item-{i}" for _ in range(queries) for i in range(items)]),
            "label": repeated("L2:brand"), "p": repeated([0.05, 0.7, 0.15, 0.1], pa.list_(pa.float64())),
            "score": repeated(0.6, pa.float64()), "reasoning": pa.nulls(n, pa.string()), "status": repeated("ok"),
            "model_version": repeated("teacher-rl@0123456789"), "prompt_hash": repeated("bench"),
        }), "gold.relevance_judgments", cfg.ds_str)
        lakehouse.write_arrow(pa.table({
            "query_norm": [f"query {q}" for q in range(queries)], "query_hash": hashes,
            "searches": pa.array([100] * queries, pa.int64()), "traffic_share": [1 / queries] * queries,
            "cumulative_share": [(q + 1) / queries for q in range(queries)],
            "rank": pa.array(range(1, queries + 1), pa.int64()), "tier": ["head"] * queries,
        }), "silver.query_tiers", cfg.ds_str)
        started = time.perf_counter()
        result = run(cfg)
        return time.perf_counter() - started, result.judgments
    finally:
        shutil.rmtree(root, ignore_errors=True)


def delete_keys(client, prefix: str) -> None:
    pipe = client.pipeline(transaction=False)
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        pipe.delete(key)
    pipe.execute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--items", type=int, default=100, help="Judgments per query.")
    parser.add_argument("--batch-queries", type=int, default=200)
    parser.add_argument("--tail-queries", type=int, default=1000, help="Written-back tail queries carried over.")
    parser.add_argument("--set-requests", type=int, default=2_000_000, help="redis-benchmark -n.")
    args = parser.parse_args()
    if shutil.which("redis-benchmark") is None:
        raise SystemExit("redis-benchmark not found: it comes with Debian's redis-tools (make setup installs redis)")

    from jobs.fill_cache import SpilledBatches
    from lore_ml.config import RedisConfig
    from lore_ml.online_store import CacheWriter, Keys, connect, hash_fields, pack_many

    config = RedisConfig()
    client = connect(config)
    item_ids = [f"item-{i}" for i in range(args.items)]
    packed = pack_many(["L2:brand"] * args.items, [[0.05, 0.7, 0.15, 0.1]] * args.items,
                       ["teacher-rl@0123456789"] * args.items)
    # Encoded once, as the job's Spark workers hand every query's items to the writer, and spilled
    # to a file that the writer reads back in batches, as the job does.
    fields = hash_fields(dict(zip(item_ids, packed)))
    entries = ((f"{q:016x}", *fields) for q in range(args.queries))
    tiers = {f"{q:016x}": "head" for q in range(args.queries)}
    keys = Keys(f"bench-{uuid.uuid4().hex[:8]}")
    with tempfile.TemporaryDirectory(prefix="lore-bench-") as scratch, \
            SpilledBatches(Path(scratch) / "entries.resp", entries, args.batch_queries) as batches:
        try:
            os.sync()  # the spill's dirty pages reach the disk now, not while the writer is timed
            writer = CacheWriter(client, keys)
            started = time.perf_counter()
            result = writer.fill("bench", "2026-01-31", batches, tiers)
            fill_seconds = time.perf_counter() - started
            write_back_seconds = carry_write_backs(client, writer, args.tail_queries, args.items)
        finally:
            delete_keys(client, keys.prefix)
    job_keys = Keys(f"bench-{uuid.uuid4().hex[:8]}")
    try:
        job_seconds, job_judgments = fill_job(args.queries, args.items, job_keys.prefix)
    finally:
        delete_keys(client, job_keys.prefix)
    sets_per_second = redis_benchmark_sets_per_second(config.url, args.set_requests)
    judgments_per_second = result.judgments / fill_seconds
    print(f"cache fill vs redis-benchmark on {config.url} ({result.judgments:,} judgments, "
          f"{result.bytes_written / 1e6:.1f} MB)")
    print(f"{'what':<34}{'per second':>14}")
    print(f"{'CacheWriter judgments written':<34}{judgments_per_second:>14,.0f}")
    print(f"{'redis-benchmark SET -P 64':<34}{sets_per_second:>14,.0f}")
    print(f"{'ratio (target >= 0.5)':<34}{judgments_per_second / sets_per_second:>14.2f}")
    print(f"{'write-backs carried (judgments)':<34}{args.tail_queries * args.items / write_back_seconds:>14,.0f}")
    print(f"{'fill_cache job, end to end':<34}{job_judgments / job_seconds:>14,.0f}")


if __name__ == "__main__":
    main()
