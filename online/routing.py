"""Tiered routing of one relevance request (DESIGN.md §6).

normalise (the shared function) → one Redis round trip (tier + ``HMGET`` of the items under the
active version) → head: cached judgments, misses to the student → mid: the student → tail:
anything the write-back worker already cached, the rest to the teacher within the deadline;
on timeout or error the student answers (``student_fallback``) and the request is queued on
``lore:tail:queue``. When Redis fails, every item comes from the student (``student_degraded``)
and Redis is left alone for ``redis_retry_s`` so a dead server costs no timeouts per request.
Neither a fallback nor a degraded answer waits for an encoder pass (the deadline is spent, or
every request now costs a student score): a student that would need one for this query is
replaced by the lexical student.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from lore_ml.labels import LABELS
from lore_ml.evaluation import scores_from
from lore_ml.online_store import CacheReader, score
from lore_ml.text import normalize_query, query_hash
from online.schemas import Item

log = logging.getLogger("lore.shim")


@dataclass
class Routed:
    query_norm: str
    tier: str
    cache_version: str | None
    items: list[dict]
    fallback_reason: str | None = None
    cache_hits: int = 0
    cache_misses: int = 0

    @property
    def sources(self) -> str:
        """The sources that answered, e.g. ``cache+student`` (a metrics label)."""
        return "+".join(sorted({item["source"] for item in self.items}))


@dataclass
class RedisHealth:
    """Skip Redis for ``retry_s`` after an error; ``ok`` says whether the last call worked."""

    retry_s: float
    down_until: float = 0.0
    last_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def available(self) -> bool:
        return time.monotonic() >= self.down_until

    def failed(self, exc: Exception) -> None:
        with self.lock:
            self.down_until = time.monotonic() + self.retry_s
            self.last_error = f"{type(exc).__name__}: {exc}"

    def succeeded(self) -> None:
        self.last_error = None


class Router:
    def __init__(self, reader: CacheReader, student, teacher, cfg, health: RedisHealth):
        from lore_ml.students import LexicalStudent

        self.reader, self.student, self.teacher, self.cfg, self.health = reader, student, teacher, cfg, health
        self.lexical = LexicalStudent()
        self._active: tuple[float, str | None] = (-1.0, None)

    def active_version(self) -> str | None:
        """The active cache version, re-read at most every ``active_version_ttl_s``."""
        read_at, version = self._active
        now = time.monotonic()
        if now - read_at > self.cfg.active_version_ttl_s:
            version = self.reader.active_version()
            self._active = (now, version)
        return version

    @property
    def last_version(self) -> str | None:
        """The active version as last read (no Redis call: what /readyz reports)."""
        return self._active[1]

    def route(self, query: str, items: Sequence[Item], deadline_ms: int | None, started: float) -> Routed:
        """Answer every item of one validated request; items are dumped to dicts only where a
        model reads them (a head request answered from the cache never does)."""
        import redis

        query_norm = normalize_query(query)
        key = query_hash(query_norm)
        item_ids = [item.item_id for item in items]
        routed = Routed(query_norm, "unknown", None, [None] * len(items))
        cached: list = [None] * len(items)
        if self.health.available():
            try:
                routed.cache_version = self.active_version()
                tier = None
                if routed.cache_version:
                    tier, cached = self.reader.lookup(routed.cache_version, key, item_ids)
                routed.tier = tier or "tail"
                self.health.succeeded()
            except redis.RedisError as exc:
                self.health.failed(exc)
                log.warning("redis unavailable, answering from the student", extra={"error": str(exc)})
                routed.cache_version, cached = None, [None] * len(items)
        if routed.tier == "unknown":
            self._student(routed, items, range(len(items)), "student_degraded")
            routed.fallback_reason = "redis_down"
            return routed
        for index, judgment in enumerate(cached):
            if judgment is not None:
                routed.items[index] = _item(item_ids[index], judgment.label, judgment.p, judgment.score, routed.tier,
                                            "cache", judgment.model_version)
        missing = [i for i, judgment in enumerate(cached) if judgment is None]
        if routed.tier == "head":
            routed.cache_hits, routed.cache_misses = len(items) - len(missing), len(missing)
        if missing and routed.tier == "tail":
            self._teacher(routed, items, missing, key, deadline_ms, started)
        elif missing:
            self._student(routed, items, missing, "student")
        return routed

    def _student(self, routed: Routed, items, indices, source: str, chosen: list[dict] | None = None) -> None:
        indices = list(indices)
        chosen = chosen if chosen is not None else _dumped(items, indices)
        student = self.student
        if source != "student" and not student.is_cheap(routed.query_norm, chosen):
            student = self.lexical
        probabilities = np.round(student.score(routed.query_norm, chosen), 4)
        scores = np.round(scores_from(probabilities), 4).tolist()
        labels = student.decide(probabilities).tolist()
        for index, p, label, item_score in zip(indices, probabilities.tolist(), labels, scores):
            routed.items[index] = _item(items[index].item_id, LABELS[label], p, item_score, routed.tier, source,
                                        student.model_version)

    def _teacher(self, routed: Routed, items, missing: list[int], key: str, deadline_ms: int | None,
                 started: float) -> None:
        from online.teacher import TeacherError, TeacherTimeout

        deadline_s = (deadline_ms or self.cfg.default_deadline_ms) / 1000
        budget_s = deadline_s - self.cfg.tail_reserve_ms / 1000 - (time.perf_counter() - started)
        reason = "no_teacher"
        asked = _dumped(items, missing)
        if self.teacher is not None and budget_s > 0:
            try:
                predictions = self.teacher.judge_items(routed.query_norm, asked, budget_s)
                unjudged = [p.error or f"p={p.p}" for p in predictions if not p.judged]
                if unjudged:
                    raise TeacherError(f"{len(unjudged)} items not judged: {unjudged[0]}")
                for index, prediction in zip(missing, predictions):
                    p = [round(x, 4) for x in prediction.p]
                    routed.items[index] = _item(items[index].item_id, prediction.label, p, round(score(p), 4),
                                                "tail", "teacher", self.teacher.model_version)
                return
            except TeacherTimeout:
                reason = "teacher_timeout"
            except TeacherError as exc:
                reason = "teacher_error"
                log.warning("teacher failed", extra={"error": str(exc)})
        elif self.teacher is not None:
            reason = "teacher_timeout"
        routed.fallback_reason = reason
        self._student(routed, items, missing, "student_fallback", asked)
        self._enqueue(routed.query_norm, key, asked)

    def _enqueue(self, query_norm: str, key: str, items: Sequence[Mapping]) -> None:
        """Hand the missed items to the write-back worker; a Redis failure only costs the write-back."""
        import redis

        try:
            self.reader.client.xadd(self.reader.keys.tail_queue,
                                    {"query_norm": query_norm, "query_hash": key, "items": json.dumps(list(items))},
                                    maxlen=self.cfg.queue_maxlen, approximate=True)
        except redis.RedisError as exc:
            self.health.failed(exc)
            log.warning("could not queue a tail request", extra={"error": str(exc)})


def _dumped(items: Sequence[Item], indices: Sequence[int]) -> list[dict]:
    """The chosen items as the plain dicts the students and the teacher read (unset fields left out)."""
    return [items[i].model_dump(exclude_none=True) for i in indices]


def _item(item_id: str, label: str, p: list[float], item_score: float, tier: str, source: str,
          model_version: str) -> dict:
    return {"item_id": item_id, "label": label, "score": item_score, "p": p, "tier": tier, "source": source,
            "model_version": model_version}
