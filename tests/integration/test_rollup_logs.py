"""Daily log rollups on literal DataFrames, expected rows worked out by hand, both runtimes."""

from pyspark.testing import assertDataFrameEqual

from jobs.rollup_logs import (
    RollupLogsConfig,
    run,
    transform_daily_impressions,
    transform_daily_position_ratios,
    transform_daily_searches,
)

LOG_COLUMNS = ("request_id string, query string, item_id string, position int, clicked boolean, carted boolean, "
               "purchased boolean")
LOGS = [
    # r1: b (position 2) clicked and carted, so a above it is skipped; c below it is not
    ("r1", "Red Shoes", "a", 1, False, False, False),
    ("r1", "Red Shoes", "b", 2, True, True, False),
    ("r1", "Red Shoes", "c", 3, False, False, False),
    # r2: another spelling of the same query, a at 1 clicked and bought: nothing above it
    ("r2", "red  shoes!", "a", 1, True, True, True),
    ("r2", "red  shoes!", "b", 2, False, False, False),
    # r3: no click, no skips; a shown at position 1 again for the first spelling
    ("r3", "Red Shoes", "a", 1, False, False, False),
]


def test_searches_per_raw_query_with_its_normalised_key(spark):
    logs = spark.createDataFrame(LOGS, LOG_COLUMNS)
    expected = spark.createDataFrame(
        [("Red Shoes", 2, "red shoes"), ("red  shoes!", 1, "red shoes")],
        "query string, searches long, query_norm string")
    assertDataFrameEqual(transform_daily_searches(logs), expected, checkRowOrder=False)


def test_impressions_per_query_item_position_count_skips_above_a_click(spark):
    logs = spark.createDataFrame(LOGS, LOG_COLUMNS)
    actual = transform_daily_impressions(logs, transform_daily_searches(logs))
    expected = spark.createDataFrame(
        [
            # query, item, position, impressions, clicks, carts, purchases, skips, query_norm
            ("Red Shoes", "a", 1, 2, 0, 0, 0, 1, "red shoes"),  # skipped in r1, not in r3
            ("Red Shoes", "b", 2, 1, 1, 1, 0, 0, "red shoes"),
            ("Red Shoes", "c", 3, 1, 0, 0, 0, 0, "red shoes"),  # below the click: not a skip
            ("red  shoes!", "a", 1, 1, 1, 1, 1, 0, "red shoes"),
            ("red  shoes!", "b", 2, 1, 0, 0, 0, 0, "red shoes"),
        ],
        "query string, item_id string, position int, impressions long, clicks long, carts long, purchases long, "
        "skips long, query_norm string")
    assertDataFrameEqual(actual.select(*expected.columns), expected, checkRowOrder=False)


def test_position_ratios_have_a_row_for_every_position_shown(spark):
    logs = spark.createDataFrame(LOGS, LOG_COLUMNS)
    actual = transform_daily_position_ratios(transform_daily_impressions(logs, transform_daily_searches(logs)))
    # No (raw query, item) was shown at two positions: only position 1 pairs with itself, m = n1:
    # (Red Shoes, a) 2·0/2 and (red  shoes!, a) 1·1/1 on both sides; positions 2 and 3 hold zeros.
    expected = spark.createDataFrame([(1, 1.0, 1.0, 2), (2, 0.0, 0.0, 0), (3, 0.0, 0.0, 0)],
                                     "position int, numerator double, denominator double, pairs long")
    assertDataFrameEqual(actual, expected, checkRowOrder=False)


def test_position_ratios_are_the_same_bits_whatever_order_the_engine_sums_in(spark):
    from pyspark.sql import functions as F

    # 600 items shown at 1 and 2, clicks over impressions of thirds to thirteenths at magnitudes
    # 1..1e6: summed as doubles, these terms gave four different last bits over the orders below.
    rows = []
    for i in range(600):
        shown, scale = 3 + i % 11, 10 ** (i % 7)
        rows.append(("q", f"i{i}", 1, shown * scale + 1, (i % shown) * scale, 0, 0, 0, "q"))
        rows.append(("q", f"i{i}", 2, (shown + 1) * scale, (i * 7 % shown) * scale, 0, 0, 0, "q"))
    impressions = spark.createDataFrame(rows, "query string, item_id string, position int, impressions long, clicks "
                                              "long, carts long, purchases long, skips long, query_norm string")
    orders = [impressions.repartition(parts) for parts in (1, 3, 8, 17)]
    orders += [impressions.orderBy(F.desc("item_id")).repartition(parts) for parts in (3, 17)]
    results = {tuple((r.position, r.numerator.hex(), r.denominator.hex()) for r in
                     transform_daily_position_ratios(order).orderBy("position").collect()) for order in orders}
    assert len(results) == 1, results


def test_run_writes_every_table_and_is_idempotent(lakehouse, sail_spark):
    import datetime as dt

    from lore_ml.lakehouse import SCHEMAS, content_hash

    columns = ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in SCHEMAS["bronze.search_log"].fields[:-1])
    rows = [(r, dt.datetime(2026, 1, 31), "u", q, i, p, c, ca, pu) for r, q, i, p, c, ca, pu in LOGS]
    lakehouse.write_partition(sail_spark.createDataFrame(rows, columns), "bronze.search_log", "2026-01-31")
    cfg = RollupLogsConfig.load(overrides={"ds": "2026-01-31", "lakehouse": {"root": lakehouse.config.root}})
    counts = {"silver.daily_searches": 2, "silver.daily_impressions": 5, "silver.daily_position_ratios": 3}
    assert run(cfg) == counts
    before = content_hash(lakehouse.read_partition("silver.daily_impressions", "2026-01-31"))
    assert run(cfg) == counts
    assert content_hash(lakehouse.read_partition("silver.daily_impressions", "2026-01-31")) == before
