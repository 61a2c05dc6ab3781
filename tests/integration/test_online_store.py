"""The versioned Redis cache against a real redis-server: atomic switch, interrupted fill,
idempotent re-run, TTL of replaced versions, and never switching back to an older day."""

import threading
import uuid

import pytest

from lore_ml.online_store import CacheReader, CacheWriter, Keys, StaleVersion, pack, unpack

pytestmark = pytest.mark.redis

QUERIES = [f"q{i:03d}" for i in range(40)]
ITEMS = [f"item-{i}" for i in range(20)]


def content(label: str) -> list[dict[str, dict[str, str]]]:
    """Four batches of ten queries, every item judged ``label``."""
    per_query = {q: {i: pack(label, [0.1, 0.2, 0.3, 0.4], f"model-{label}") for i in ITEMS} for q in QUERIES}
    return [{q: per_query[q] for q in QUERIES[s : s + 10]} for s in range(0, len(QUERIES), 10)]


TIERS = {q: "head" for q in QUERIES}


@pytest.fixture
def store(redis_client):
    keys = Keys(f"test-{uuid.uuid4().hex[:8]}")
    yield CacheWriter(redis_client, keys, pending_ttl_s=600, old_version_ttl_s=120), CacheReader(redis_client, keys)
    for key in redis_client.scan_iter(match=f"{keys.prefix}:*"):
        redis_client.delete(key)


def read_all(reader: CacheReader):
    """What a shim request sees: the active version, then one lookup per query."""
    version = reader.active_version()
    labels = set()
    for query in QUERIES[::7]:
        tier, judgments = reader.lookup(version, query, ITEMS)
        assert tier == "head" and all(j is not None for j in judgments), (version, query)
        labels |= {j.label for j in judgments}
    return version, labels


def test_readers_see_the_old_or_the_new_version_complete_during_a_fill(store):
    writer, reader = store
    writer.fill("v1", "2026-01-30", content("L3"), TIERS)
    seen, errors, stop = [], [], threading.Event()

    def keep_reading():
        while not stop.is_set():
            try:
                seen.append(read_all(reader))
            except AssertionError as exc:
                errors.append(exc)

    thread = threading.Thread(target=keep_reading)
    thread.start()
    writer.fill("v2", "2026-01-31", content("L4"), TIERS, on_batch=lambda done, total: stop.wait(0.05))
    stop.wait(0.1)
    stop.set()
    thread.join()
    assert not errors
    assert {version: labels for version, labels in seen} == {"v1": {"L3"}, "v2": {"L4"}}
    assert [version for version, _ in seen] == sorted(version for version, _ in seen)  # never back to v1


def test_an_interrupted_fill_leaves_the_active_version_and_a_rerun_completes_it(store, redis_client):
    writer, reader = store
    writer.fill("v1", "2026-01-30", content("L3"), TIERS)

    def die_after_two(done, total):
        if done == 2:
            raise ConnectionError("killed mid-fill")

    with pytest.raises(ConnectionError):
        writer.fill("v2", "2026-01-31", content("L4"), TIERS, on_batch=die_after_two)
    assert reader.active_version() == "v1" and read_all(reader) == ("v1", {"L3"})
    partial = writer.keys.query("v2", QUERIES[0])
    assert 0 < redis_client.ttl(partial) <= 600  # an abandoned fill expires by itself

    batches = CountedReads(content("L4"))
    result = writer.fill("v2", "2026-01-31", batches, TIERS)
    # two writers: the batches in flight when it died may have finished too
    assert 2 <= result.batches_resumed <= 4 and result.switched and result.queries == len(QUERIES)
    assert batches.reads == [1] * len(batches)  # a resumed batch is read once, to be counted
    assert result.judgments == len(QUERIES) * len(ITEMS)  # the resumed batches counted too
    assert read_all(reader) == ("v2", {"L4"})
    assert redis_client.ttl(partial) == -1  # the active version does not expire


