"""Load test of the shim under gunicorn on loopback: latency per tier, and Redis killed mid-run.

    .venv/bin/python bench/shim_load.py --rate 300 --seconds 20 [--student artifacts/students/current]

Everything is local and bounded: a private redis-server on a free port (so killing it harms
nothing), a cache version with --head-queries head queries × --items judged items and as many
mid queries, a stand-in teacher server (OpenAI-compatible, answering after a uniform
20–300 ms like a busy GPU vLLM server would), and `lore serve` with the default workers.
An open-loop client sends --rate requests/s of --items items each, mixed 60% head / 30% mid /
10% tail (about how DESIGN.md's tiers split traffic), then a second phase kills redis-server
a few seconds in. Prints req/s, p50/p99 per tier, how far tail requests overshoot their
deadline, and the count of 5xx responses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from lore_ml.demo import free_port, wait_for
from machine import speed_line
from online.config import ServeConfig

DEFAULT_MIX = "head=0.6,mid=0.3,tail=0.1"
DEADLINE_MS = 150


def serve_teacher_stub(port: int) -> None:
    """An OpenAI-compatible stand-in: /tokenize and /v1/completions with label logprobs, slow on purpose.

    Runs in its own process (``--teacher-stub PORT``) so that parsing the teacher requests does
    not slow the load generator down."""
    import orjson
    from flask import Flask, jsonify, request
    from werkzeug.serving import WSGIRequestHandler, make_server

    app = Flask("teacher-stub")

    @app.post("/tokenize")
    def tokenize():
        return jsonify({"tokens": [100 + int(request.json["prompt"][-1])]})

    @app.post("/v1/completions")
    def completions():
        prompts = orjson.loads(request.get_data())["prompt"]
        time.sleep(random.uniform(0.02, 0.3))
        top = {"1": -3.0, "2": -2.0, "3": -1.0, "4": -0.2}
        return app.response_class(orjson.dumps({"choices": [
            {"index": i, "text": "4", "logprobs": {"top_logprobs": [top]}} for i in range(len(prompts))]}),
            mimetype="application/json")

    class KeepAlive(WSGIRequestHandler):  # as vLLM's server does; a new connection per request costs both sides
        protocol_version = "HTTP/1.1"

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    make_server("127.0.0.1", port, app, threaded=True, request_handler=KeepAlive).serve_forever()


def workload(head_queries: int, items: int, student: Path | None) -> tuple[dict[str, list[str]], list[str]]:
    """(queries per tier, item ids). With a student artefact, head and mid queries and the items
    are its own (precomputed vectors, as in production, where the nightly job embeds head/mid
    queries and the catalog: with Redis down the student answers head queries too); tail queries
    are always new."""
    queries = {tier: [f"{tier} query {i} shoes" for i in range(head_queries)] for tier in ("head", "mid", "tail")}
    item_ids = [f"item-{i}" for i in range(items)]
    if student:
        known = json.loads((student / "queries.json").read_text())
        if len(known) < 2 * head_queries:
            raise SystemExit(f"{student} has {len(known)} query vectors, fewer than 2 x --head-queries")
        queries["head"], queries["mid"] = known[:head_queries], known[head_queries : 2 * head_queries]
        item_ids = json.loads((student / "item_ids.json").read_text())[:items]
    return queries, item_ids


def fill_cache(redis_url: str, queries: dict[str, list[str]], item_ids: list[str]) -> None:
    """Head queries with every item judged, mid queries in the tier map."""
    import redis

    from lore_ml.online_store import CacheWriter, pack
    from lore_ml.text import normalize_query, query_hash

    judged = {item_id: pack("L4", [0.01, 0.04, 0.15, 0.8], "teacher@bench") for item_id in item_ids}
    batches = [{query_hash(normalize_query(q)): judged for q in queries["head"]}]
    tiers = {query_hash(normalize_query(q)): tier for tier in ("head", "mid") for q in queries[tier]}
    CacheWriter(redis.Redis.from_url(redis_url)).fill("bench", "2026-01-31", batches, tiers)


def payloads(queries: dict[str, list[str]], item_ids: list[str]) -> dict[str, list[bytes]]:
    bodies = {}
    for tier, names in queries.items():
        bodies[tier] = [json.dumps({"query": q, "deadline_ms": DEADLINE_MS, "items": [
            {"item_id": item_id, "title": f"running shoes model {i}", "brand": "Stridex"}
            for i, item_id in enumerate(item_ids)]}).encode() for q in names]
    return bodies


def wait_until_idle(pid: int, quiet_share: float = 0.05, timeout_s: float = 180.0) -> None:
    """Wait until the process tree of ``pid`` uses under ``quiet_share`` of a core for a second.

    /readyz answers as soon as one worker has loaded the app; the others may go on loading
    (~10 CPU-seconds each, torch and the student) for half a minute on two cores, and a
    measurement started then times their boot, not the shim."""
    import psutil

    root = psutil.Process(pid)

    def cpu_seconds() -> float:
        total = 0.0
        for process in [root, *root.children(recursive=True)]:
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    deadline = time.monotonic() + timeout_s
    before = cpu_seconds()
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = cpu_seconds()
        if now - before < quiet_share:
            return
        before = now
    raise TimeoutError(f"lore serve still busy {timeout_s:.0f}s after it answered /readyz")


def parse_mix(text: str) -> list[tuple[str, float]]:
    """``head=0.6,mid=0.3,tail=0.1`` → [("head", 0.6), ...]"""
    return [(tier, float(share)) for tier, share in (part.split("=") for part in text.split(","))]


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection that sends a POST and reads one Content-Length response.

    The load generator shares the two cores with the shim: with aiohttp the client process
    spent ~1.6 ms of CPU a request (a third of what the shim spends on a head request), with
    this ~0.8 ms, most of it asyncio's own scheduling."""

    def __init__(self):
        self.transport, self.buffer, self.waiter, self.header_end, self.length = None, bytearray(), None, -1, 0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.header_end < 0:
            self.header_end = self.buffer.find(b"\r\n\r\n")
            if self.header_end < 0:
                return
            self.length = 0
            for line in bytes(self.buffer[: self.header_end]).split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    self.length = int(value)
        if len(self.buffer) >= self.header_end + 4 + self.length and self.waiter and not self.waiter.done():
            self.waiter.set_result(int(self.buffer[9:12]))

    def connection_lost(self, exc) -> None:
        self.transport = None
        if self.waiter and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))

    async def post(self, request: bytes, timeout_s: float = 10.0) -> int:
        loop = asyncio.get_running_loop()
        self.buffer.clear()
        self.header_end, self.waiter = -1, loop.create_future()
        self.transport.write(request)
        timer = loop.call_later(timeout_s, self.transport.abort)  # a hung response counts as failed
        try:
            return await self.waiter
        finally:
            timer.cancel()


