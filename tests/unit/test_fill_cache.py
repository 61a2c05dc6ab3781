"""fill_cache's streamed batches: what the Redis writer reads back is what streamed in, and the
version names the content alone (not how it was batched)."""

from jobs.fill_cache import SpilledBatches, stream_batches
from lore_ml.online_store import HashFields, hash_fields, pack


def row(query: str, labels: list[str]) -> tuple:
    """A (query_hash, items, fields) row of transform_cache_entries."""
    return (query, *hash_fields({f"i{i}": pack(label, [0.1, 0.2, 0.3, 0.4], "teacher@v1")
                                 for i, label in enumerate(labels)}))


ROWS = [row(f"q{q}", ["L4" if (q + i) % 2 else "L2:brand" for i in range(3)]) for q in range(5)]


def spilled(tmp_path, rows, batch_queries, name="batches.jsonl"):
    return SpilledBatches(tmp_path / name, stream_batches(rows, batch_queries))


def test_spilled_batches_read_back_as_streamed(tmp_path):
    batches = spilled(tmp_path, ROWS, 2)
    try:
        assert len(batches) == 3 and list(batches) == list(stream_batches(ROWS, 2))
        assert [list(batch) for batch in batches] == [["q0", "q1"], ["q2", "q3"], ["q4"]]
        assert batches[-1]["q4"] == HashFields(*ROWS[-1][1:]) and batches[-1]["q4"].count == 3
    finally:
        batches.close()


def test_the_version_names_the_content_not_the_batching(tmp_path):
    changed = ROWS[:-1] + [row("q4", ["L2:brand", "L4", "L1"])]
    assert changed[-1] != ROWS[-1]
    versions = {}
    for name, rows, batch_queries, tiers in [("by1", ROWS, 1, {"q0": "head"}), ("by4", ROWS, 4, {"q0": "head"}),
                                             ("changed", changed, 4, {"q0": "head"}), ("tiers", ROWS, 4, {"q0": "mid"})]:
        batches = spilled(tmp_path, rows, batch_queries, f"{name}.jsonl")
        versions[name] = batches.version("2026-01-31", tiers)
        batches.close()
    assert versions["by1"] == versions["by4"] and versions["by1"].startswith("20260131-")
    assert len({versions["by4"], versions["changed"], versions["tiers"]}) == 3
