"""fill_cache's spilled batches: what the Redis writer reads back is what streamed in, in query-hash
batches whatever order the rows came in, and the version names the content alone (not the order
it streamed in nor how it was batched)."""

import pytest

from jobs.fill_cache import SpilledBatches
from lore_ml.online_store import HashFields, hash_fields, pack


def row(query: str, labels: list[str]) -> tuple:
    """A (query_hash, items, fields) row of transform_cache_entries."""
    return (query, *hash_fields({f"i{i}": pack(label, [0.1, 0.2, 0.3, 0.4], "teacher@v1")
                                 for i, label in enumerate(labels)}))


ROWS = [row(f"q{q}", ["L4" if (q + i) % 2 else "L2:brand" for i in range(3)]) for q in range(5)]
SHUFFLED = [ROWS[i] for i in (3, 0, 4, 2, 1)]


def spilled(tmp_path, rows, batch_queries, name="entries.resp"):
    return SpilledBatches(tmp_path / name, rows, batch_queries)


def test_spilled_batches_read_back_in_query_hash_order(tmp_path):
    with spilled(tmp_path, SHUFFLED, 2) as batches:
        assert len(batches) == 3
        assert [list(batch) for batch in batches] == [["q0", "q1"], ["q2", "q3"], ["q4"]]
        assert [fields for batch in batches for fields in batch.values()] == [HashFields(*r[1:]) for r in ROWS]
        assert batches[-1] == batches[2] == {"q4": HashFields(*ROWS[-1][1:])} and batches[2]["q4"].count == 3
        with pytest.raises(IndexError):
            batches[3]


def test_a_query_streamed_twice_is_refused(tmp_path):
    with pytest.raises(ValueError, match="1 queries streamed more than once"):
        spilled(tmp_path, [*ROWS, ROWS[2]], 2)


def test_the_version_names_the_content_not_the_order_or_batching(tmp_path):
    changed = ROWS[:-1] + [row("q4", ["L2:brand", "L4", "L1"])]
    assert changed[-1] != ROWS[-1]
    recounted = ROWS[:-1] + [(*ROWS[-1][:1], ROWS[-1][1] + 1, ROWS[-1][2])]
    versions = {}
    for name, rows, batch_queries, tiers in [
        ("by1", ROWS, 1, {"q0": "head"}), ("by4", ROWS, 4, {"q0": "head"}), ("shuffled", SHUFFLED, 4, {"q0": "head"}),
        ("changed", changed, 4, {"q0": "head"}), ("recounted", recounted, 4, {"q0": "head"}),
        ("tiers", ROWS, 4, {"q0": "mid"}),
    ]:
        with spilled(tmp_path, rows, batch_queries, f"{name}.resp") as batches:
            versions[name] = batches.version("2026-01-31", tiers)
    assert versions["by1"] == versions["by4"] == versions["shuffled"] and versions["by1"].startswith("20260131-")
    assert len({versions["by4"], versions["changed"], versions["recounted"], versions["tiers"]}) == 4


def test_no_rows_or_only_empty_fields_make_no_batch_or_empty_ones(tmp_path):
    with spilled(tmp_path, [], 2, "none.resp") as batches:
        assert len(batches) == 0 and list(batches) == []
    with spilled(tmp_path, [("q0", 0, ""), ("q1", 0, "")], 2, "empty.resp") as batches:
        assert list(batches) == [{"q0": HashFields(0, ""), "q1": HashFields(0, "")}]
