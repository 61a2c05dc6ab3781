"""Spark and the Python normaliser give byte-identical query keys (the shim relies on it)."""

import random

from pyspark.sql import functions as F

from lore_ml.marketplace import Marketplace, MarketplaceSpec
from lore_ml.labels import split_for_query
from lore_ml.spark_udfs import query_hash_column, split_column, with_query_norm
from lore_ml.text import normalize_query, query_hash

ODD_CHARACTERS = (
    "ＡＢＣ１２３ｘ"  # full-width
    "éÉñçøßİıŁ"  # accents, dotted/dotless i, sharp s
    "\u2010\u2011\u2013\u2014\u2212\uff0d"  # dashes
    "'\u2019\"\u201c\u201d"  # quotes
    "\u00a0\u2009\u3000\t"  # unusual spaces
    "ﬁ½²™®"  # ligature, fraction, superscript, symbols
    "e\u0301"  # combining accent
    "中文ロゴ한국"  # CJK
    "🙂👟"  # emoji
    "#./+-_,;:!?()[]&%$@"
)


def varied_queries(n: int) -> list[str]:
    rng = random.Random(11)
    market = [q.text for q in Marketplace(MarketplaceSpec(rows=300_000, seed=2)).queries]
    units = ["20lbs", "55\"", "6 ft", "27.5 inch", "128GB", "65W", "8mm", "5'"]
    out = list(market[: n // 2])
    while len(out) < n:
        words = [rng.choice(market).split()[0] if market else "shoe" for _ in range(rng.randint(1, 3))]
        words += [rng.choice(units)] if rng.random() < 0.3 else []
        words += ["".join(rng.choice(ODD_CHARACTERS) for _ in range(rng.randint(1, 4)))]
        rng.shuffle(words)
        out.append(" ".join(words) if rng.random() < 0.8 else "  ".join(words).upper())
    return out


def test_spark_and_python_give_identical_keys(spark):
    queries = varied_queries(10_000)
    assert len(set(queries)) > 5_000
    df = spark.createDataFrame([(q,) for q in queries], "query string")
    keyed = with_query_norm(df)
    rows = keyed.select("query", F.col("query_norm").alias("norm"), query_hash_column(F.col("query_norm")).alias("hash")).collect()
    assert len(rows) == len(queries)  # duplicates in the corpus join back to every row
    mismatches = [(r["query"], r["norm"], r["hash"]) for r in rows
                  if (r["norm"], r["hash"]) != (normalize_query(r["query"]), query_hash(normalize_query(r["query"])))]
    assert mismatches == []


def test_the_spark_split_of_a_normalised_query_is_the_python_split(spark):
    norms = sorted({normalize_query(q) for q in varied_queries(10_000)})
    df = spark.createDataFrame([(q,) for q in norms], "query_norm string")
    rows = df.select("query_norm", split_column(F.col("query_norm")).alias("split")).collect()
    assert len(rows) == len(norms) and {r["split"] for r in rows} == {"train", "dev", "test"}
    assert [r["query_norm"] for r in rows if r["split"] != split_for_query(r["query_norm"])] == []
