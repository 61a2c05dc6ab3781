"""What a prompt needs about a (query, item) pair, loaded once per job: item fields and the KG.

Used by every job that builds teacher prompts (``synth_cot``, ``judge_head``) so they see the
same item fields and facts the teacher was trained with.
"""

from __future__ import annotations

import logging
from typing import Iterable

log = logging.getLogger("lore.pair_context")


def load_items(lakehouse, ds: str, item_ids: Iterable[str]) -> dict[str, dict]:
    """Item rows by id: the marketplace catalog snapshot at ``ds``, then the Home Depot items."""
    from pyspark.sql import functions as F

    wanted_ids = sorted(set(item_ids))
    if not wanted_ids:
        return {}
    spark = lakehouse.spark
    catalog = lakehouse.read_snapshot("bronze.catalog", ds)
    home_depot = lakehouse.read("bronze.catalog").where(F.col("item_id").startswith("hd-"))
    wanted = spark.createDataFrame([(i,) for i in wanted_ids], "item_id string")
    items: dict[str, dict] = {}
    for frame in ([catalog] if catalog is not None else []) + [home_depot]:
        for row in frame.join(wanted, "item_id").collect():
            items.setdefault(row["item_id"], {**row.asDict(), "attributes": dict(row["attributes"] or {})})
    return items


def load_kg(lakehouse, ds: str):
    """The knowledge graph built for ``ds``; an empty one (with a warning) when there is none."""
    from lore_ml.kg import KnowledgeGraph

    if lakehouse.has_partition("silver.kg_edges", ds):
        return KnowledgeGraph.load(lakehouse.config, ds)
    log.warning("no silver.kg_edges for %s: prompts carry no KG facts (run `lore build-kg` first)", ds)
    return KnowledgeGraph()
