"""What the cache fill reads from gold.relevance_judgments, worked out by hand, on both runtimes:
only ok judgments the cache can hold, packed and encoded for HSET, one row per query."""

from pyspark.testing import assertDataFrameEqual

from jobs.fill_cache import SpilledBatches, transform_cache_entries
from lore_ml.online_store import HashFields

SCHEMA = "query_hash string, item_id string, label string, p array<double>, status string, model_version string"
NAN = float("nan")

JUDGMENTS = [
    ("qb", "i2", "L4", [0.0, 0.0, 0.2, 0.8], "ok", "t@1"),
    ("qb", "i1", "L2:brand", [0.1, 0.7, 0.1, 0.1], "ok", "t@1"),
    ("qb", "i1", "L3", [0.0, 0.0, 1.0, 0.0], "ok", "t@0"),  # judged twice: the greater encoded entry stays
    ("qa", "i9", "L1", [0.91234, 0.08766, 0.0, 0.0], "ok", "t@1"),  # rounded to 4 decimals
    ("qa", "i1", "L3", [0.0, 0.0, 1.0, 0.0], "failed", "t@1"),
    ("qa", "i2", None, [0.25, 0.25, 0.25, 0.25], "ok", "t@1"),
    ("qa", "i3", "L4", [NAN, 0.0, 0.0, 1.0], "ok", "t@1"),
    ("qa", "i4", "L4", [0.0, 0.0, 1.0], "ok", "t@1"),
    ("qa", "i5", "L4", [0.0, 0.0, None, 1.0], "ok", "t@1"),
    ("qa", "i6", "L4", None, "ok", "t@1"),
    ("qc", "i1", "L4", [2.0, 0.0, 0.0, 0.0], "ok", "t@1"),  # no judgment of qc can be held: no row
    ("qc", None, "L4", [0.0, 0.0, 0.0, 1.0], "ok", "t@1"),
    ("qé", "ï", "L4", [0.0, 0.0, 0.0, 1.0], "ok", "t@1"),
]


def resp(*pairs: str) -> str:
    """The pairs' RESP bulk strings, written out by hand: ``$<UTF-8 bytes>\\r\\n<text>\\r\\n`` each."""
    return "".join(f"${len(text.encode())}\r\n{text}\r\n" for text in pairs)


def test_only_cacheable_ok_judgments_are_packed_one_row_per_query(spark):
    entries = transform_cache_entries(spark.createDataFrame(JUDGMENTS, SCHEMA))
    expected = spark.createDataFrame([
        # score = 0.1 × 0.0877 = 0.00877 → 0.0088; the packed judgment is 43 bytes
        ("qa", 1, "$2\r\ni9\r\n$43\r\n" '["L1",[0.9123,0.0877,0.0,0.0],"t@1",0.0088]' "\r\n"),
        # i1: "$41..." (L2:brand) is greater than "$34..." (L3)
        ("qb", 2, resp("i1", '["L2:brand",[0.1,0.7,0.1,0.1],"t@1",0.24]', "i2", '["L4",[0.0,0.0,0.2,0.8],"t@1",0.94]')),
        ("qé", 1, resp("ï", '["L4",[0.0,0.0,0.0,1.0],"t@1",1.0]')),  # lengths count bytes, not characters
    ], "query_hash string, items int, fields string")
    assertDataFrameEqual(entries, expected)


def test_batches_hold_each_query_once_with_its_items(spark, tmp_path):
    entries = transform_cache_entries(spark.createDataFrame(JUDGMENTS, SCHEMA)).toLocalIterator()
    with SpilledBatches(tmp_path / "entries.resp", entries, 2) as batches:
        assert list(batches) == [
            {"qa": HashFields(1, resp("i9", '["L1",[0.9123,0.0877,0.0,0.0],"t@1",0.0088]')),
             "qb": HashFields(2, resp("i1", '["L2:brand",[0.1,0.7,0.1,0.1],"t@1",0.24]',
                                      "i2", '["L4",[0.0,0.0,0.2,0.8],"t@1",0.94]'))},
            {"qé": HashFields(1, resp("ï", '["L4",[0.0,0.0,0.0,1.0],"t@1",1.0]'))},
        ]
