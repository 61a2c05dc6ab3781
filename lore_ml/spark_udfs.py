"""Python functions exposed to Spark as vectorised UDFs, so Spark and Python share one definition.

The UDF objects are built per call: a pandas_udf is bound to the Spark API (Connect or classic)
active when it is created, and one process may use both runtimes.
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql import Column
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import StringType

from lore_ml.labels import split_for_query


def _split_series(queries: pd.Series) -> pd.Series:
    return queries.map(split_for_query)


def split_for_query_column(query: Column) -> Column:
    """Spark column version of :func:`lore_ml.labels.split_for_query`."""
    return pandas_udf(_split_series, StringType())(query)
