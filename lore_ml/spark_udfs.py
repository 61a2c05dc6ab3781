"""Python functions applied in Spark, so Spark and Python share one definition.

Spark SQL has no NFKC normalisation and no way to express our split rule, so these run the
Python functions themselves. They go through ``mapInPandas`` over the *distinct* keys and a
join back, never through a pandas UDF: Sail evaluates a pandas UDF whose output is filtered or
windowed on row by row (≈1.5 ms a row), and mapInPandas is batch-at-a-time on either runtime.
"""

from __future__ import annotations

from typing import Callable, Iterator

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from lore_ml.labels import SPLIT_OF_LAST_HEX_DIGIT, split_for_query
from lore_ml.text import normalize_query


def with_python_column(
    df: DataFrame, key_col: str, fn: Callable[[str], str], out_col: str, unique_keys: bool = False
) -> DataFrame:
    """``df`` plus ``out_col = fn(key_col)``, computed once per distinct non-null key.

    With ``unique_keys`` (the caller guarantees one row per key, e.g. right after a groupBy on
    it) the function is mapped over ``df`` itself: one pass instead of distinct + join, which on
    Sail would compute ``df`` twice.
    """

    def apply(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield batch.assign(**{out_col: batch[key_col].map(fn, na_action="ignore")})

    if unique_keys:
        return df.mapInPandas(apply, StructType(df.schema.fields + [StructField(out_col, StringType())]))
    keys = df.select(key_col).where(F.col(key_col).isNotNull()).distinct()
    mapped = keys.mapInPandas(apply, f"`{key_col}` string, `{out_col}` string")
    return df.join(mapped, key_col, "left")


def with_query_norm(df: DataFrame, query_col: str = "query", unique_keys: bool = False) -> DataFrame:
    """``df`` plus ``query_norm`` = :func:`lore_ml.text.normalize_query` of ``query_col`` (null stays null)."""
    return with_python_column(df, query_col, normalize_query, "query_norm", unique_keys)


def with_split(df: DataFrame, query_col: str, out_col: str = "split", unique_keys: bool = False) -> DataFrame:
    """``df`` plus ``out_col`` = :func:`lore_ml.labels.split_for_query` of ``query_col``."""
    return with_python_column(df, query_col, split_for_query, out_col, unique_keys)


def lookup_column(column: Column, mapping: dict, default) -> Column:
    """``mapping[column]`` (``default`` for other values) as a CASE: Sail builds a literal map
    (``create_map``) for every row it looks one up in."""
    result = F.lit(default)
    for key, value in mapping.items():
        result = F.when(column == F.lit(key), F.lit(value)).otherwise(result)
    return result


def split_column(normalized: Column) -> Column:
    """Spark column version of :func:`lore_ml.labels.split_for_query` for *normalised* queries
    (already stripped and case-folded, so the rule is the last hex digit of their SHA-1): no
    Python worker needed."""
    return lookup_column(F.substring(_sha1_hex(normalized), -1, 1), SPLIT_OF_LAST_HEX_DIGIT, "train")


def query_hash_column(normalized: Column) -> Column:
    """Spark column version of :func:`lore_ml.text.query_hash`: SHA-1 of the UTF-8 bytes, 16 hex digits."""
    return F.substring(_sha1_hex(normalized), 1, 16)


def _sha1_hex(text: Column) -> Column:
    """Hex SHA-1 of the UTF-8 bytes of ``text``, as :mod:`hashlib` computes it."""
    return F.sha1(text.cast("binary"))