async def load(url: str, bodies: dict[str, list[bytes]], rate: float, seconds: float, mix, on_second=None):
    """Open loop: request k is sent at k / rate s whatever the previous ones are doing (on an idle
    keep-alive connection, or a new one)."""
    from urllib.parse import urlsplit

    target = urlsplit(url)
    results: list[tuple[str, int, float]] = []
    tiers = [t for t, _ in mix]
    weights = [w for _, w in mix]
    rng = random.Random(0)
    idle: list[_Connection] = []
    loop = asyncio.get_running_loop()

    requests = {tier: [(f"POST {target.path} HTTP/1.1\r\nHost: {target.netloc}\r\nContent-Type: application/json"
                        f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body for body in tier_bodies]
                for tier, tier_bodies in bodies.items()}

    async def one(tier):
        request = rng.choice(requests[tier])
        started = time.perf_counter()
        connection = idle.pop() if idle else None
        try:
            if connection is None or connection.transport is None:
                _, connection = await loop.create_connection(_Connection, target.hostname, target.port)
            status = await connection.post(request)
            idle.append(connection)
        except OSError:
            status = 599  # connection-level failure: counted with the 5xx
        results.append((tier, status, (time.perf_counter() - started) * 1000))

    start, tasks, n = time.perf_counter(), [], int(rate * seconds)
    for k in range(n):
        delay = start + k / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if on_second and k % int(rate) == 0:
            on_second(k // int(rate))
        tasks.append(asyncio.create_task(one(rng.choices(tiers, weights)[0])))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    for connection in idle:
        if connection.transport is not None:
            connection.transport.close()
    return results, elapsed


def server_latencies(log_path: Path, offset: int) -> tuple[dict[str, list[float]], int]:
    """latency_ms per tier as the shim logged it (time inside the app, no queueing or client),
    from byte ``offset`` of its JSON log on; and the offset after the last line read."""
    per_tier: dict[str, list[float]] = defaultdict(list)
    with log_path.open("rb") as log:
        log.seek(offset)
        data = log.read()
    data = data[: data.rfind(b"\n") + 1]  # the workers may be half-way through a line: read it next time
    for line in data.splitlines():
        if b'"relevance"' in line:
            entry = json.loads(line)
            per_tier[entry["tier"]].append(entry["latency_ms"])
    return per_tier, offset + len(data)


def report(title: str, results, elapsed: float, mix, server: dict[str, list[float]]) -> None:
    print(f"\n{title}: {len(results):,} requests in {elapsed:.1f}s = {len(results) / elapsed:,.0f} req/s")
    print(f"{'tier':<7}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'5xx':>6}"
          f"{'p99 over deadline ms':>22}{'in-app p50/p99 ms':>19}")
    per_tier = defaultdict(list)
    for tier, status, ms in results:
        per_tier[tier].append((status, ms))
    for tier, _ in mix:
        rows = per_tier[tier]
        if not rows:
            continue
        ms = np.array([m for _, m in rows])
        errors = sum(status >= 500 for status, _ in rows)
        over = f"{np.percentile(ms - DEADLINE_MS, 99):+.1f}" if tier == "tail" else ""
        inside = server.get(tier)  # absent with Redis down: the shim then logs tier "unknown"
        in_app = f"{np.percentile(inside, 50):.1f}/{np.percentile(inside, 99):.1f}" if inside else "-"
        print(f"{tier:<7}{len(rows):>9,}{len(rows) / elapsed:>8.0f}{np.percentile(ms, 50):>9.1f}"
              f"{np.percentile(ms, 99):>9.1f}{ms.max():>9.1f}{errors:>6}{over:>22}{in_app:>19}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=300.0, help="Requests per second (open loop).")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--head-queries", type=int, default=200)
    parser.add_argument("--kill-after", type=float, default=3.0, help="Phase 2: kill redis-server after this long.")
    parser.add_argument("--mix", default=DEFAULT_MIX, help="Share of requests per tier.")
    parser.add_argument("--student", type=Path, help="Student artefact to serve (default: the lexical student).")
    parser.add_argument("--serve-set", action="append", default=[], metavar="KEY=VALUE",
                        help="Extra `lore serve --set` (e.g. threads=8); repeatable.")
    parser.add_argument("--teacher-stub", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.teacher_stub:
        serve_teacher_stub(args.teacher_stub)
        return
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server not found: run `make redis`")

    import redis

    workdir = Path(tempfile.mkdtemp(prefix="lore-shim-load-"))
    redis_port, teacher_port, shim_port = free_port(), free_port(), free_port()
    redis_proc = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL)
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    wait_for(lambda: redis.Redis.from_url(redis_url).ping(), "redis-server")
    stub = subprocess.Popen([sys.executable, __file__, "--teacher-stub", str(teacher_port)], stderr=subprocess.DEVNULL)
    queries, item_ids = workload(args.head_queries, args.items, args.student)
    fill_cache(redis_url, queries, item_ids)
    env = {**os.environ, "LORE_REDIS__URL": redis_url, "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics")}
    (workdir / "metrics").mkdir()
    shim = subprocess.Popen([str(Path(sys.executable).parent / "lore"), "serve", "--set", f"port={shim_port}",
                             "--set", f"teacher_url=http://127.0.0.1:{teacher_port}", "--set", "teacher_model=stub",
                             "--set", "max_items=500",
                             *(["--set", f"student_path={args.student}"] if args.student else []),
                             *(arg for setting in args.serve_set for arg in ("--set", setting))],
                            env=env, stdout=subprocess.DEVNULL, stderr=open(workdir / "shim.log", "w"))
    base = f"http://127.0.0.1:{shim_port}"
    try:
        import urllib.request

        wait_for(lambda: urllib.request.urlopen(f"{base}/readyz").status == 200, "lore serve")
        wait_until_idle(shim.pid)
        bodies = payloads(queries, item_ids)
        url = f"{base}/v1/relevance"
        mix = parse_mix(args.mix)
        asyncio.run(load(url, bodies, args.rate, 2.0, mix))  # warm-up: connections, first requests
        _, log_offset = server_latencies(workdir / "shim.log", 0)
        serving = ServeConfig.load(overrides=dict(setting.split("=", 1) for setting in args.serve_set))
        print(f"shim under gunicorn ({serving.workers} workers x {serving.threads} threads), "
              f"student {args.student or 'lexical'}, "
              f"{args.items} items per request, tier mix "
              + ", ".join(f"{t} {w:.0%}" for t, w in mix) + f", tail deadline {DEADLINE_MS} ms, "
              f"{os.cpu_count()} CPU cores shared by client, shim and Redis; "
              + speed_line())
        results, elapsed = asyncio.run(load(url, bodies, args.rate, args.seconds, mix))
        server, log_offset = server_latencies(workdir / "shim.log", log_offset)
        report("phase 1: steady load", results, elapsed, mix, server)

        def kill(second: int) -> None:
            if second == int(args.kill_after):
                redis_proc.send_signal(signal.SIGKILL)

        results, elapsed = asyncio.run(load(url, bodies, args.rate, max(args.seconds / 2, args.kill_after + 3), mix, kill))
        report(f"phase 2: redis-server killed after {args.kill_after:.0f}s", results, elapsed, mix,
               server_latencies(workdir / "shim.log", log_offset)[0])
        print(f"5xx responses while Redis was killed: {sum(status >= 500 for _, status, _ in results)}")
    finally:
        shim.send_signal(signal.SIGTERM)
        shim.wait(timeout=30)
        stub.kill()
        redis_proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
