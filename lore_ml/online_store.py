"""The Redis online store: key layout, packed judgments, versioned fills (DESIGN.md §4).

Keys (``lore`` is ``redis.key_prefix``):

* ``lore:active``                 → the version readers use (one ``SET`` switches it)
* ``lore:v:{ver}:q:{query_hash}`` → hash ``item_id → packed judgment``
* ``lore:v:{ver}:tier``           → hash ``query_hash → head|mid`` (absent = tail)
* ``lore:v:{ver}:meta``           → hash: ds, model versions, counts, state (filling|complete)
* ``lore:v:{ver}:written``        → sorted set ``query_hash → time of its last write-back``
* ``lore:tail:queue``             → stream of tail requests for the write-back worker

A fill writes every key of a new version with a *pending* TTL (an abandoned fill cleans itself
up), records how many batches are done (a re-run resumes there), then makes the keys
persistent, switches ``lore:active`` in one transaction — refusing to replace a newer day
unless forced (Feast's rule: never overwrite newer with older) — and gives the previous
version's keys a TTL, so readers mid-request finish on complete data. The tail judgments the
write-back worker put into the previous version are carried into the new one (recent ones only,
never over what the fill wrote), so a switch does not send every known tail query back to the
teacher.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from dataclasses import dataclass
from typing import Callable, Container, Iterable, Mapping, NamedTuple, Sequence

import numpy as np
import orjson

from lore_ml.labels import GAINS

log = logging.getLogger("lore.online_store")

def score(p: Sequence[float], gains: Sequence[float] = GAINS) -> float:
    """``sum_k p(Lk) * gain(Lk)`` (DESIGN.md §1).

    >>> round(score([0.0, 0.5, 0.0, 0.5]), 3)
    0.55
    """
    return float(sum(prob * gain for prob, gain in zip(p, gains)))


def pack(label: str, p: Sequence[float], model_version: str) -> str:
    """A judgment as the compact JSON stored per item: :func:`pack_many` of one.

    >>> pack("L2:brand", [0.1, 0.7, 0.1, 0.1], "teacher@abc")
    '["L2:brand",[0.1,0.7,0.1,0.1],"teacher@abc",0.24]'
    """
    return pack_many([label], [p], [model_version])[0]


def pack_many(labels: Sequence[str], p, model_versions: Sequence[str]) -> list[str]:
    """Judgments as the compact JSON stored per item: label, p(L1..L4) rounded to 4 decimals,
    model version and the score of the rounded p, rounded to 4 decimals. The score is stored
    (DESIGN.md §4) so a head request does not recompute it per item.

    ``p`` is one row of four finite probabilities per judgment (a list of lists or an n×4
    array). Vectorised for the cache fill, which packs every head judgment of the day: 1 µs a
    judgment, against 9 µs packing them one by one with the json module. Numpy rounds half to
    even after scaling, so a score on an exact tie (``0.35165``) may round either way.

    >>> pack_many(["L2:brand", "L4"], [[0.1, 0.7, 0.1, 0.1], [0, 0, 0.2, 0.8]], ["t@1", "t@1"])
    ['["L2:brand",[0.1,0.7,0.1,0.1],"t@1",0.24]', '["L4",[0.0,0.0,0.2,0.8],"t@1",0.94]']
    """
    if len(labels) != len(model_versions):
        raise ValueError(f"{len(labels)} labels for {len(model_versions)} model versions")
    if not labels:
        return []
    rounded = np.round(np.asarray(p, dtype=np.float64), 4)
    if rounded.shape != (len(labels), len(GAINS)):
        raise ValueError(f"p must be {len(labels)} rows of {len(GAINS)} probabilities, got shape {rounded.shape}")
    if not np.isfinite(rounded).all():
        raise ValueError(f"p must be finite, got {rounded[~np.isfinite(rounded).all(axis=1)][0].tolist()}")
    terms = rounded * np.asarray(GAINS)
    scores = np.round(terms[:, 0] + terms[:, 1] + terms[:, 2] + terms[:, 3], 4)  # the order score() adds in
    p_texts = orjson.dumps(rounded, option=orjson.OPT_SERIALIZE_NUMPY)[2:-2].decode().split("],[")
    score_texts = orjson.dumps(scores, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].decode().split(",")
    quoted = {text: orjson.dumps(text).decode() for text in {*labels, *model_versions}}  # few distinct ones
    return [f"[{quoted[label]},[{p_text}],{quoted[version]},{score_text}]"
            for label, p_text, version, score_text in zip(labels, p_texts, model_versions, score_texts)]


class HashFields(NamedTuple):
    """A query's cached items as the tail of the ``HSET`` that writes them: ``count`` field/value
    pairs, each RESP-encoded by :func:`encode_hash_fields`, concatenated in item order."""

    count: int
    resp: str


def encode_hash_fields(fields, values):
    """Each (field, value) pair of two Arrow string arrays as the two RESP bulk strings an ``HSET``
    carries for it (``$<bytes>\\r\\n<field>\\r\\n$<bytes>\\r\\n<value>\\r\\n``), computed by Arrow
    in one pass.

    The cache fill's Spark workers encode the day's judgments with it, so the Redis writer sends
    them without encoding a million arguments itself (hiredis took 0.15 s per 500k judgments,
    half of the writer's time; bench/RESULTS.md). A null field or value gives a null entry.

    >>> import pyarrow as pa
    >>> encode_hash_fields(pa.array(["i1", "é"]), pa.array(["x", "yz"])).to_pylist()
    ['$2\\r\\ni1\\r\\n$1\\r\\nx\\r\\n', '$2\\r\\né\\r\\n$2\\r\\nyz\\r\\n']
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    def byte_length(texts):
        return pc.cast(pc.binary_length(texts), pa.string())

    return pc.binary_join_element_wise("$", byte_length(fields), "\r\n", fields, "\r\n$", byte_length(values), "\r\n",
                                       values, "\r\n", "")


def hash_fields(items: Mapping[str, str]) -> HashFields:
    """``{item_id: packed}`` as :class:`HashFields` (items in the mapping's order), for callers
    that hold a few items as a mapping.

    >>> hash_fields({"i1": "x"})
    HashFields(count=1, resp='$2\\r\\ni1\\r\\n$1\\r\\nx\\r\\n')
    """
    import pyarrow as pa

    if not items:
        return HashFields(0, "")
    return HashFields(len(items), "".join(encode_hash_fields(pa.array(list(items), pa.string()),
                                                             pa.array(list(items.values()), pa.string())).to_pylist()))


def _as_fields(items: HashFields | Mapping[str, str]) -> HashFields:
    return items if isinstance(items, HashFields) else hash_fields(items)


def hset_command(key: str, fields: HashFields) -> bytes:
    """The RESP of ``HSET key <fields>``, as :func:`hiredis.pack_command` would pack it.

    >>> hset_command("k", hash_fields({"i1": "x"}))
    b'*4\\r\\n$4\\r\\nHSET\\r\\n$1\\r\\nk\\r\\n$2\\r\\ni1\\r\\n$1\\r\\nx\\r\\n'
    """
    encoded = key.encode()
    return b"*%d\r\n$4\r\nHSET\r\n$%d\r\n%s\r\n%s" % (2 + 2 * fields.count, len(encoded), encoded, fields.resp.encode())


class CachedJudgment(NamedTuple):  # a tuple: a head request builds a hundred (0.8 µs each, a frozen dataclass 1.8)
    label: str
    p: list[float]
    score: float
    model_version: str


def unpack(raw: bytes | str) -> CachedJudgment:
    """The inverse of :func:`pack`; values written before the score was stored get it computed.

    >>> unpack(pack("L4", [0, 0, 0.2, 0.8], "m")).score, unpack('["L4",[0,0,0.2,0.8],"m"]').score
    (0.94, 0.94)
    """
    return _judgment(orjson.loads(raw))


def unpack_many(values: Sequence[bytes | None]) -> list[CachedJudgment | None]:
    """:func:`unpack` of every stored value (``None`` stays ``None``) in one JSON parse: a head
    request reads a hundred of them, and one parse costs a fifth of a hundred.

    >>> [j and j.label for j in unpack_many([pack("L4", [0, 0, 0.2, 0.8], "m").encode(), None])]
    ['L4', None]
    """
    present = [v for v in values if v is not None]
    if not present:
        return [None] * len(values)
    parsed = iter(orjson.loads(b"[" + b",".join(v if isinstance(v, bytes) else v.encode() for v in present) + b"]"))
    return [None if v is None else _judgment(next(parsed)) for v in values]


def _judgment(values: list) -> CachedJudgment:
    if len(values) == 3:
        label, p, model_version = values
        return CachedJudgment(label, p, round(score(p), 4), model_version)
    label, p, model_version, item_score = values
    return CachedJudgment(label, p, item_score, model_version)


@dataclass(frozen=True)
class Keys:
    prefix: str = "lore"

    @property
    def active(self) -> str:
        return f"{self.prefix}:active"

    @property
    def tail_queue(self) -> str:
        return f"{self.prefix}:tail:queue"

    def query(self, version: str, query_hash: str) -> str:
        return f"{self.prefix}:v:{version}:q:{query_hash}"

    def tier(self, version: str) -> str:
        return f"{self.prefix}:v:{version}:tier"

    def meta(self, version: str) -> str:
        return f"{self.prefix}:v:{version}:meta"

    def written_back(self, version: str) -> str:
        return f"{self.prefix}:v:{version}:written"

    def version_pattern(self, version: str) -> str:
        return f"{self.prefix}:v:{version}:*"


def connect(redis_cfg, **options):
    """A Redis client from ``RedisConfig`` (``rediss://`` URLs use TLS; password from the env)."""
    import redis

    password = redis_cfg.password.get_secret_value() if redis_cfg.password else None
    options.setdefault("socket_timeout", 5.0)
    options.setdefault("socket_connect_timeout", 2.0)
    options.setdefault("health_check_interval", 30)
    return redis.Redis.from_url(redis_cfg.url, password=password, **options)


def unavailable(client, exc: Exception):
    """The one-line error of a batch command that finds Redis down (an ``InputsNotReady``: retried
    later), naming the server by host and port, not by its URL, which may hold a password."""
    from lore_ml.config import InputsNotReady

    server = client.connection_pool.connection_kwargs
    where = server.get("path") or f"{server.get('host')}:{server.get('port')}"
    return InputsNotReady(f"Redis at {where} did not answer ({type(exc).__name__}: {exc}): start it or set redis.url")


class CacheReader:
    """What the shim and the worker read: the active version, tiers and judgments."""

    def __init__(self, client, keys: Keys = Keys()):
        self.client = client
        self.keys = keys

    def active_version(self) -> str | None:
        value = self.client.get(self.keys.active)
        return value.decode() if value is not None else None

    def lookup(self, version: str, query_hash: str, item_ids: Sequence[str]) -> tuple[str | None, list[CachedJudgment | None]]:
        """(tier or None for tail, cached judgment or None per item) in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(self.keys.tier(version), query_hash)
        pipe.hmget(self.keys.query(version, query_hash), list(item_ids))
        tier, values = pipe.execute()
        return (tier.decode() if tier is not None else None), unpack_many(values)


class StaleVersion(RuntimeError):
    """The active version holds a newer day than the one being switched to."""


@dataclass
class FillResult:
    """What :meth:`CacheWriter.fill` did; ``bytes_written`` counts the judgments' commands as sent
    this run (RESP framing included) and the tier map's query hashes and tiers."""

    version: str
    queries: int
    judgments: int
    tier_entries: int
    bytes_written: int
    batches_resumed: int
    switched: bool
    previous_version: str | None
    write_backs_carried: int = 0


class CacheWriter(CacheReader):
    """Writes one cache version and switches readers to it."""

    def __init__(self, client, keys: Keys = Keys(), pending_ttl_s: int = 86_400, old_version_ttl_s: int = 6 * 3600,
                 writers: int = 2, write_back_max_age_s: int = 7 * 86_400):
        super().__init__(client, keys)
        self.writers = writers
        self.pending_ttl_s = pending_ttl_s
        self.old_version_ttl_s = old_version_ttl_s
        self.write_back_max_age_s = write_back_max_age_s

    def fill(
        self,
        version: str,
        ds: str,
        batches: Sequence[Mapping[str, HashFields | Mapping[str, str]]],
        tiers: Mapping[str, str],
        meta: Mapping[str, str] | None = None,
        *,
        force: bool = False,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> FillResult:
        """Write ``batches`` (each ``{query_hash: {item_id: packed}}``, or :class:`HashFields` for
        the items) and ``tiers`` as ``version``, then switch.

        A version id names its content (``jobs.fill_cache`` derives it from a digest), so batches
        already written by an interrupted run of the same version (recorded in the ``:done``
        set) are skipped, and a batch cut short is simply written again (same fields, same
        values). ``writers`` batches (one round trip each) are in flight at once, so packing the
        next batch in this process overlaps Redis applying the previous one. ``on_batch(done,
        total)`` is called as batches complete (progress bars, tests).

        The replaced version's tail write-backs are carried over (:meth:`carry_write_backs`) once
        before the switch, and once more between the switch and the old keys' TTL for those
        the worker wrote meanwhile.
        """
        meta_key, done_key, previous = self.keys.meta(version), self.keys.meta(version) + ":done", self.active_version()
        if previous == version:
            log.info("version %s is already active: nothing to write", version)
            return FillResult(version, 0, 0, 0, 0, 0, False, previous)
        self._refuse_stale(previous, ds, force)
        if previous and self.write_back_max_age_s:
            self._require_copy()
        already = {int(i) for i in self.client.smembers(done_key)}
        if already:
            log.info("resuming version %s: %d of %d batches already written", version, len(already), len(batches))
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(meta_key, mapping={"ds": ds, "state": "filling", **(meta or {})})
        pipe.expire(meta_key, self.pending_ttl_s)
        pipe.execute()

        def write(index: int) -> tuple[int, int, int]:
            """Send batch ``index``; (bytes sent, queries, judgments)."""
            import hiredis

            batch, packed, replies, judgments = batches[index], [], 0, 0  # a spilled batch is read once
            for query_hash, items in batch.items():
                fields = _as_fields(items)
                judgments += fields.count
                if fields.count:
                    key = self.keys.query(version, query_hash)
                    packed += [hset_command(key, fields), hiredis.pack_command(("EXPIRE", key, self.pending_ttl_s))]
                    replies += 2
            packed += [hiredis.pack_command(("SADD", done_key, index)),
                       hiredis.pack_command(("EXPIRE", done_key, self.pending_ttl_s))]
            payload = b"".join(packed)
            self._send(payload, replies + 2)
            return len(payload), len(batch), judgments

        todo = [i for i in range(len(batches)) if i not in already]
        with concurrent.futures.ThreadPoolExecutor(self.writers, thread_name_prefix="cache-fill") as pool:
            futures = [pool.submit(write, i) for i in todo]
            try:
                written, queries, judgments = 0, 0, 0
                for i in already:  # written by an earlier run: read once more, only to be counted
                    batch = batches[i]
                    queries += len(batch)
                    judgments += sum(_as_fields(items).count for items in batch.values())
                for finished, future in enumerate(concurrent.futures.as_completed(futures), len(already) + 1):
                    batch_bytes, batch_queries, batch_judgments = future.result()
                    written, queries, judgments = written + batch_bytes, queries + batch_queries, judgments + batch_judgments
                    if on_batch:
                        on_batch(finished, len(batches))
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        tier_key = self.keys.tier(version)
        pipe.delete(tier_key)
        tier_items = list(tiers.items())
        for start in range(0, len(tier_items), 10_000):
            pipe.hset(tier_key, mapping=dict(tier_items[start : start + 10_000]))
        pipe.expire(tier_key, self.pending_ttl_s)
        pipe.hset(meta_key, mapping={"queries": queries, "judgments": judgments, "tier_entries": len(tiers)})
        pipe.execute()
        written += sum(map(len, tiers)) + sum(map(len, tiers.values()))
        self.client.delete(done_key)  # the version is complete: nothing left to resume
        self._persist(version)
        self.client.hset(meta_key, "state", "complete")
        carried = self.carry_write_backs(previous, version, tiers) if previous else set()
        replaced = self._switch(version, ds, force)
        if replaced is not None and replaced != version:
            carried |= self.carry_write_backs(replaced, version, tiers)
            self._expire(replaced, version)
        return FillResult(version, queries, judgments, len(tiers), written, len(already), True, previous, len(carried))

    def _send(self, payload: bytes, replies: int) -> None:
        """Send ``payload``, ``replies`` packed commands, in one round trip, as a non-transactional
        pipeline does, and raise if any fails; retried as redis-py retries a pipeline (every fill
        command is idempotent).

        Packed by hiredis and :func:`hset_command`, not by a pipeline, whose packer walks each of a
        batch's 40,000 arguments in Python: that made the whole fill ~1.3× slower (bench/RESULTS.md,
        "Cache fill")."""
        pool = self.client.connection_pool
        connection = pool.get_connection()

        def send_and_check() -> None:
            connection.send_packed_command([payload])
            for _ in range(replies):
                connection.read_response()  # raises the first error reply

        try:
            connection.retry.call_with_retry(send_and_check, lambda _error: connection.disconnect())
        except BaseException:
            connection.disconnect()  # replies after a failed one are still unread on it
            raise
        finally:
            pool.release(connection)

    def carry_write_backs(self, source: str, target: str, tiers: Container[str] = (), page: int = 500) -> set[str]:
        """Copy into ``target`` the query keys of ``source`` that the write-back worker wrote in the
        last ``write_back_max_age_s`` seconds, except queries in ``target``'s ``tiers`` (head and
        mid queries are answered by the fill and the student, never from write-backs); return the
        query hashes carried.

        A query key is copied inside Redis (``COPY``, Redis ≥ 6.2); where ``target`` already has
        one, its items keep their judgment (``HSETNX``: a newer write-back wins). Each carried
        query keeps the time of its last write-back, so a tail judgment is carried from version to
        version only until it is that old (0: never carried).
        """
        if self.write_back_max_age_s == 0:
            return set()
        source_set, target_set = self.keys.written_back(source), self.keys.written_back(target)
        oldest, carried = time.time() - self.write_back_max_age_s, set()
        for offset in range(0, self.client.zcard(source_set), page):
            written = self.client.zrange(source_set, oldest, "+inf", byscore=True, offset=offset, num=page,
                                         withscores=True)
            if not written:
                break
            tail = [(query_hash.decode(), written_at) for query_hash, written_at in written
                    if query_hash.decode() not in tiers]
            writes = self.client.pipeline(transaction=False)
            for query_hash, written_at in tail:
                writes.copy(self.keys.query(source, query_hash), self.keys.query(target, query_hash))
                writes.zadd(target_set, {query_hash: written_at}, gt=True)
            copied = writes.execute()[::2]
            merge = [query_hash for (query_hash, _), done in zip(tail, copied) if not done]
            read = self.client.pipeline(transaction=False)
            for query_hash in merge:  # the target holds the query already: add only the items it lacks
                read.hgetall(self.keys.query(source, query_hash))
            carried.update(query_hash for (query_hash, _), done in zip(tail, copied) if done)
            for query_hash, items in zip(merge, read.execute()):
                key = self.keys.query(target, query_hash)
                for item_id, packed in items.items():
                    writes.hsetnx(key, item_id, packed)
                if items:  # none: the source's key is gone (deleted, or never written)
                    carried.add(query_hash)
            writes.execute()
        if carried:
            log.info("carried the write-backs of %d tail queries from %s to %s", len(carried), source, target)
        return carried

    def refuse_stale(self, ds: str, force: bool = False) -> None:
        """Raise :class:`StaleVersion` if the active version holds a newer day than ``ds`` (unless
        ``force``): what :meth:`fill` checks before writing and again at the switch, here for a
        caller to check before it reads the day's judgments."""
        self._refuse_stale(self.active_version(), ds, force)

    def _refuse_stale(self, active: str | None, ds: str, force: bool) -> None:
        if active is None or force:
            return
        active_ds = self.client.hget(self.keys.meta(active), "ds")
        if active_ds is not None and active_ds.decode() > ds:
            raise StaleVersion(f"active cache version {active} holds ds={active_ds.decode()}, newer than {ds}; "
                               "pass --force to switch back to an older day")

    def _require_copy(self) -> None:
        """Refuse, before anything is written, a server without ``COPY`` (Redis < 6.2), which
        :meth:`carry_write_backs` needs; a server that hides ``INFO`` is trusted."""
        import redis

        try:
            version = str(self.client.info("server").get("redis_version", ""))
        except redis.ResponseError:
            return
        if version and tuple(int(part) for part in version.split(".")[:2] if part.isdigit()) < (6, 2):
            raise RuntimeError(f"Redis {version} has no COPY, which carrying the tail write-backs into the new "
                               "version needs: use Redis 6.2 or later, or set write_back_max_age_s=0")

    def _version_keys(self, version: str) -> Iterable[bytes]:
        return self.client.scan_iter(match=self.keys.version_pattern(version), count=1000)

    def _persist(self, version: str, chunk: int = 10_000) -> None:
        """Drop the pending TTL of every key of ``version``, ``chunk`` keys a round trip (through
        :meth:`_send`: a pipeline's packing and parsing of 5,000 PERSISTs took a fifth of a fill)."""
        import hiredis

        keys = list(self._version_keys(version))
        for start in range(0, len(keys), chunk):
            commands = [hiredis.pack_command(("PERSIST", key)) for key in keys[start : start + chunk]]
            self._send(b"".join(commands), len(commands))

    def _switch(self, version: str, ds: str, force: bool) -> str | None:
        """Point ``active`` at ``version`` in one transaction, which redis-py's ``transaction`` runs
        again (re-checking against the newcomer) when another fill switched meanwhile; return the
        version it replaced."""

        def switch(pipe) -> str | None:
            current = pipe.get(self.keys.active)
            current = current.decode() if current is not None else None
            self._refuse_stale(current, ds, force)
            pipe.multi()
            pipe.set(self.keys.active, version)
            return current

        return self.client.transaction(switch, self.keys.active, value_from_callable=True)

    def _expire(self, replaced: str, version: str) -> None:
        expire = self.client.pipeline(transaction=False)
        for key in self._version_keys(replaced):
            expire.expire(key, self.old_version_ttl_s)
        expire.execute()
        log.info("switched %s -> %s; old keys expire in %ds", replaced, version, self.old_version_ttl_s)
