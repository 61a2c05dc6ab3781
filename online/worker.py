"""The write-back worker: judge queued tail requests with the teacher and cache the results.

Reads ``lore:tail:queue`` through a Redis consumer group (several workers share the stream,
each entry goes to one), judges the entry's items with the teacher (no deadline here), writes
the judgments into the *active* cache version under the query's key — so the next identical
request is a cache hit, while what the version already holds is never replaced — and
acknowledges the entry in the same transaction as that write. Entries a dead
worker left pending longer than ``worker_claim_idle_ms`` are claimed and redone; a teacher
failure leaves the entry pending for the next attempt.

    lore worker                 # run until stopped
    lore worker --once          # drain what is queued now, then exit
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
import time
from dataclasses import dataclass

from pydantic import Field

from lore_ml.online_store import Keys, pack_many
from online.config import ServeConfig

log = logging.getLogger("lore.worker")


@dataclass
class WorkerStats:
    entries: int = 0
    judgments: int = 0
    failures: int = 0
    malformed: int = 0


class WriteBackWorker:
    def __init__(self, client, teacher, keys: Keys, cfg, consumer: str | None = None):
        self.client, self.teacher, self.keys, self.cfg = client, teacher, keys, cfg
        self.consumer = consumer or f"{socket.gethostname()}-{id(self):x}"
        self.stats = WorkerStats()
        self.stopping = False

    def ensure_group(self) -> None:
        import redis

        try:
            self.client.xgroup_create(self.keys.tail_queue, self.cfg.worker_group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _entries(self, block_ms: int | None) -> list[tuple[bytes, dict]]:
        """Stale entries of dead workers first, then new ones."""
        _, claimed, _ = self.client.xautoclaim(self.keys.tail_queue, self.cfg.worker_group, self.consumer,
                                               min_idle_time=self.cfg.worker_claim_idle_ms, count=self.cfg.worker_batch)
        if claimed:
            return claimed
        streams = self.client.xreadgroup(self.cfg.worker_group, self.consumer, {self.keys.tail_queue: ">"},
                                         count=self.cfg.worker_batch, block=block_ms)
        return streams[0][1] if streams else []

    def process(self, entry_id: bytes, fields: dict) -> None:
        """Judge one entry, write it into the active version, then acknowledge it. An entry that
        cannot be read (not what the shim queues) is logged whole and acknowledged: left pending,
        it would be claimed and fail again forever."""
        try:
            items = json.loads(fields[b"items"])
            query_norm, query_hash = fields[b"query_norm"].decode(), fields[b"query_hash"].decode()
            if not all(isinstance(item, dict) and isinstance(item.get("item_id"), str) for item in items):
                raise ValueError("items must be objects with a string item_id")
        except (KeyError, TypeError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            log.error("dropping malformed tail queue entry %s (%s: %s): %r", entry_id, type(exc).__name__, exc, fields)
            self.client.xack(self.keys.tail_queue, self.cfg.worker_group, entry_id)
            self.stats.malformed += 1
            return
        predictions = self.teacher.judge_items(query_norm, items, timeout_s=3600.0)
        ok = [(item["item_id"], p) for item, p in zip(items, predictions) if p.judged]
        packed = pack_many([p.label for _, p in ok], [p.p for _, p in ok], [self.teacher.model_version] * len(ok))
        judged = dict(zip([item_id for item_id, _ in ok], packed))
        self.stats.judgments += self._write_and_ack(entry_id, query_hash, judged)
        self.stats.entries += 1

    def _write_and_ack(self, entry_id: bytes, query_hash: str, judged: dict[str, str]) -> int:
        """Write ``judged`` into the version active at the moment of the write and acknowledge the
        entry, in one transaction; return how many judgments were new.

        ``lore:active`` is watched, and redis-py's ``transaction`` runs the write again (into the
        new version) when a fill switched meanwhile: otherwise the key would be left under the
        replaced version, created after that version's keys were given their TTL, and kept
        forever. Items the version already holds keep their judgment (``HSETNX``): a write-back
        fills gaps and never replaces what a fill or an earlier write-back stored. The query is
        recorded with the time in the version's ``written`` set, from which the next fill carries
        it into the version it switches to.
        """

        def write(pipe) -> None:
            version = pipe.get(self.keys.active)
            pipe.multi()
            if version is not None and judged:
                key = self.keys.query(version.decode(), query_hash)
                for item_id, packed in judged.items():
                    pipe.hsetnx(key, item_id, packed)
                pipe.zadd(self.keys.written_back(version.decode()), {query_hash: time.time()})
            pipe.xack(self.keys.tail_queue, self.cfg.worker_group, entry_id)

        results = self.client.transaction(write, self.keys.active)  # HSETNX…, ZADD, XACK or XACK alone
        return sum(results[:-2]) if len(results) > 1 else 0

    def run(self, once: bool = False) -> WorkerStats:
        """Judge entries until stopped or, with ``once``, until the queue is drained.

        A Redis outage is waited out, ``worker_redis_retry_max_s`` at most between tries (a
        restarted server must not leave the queue without a worker); the entry in flight stays
        pending and is claimed again. With ``once`` the first Redis error is raised."""
        import redis
        from tenacity import Retrying, before_sleep_log, retry_if_exception_type, stop_after_attempt, wait_exponential

        retrying = Retrying(
            retry=retry_if_exception_type((redis.ConnectionError, redis.TimeoutError)),
            wait=wait_exponential(multiplier=0.1, max=self.cfg.worker_redis_retry_max_s),
            stop=stop_after_attempt(1) if once else (lambda _: self.stopping),
            before_sleep=before_sleep_log(log, logging.WARNING), reraise=True)
        try:
            retrying(self.ensure_group)
            while not self.stopping and retrying(self._step, once):
                pass
        except (redis.ConnectionError, redis.TimeoutError):
            if not self.stopping:
                raise
        return self.stats

    def _step(self, once: bool) -> bool:
        """Judge what one read of the queue returns; False when there is nothing more to do."""
        from online.teacher import TeacherError, TeacherTimeout

        entries = self._entries(None if once else self.cfg.worker_block_ms)
        if once and not entries:
            return False
        for entry_id, fields in entries:
            try:
                self.process(entry_id, fields)
            except (TeacherError, TeacherTimeout) as exc:  # stays pending: claimed again later
                self.stats.failures += 1
                log.warning("teacher failed on %s: %s", entry_id, exc)
                if once:
                    return False
        return True


class WorkerConfig(ServeConfig):
    """Run the write-back worker (the teacher and Redis settings of the shim)."""

    once: bool = Field(False, description="Drain what is queued now, then exit.")

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("--once", action="store_true", default=None, help="Drain the queue, then exit.")


def main(argv: list[str] | None = None) -> int:
    import redis

    from lore_ml.online_store import connect, unavailable
    from online.app import build_teacher

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = WorkerConfig.from_cli(argv, prog="lore worker")
    teacher = build_teacher(cfg)
    if teacher is None:
        raise SystemExit("no teacher configured: set teacher_url (+ teacher_model) or teacher.model_path")
    client = connect(cfg.redis)
    worker = WriteBackWorker(client, teacher, Keys(cfg.redis.key_prefix), cfg)
    signal.signal(signal.SIGTERM, lambda *_: setattr(worker, "stopping", True))
    try:
        stats = worker.run(once=cfg.once)
    except (redis.ConnectionError, redis.TimeoutError) as exc:  # only with --once: a running worker waits
        raise unavailable(client, exc) from exc
    print(f"write-back worker: {stats.entries} entries, {stats.judgments} judgments cached, {stats.failures} failures, "
          f"{stats.malformed} malformed entries dropped")
    return 0


if __name__ == "__main__":
    from lore_ml.cli import run_entry_point

    sys.exit(run_entry_point(main))