def test_rerunning_the_active_version_writes_nothing(store):
    writer, reader = store
    first = writer.fill("v1", "2026-01-31", content("L4"), TIERS)
    again = writer.fill("v1", "2026-01-31", content("L4"), TIERS)
    assert first.switched and first.judgments == len(QUERIES) * len(ITEMS)
    assert not again.switched and again.judgments == 0 and reader.active_version() == "v1"


def test_the_replaced_version_expires(store, redis_client):
    writer, _ = store
    writer.fill("v1", "2026-01-30", content("L3"), TIERS)
    writer.fill("v2", "2026-01-31", content("L4"), TIERS)
    old_keys = list(redis_client.scan_iter(match=writer.keys.version_pattern("v1")))
    assert len(old_keys) == len(QUERIES) + 2  # queries, tier map, meta
    assert all(0 < redis_client.ttl(key) <= 120 for key in old_keys)
    assert all(redis_client.ttl(key) == -1 for key in redis_client.scan_iter(match=writer.keys.version_pattern("v2")))


class CountedReads(list):
    """Batches that count how often each is read: a spilled batch costs a read and a decode."""

    def __init__(self, batches):
        super().__init__(batches)
        self.reads = [0] * len(batches)

    def __getitem__(self, index):
        self.reads[index] += 1
        return super().__getitem__(index)


def test_a_fill_reads_each_batch_once(store):
    writer, reader = store
    batches = CountedReads(content("L4"))
    result = writer.fill("v1", "2026-01-31", batches, TIERS)
    assert result.judgments == len(QUERIES) * len(ITEMS) and batches.reads == [1] * len(batches)
    assert read_all(reader) == ("v1", {"L4"})


def test_persisting_a_version_reaches_every_key_whatever_the_chunk(store, redis_client):
    writer, _ = store
    keys = [writer.keys.query("v3", f"q{i}") for i in range(8)]
    for key in keys:
        redis_client.set(key, "x", ex=600)
    writer._persist("v3", chunk=3)  # three round trips: 3 + 3 + 2 keys
    assert [redis_client.ttl(key) for key in keys] == [-1] * 8


def test_an_older_day_never_replaces_a_newer_one_unless_forced(store):
    writer, reader = store
    writer.fill("v2", "2026-01-31", content("L4"), TIERS)
    with pytest.raises(StaleVersion, match="newer than 2026-01-30"):
        writer.fill("v1", "2026-01-30", content("L3"), TIERS)
    assert reader.active_version() == "v2"
    writer.fill("v1", "2026-01-30", content("L3"), TIERS, force=True)
    assert reader.active_version() == "v1"


def test_tail_queries_have_no_tier_and_unknown_items_miss(store):
    writer, reader = store
    writer.fill("v1", "2026-01-31", content("L4"), TIERS)
    tier, judgments = reader.lookup("v1", "never-seen", ["item-0"])
    assert tier is None and judgments == [None]
    tier, judgments = reader.lookup("v1", QUERIES[0], ["item-0", "unknown"])
    assert tier == "head" and judgments[0] == unpack(pack("L4", [0.1, 0.2, 0.3, 0.4], "model-L4"))
    assert judgments[1] is None


def test_an_error_reply_fails_the_fill_and_leaves_no_reply_unread(store, redis_client):
    import redis

    writer, reader = store
    writer.fill("v1", "2026-01-30", content("L3"), TIERS)
    one_writer = CacheWriter(redis_client, writer.keys, pending_ttl_s=600, writers=1)
    redis_client.set(writer.keys.query("v2", QUERIES[12]), "not a hash")  # the second batch's third HSET
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        one_writer.fill("v2", "2026-01-31", content("L4"), TIERS)
    assert reader.active_version() == "v1"
    # the batch's replies after the error must not be read as the answers to later commands
    assert [redis_client.echo(f"after-{i}") for i in range(3)] == [f"after-{i}".encode() for i in range(3)]
    redis_client.delete(writer.keys.query("v2", QUERIES[12]))
    assert one_writer.fill("v2", "2026-01-31", content("L4"), TIERS).batches_resumed >= 1
    assert read_all(reader) == ("v2", {"L4"})
