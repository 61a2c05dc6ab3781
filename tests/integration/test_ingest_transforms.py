"""The ingest validation transforms on small literal DataFrames, on both Spark runtimes."""

import datetime as dt

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs.ingest import (
    RAW_FIELDS,
    transform_accepted,
    transform_quarantine,
    transform_validate_catalog,
    transform_validate_human_labels,
    transform_validate_search_log,
)

STAGED_META = "_line long, _source_file string, _error string, _record string"


def staged(spark, source, rows):
    """Rows as staged by lore_ml.raw_io: every field a string plus the meta columns."""
    fields = RAW_FIELDS[source]
    schema = ", ".join(f"{f} string" for f in fields) + ", " + STAGED_META
    full = [tuple(row.get(f) for f in fields) + (i, "drop.csv", row.get("_error"), row.get("_record"))
            for i, row in enumerate(rows)]
    return spark.createDataFrame(full, schema)


def reasons(df):
    return [r["reason"] for r in df.orderBy("_line").collect()]


def test_search_log_reasons(spark):
    good = dict(request_id="r1", event_ts="2026-01-31 10:00:00", user_id="u1", query="red shoes",
                item_id="it1", position="1", clicked="true", carted="false", purchased=None)
    rows = [
        good,
        {**good, "request_id": None},
        {**good, "query": "   "},
        {**good, "position": "-2"},
        {**good, "position": "abc"},
        {**good, "event_ts": "yesterday"},
        {**good, "clicked": "maybe"},
        {**good, "item_id": "ghost"},
        {"_error": "malformed CSV row (wrong number of fields)", "_record": "a,b"},
    ]
    known = spark.createDataFrame([("it1",), ("it2",)], "item_id string")
    validated = transform_validate_search_log(staged(spark, "search_log", rows), known)
    assert reasons(validated) == [
        None,
        "request_id: missing",
        "query: missing or empty",
        "position: must be >= 1",
        "position: not an integer",
        "event_ts: not a timestamp",
        "clicked: not a boolean",
        "item_id: unknown item (not in the catalog snapshot)",
        "malformed CSV row (wrong number of fields)",
    ]
    expected = spark.createDataFrame(
        [("r1", dt.datetime(2026, 1, 31, 10, 0), "u1", "red shoes", "it1", 1, True, False, False)],
        "request_id string, event_ts timestamp, user_id string, query string, item_id string, position int, "
        "clicked boolean, carted boolean, purchased boolean",
    )
    assertDataFrameEqual(transform_accepted(validated), expected, checkRowOrder=False)
    quarantined = transform_quarantine(validated)
    assert quarantined.count() == len(rows) - 1
    raw_of_bad_position = quarantined.where(F.col("reason") == "position: must be >= 1").first()["record"]
    assert '"position":"-2"' in raw_of_bad_position.replace(" ", "")


def test_catalog_first_duplicate_wins_and_types(spark):
    rows = [
        dict(item_id="a", title="first a", price="10.5", attributes='{"color": "red"}'),
        dict(item_id="b", title="bee", price="n/a"),
        dict(item_id="a", title="second a", price="3"),
        dict(item_id="c", title="", price="1"),
        dict(item_id="d", title="dee", price="-1"),
        dict(item_id="e", title="ee", attributes="[1, 2]"),
        dict(item_id=None, title="no id"),
    ]
    validated = transform_validate_catalog(staged(spark, "catalog", rows))
    assert reasons(validated) == [
        None,
        "price: not a number",
        "item_id: duplicate of an earlier row",
        "title: missing",
        "price: negative",
        "attributes: not a JSON object of strings",
        "item_id: missing",
    ]
    accepted = transform_accepted(validated).collect()
    assert [(r["item_id"], r["title"], r["price"], r["attributes"]) for r in accepted] == [
        ("a", "first a", 10.5, {"color": "red"})
    ]


def test_human_labels_checks_and_split(spark):
    rows = [
        dict(query="wood screws", item_id="it1", label="l4", rating="2.67"),
        dict(query="angle bracket", item_id="it1", label="L2", dimension="Brand"),
        dict(query="x", item_id="it1", label="L5"),
        dict(query="x", item_id="it1", label="L2", dimension="smell"),
        dict(query="x", item_id="it9", label="L1"),
        dict(query="x", item_id="it1", label="L1", rating="high"),
    ]
    known = spark.createDataFrame([("it1",)], "item_id string")
    validated = transform_validate_human_labels(staged(spark, "human_labels", rows), known, "marketplace")
    assert reasons(validated) == [
        None,
        None,
        "label: not one of L1, L2, L3, L4",
        "dimension: not a known demand dimension",
        "item_id: unknown item (not in the catalog snapshot)",
        "rating: not a number",
    ]
    expected = spark.createDataFrame(
        [("wood screws", "it1", "L4", None, 2.67, "test", "marketplace"),
         ("angle bracket", "it1", "L2", "brand", None, "train", "marketplace")],
        "query string, item_id string, label string, dimension string, rating double, split string, source string",
    )
    assertDataFrameEqual(transform_accepted(validated), expected, checkRowOrder=False)
