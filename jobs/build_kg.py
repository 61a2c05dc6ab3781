"""Build the knowledge graph the teacher's prompts are grounded in (DESIGN.md §2).

From the catalog snapshot and a trailing window of clicks (``silver.daily_impressions``, see
:mod:`jobs.rollup_logs`), writes for ``ds``:

* ``silver.kg_nodes``: items, brands, categories, attribute values and query terms, with support;
* ``silver.kg_edges`` (``src``, ``dst``, ``edge_type``, ``confidence``, ``support``):
  ``has_brand`` / ``in_category`` / ``has_value`` (item facts), ``sub_brand`` (parent → sub-brand,
  from brand names), ``competitor`` (parent brands selling in the same categories),
  ``term_category`` (query term → category of the items clicked for it), ``synonym`` (phrases
  that swap for each other in queries whose clicks land on the same items) and
  ``value_synonym`` (query term → the attribute value its clicked items carry).

Node ids are ``<type>:<name>``, e.g. ``brand:stridex``, ``value:color=red``, ``term:sneakers``.
:mod:`lore_ml.kg` loads the graph and retrieves the facts for one (query, item).

    python -m jobs.build_kg --ds 2026-01-31
"""

from __future__ import annotations

import logging
import sys

from pydantic import Field
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lore_ml.config import InputsNotReady, WindowJobConfig

log = logging.getLogger("lore.build_kg")

ITEM_FACT_DIMENSIONS_EXCLUDED = ("category", "brand")  # they have their own edge types


class BuildKgConfig(WindowJobConfig):
    """Build silver.kg_nodes and silver.kg_edges for one day."""

    min_support: int = Field(5, ge=1, description="Distinct queries (or query pairs) an edge mined from behaviour needs.")
    term_category_min_confidence: float = Field(0.3, gt=0, le=1, description="Min P(category | term).")
    synonym_min_support: int = Field(2, ge=1, description="Query pairs a synonym needs.")
    synonym_min_overlap: float = Field(0.2, gt=0, le=1, description="Min co-click overlap of two queries.")
    synonym_max_queries_per_item: int = Field(50, ge=2, description="Top queries per item paired for synonyms.")
    value_synonym_min_confidence: float = Field(0.7, gt=0, le=1, description="Min P(value | term).")
    value_synonym_min_lift: float = Field(
        3.0, ge=1, description="Min share of the term's queries voting for the value over the share "
        "expected from their categories alone (see transform_value_synonym_edges).")
    competitor_min_overlap: float = Field(0.2, gt=0, le=1, description="Min Jaccard of two brands' categories.")


def _node_id(kind: str, name: Column) -> Column:
    return F.concat(F.lit(f"{kind}:"), name)


def _edges(df: DataFrame, edge_type: str) -> DataFrame:
    return df.select(
        "src", "dst", F.lit(edge_type).alias("edge_type"),
        F.col("confidence").cast("double").alias("confidence"), F.col("support").cast("long").alias("support"),
    )


def _lower(col: str) -> Column:
    return F.lower(F.trim(F.col(col)))


def transform_item_facts(catalog: DataFrame) -> DataFrame:
    """(item_id, dimension, value): every item's brand, category and attribute values, lower-cased.

    The item edges, the query votes and the synonym filter all read these; the job stages them
    once rather than exploding the catalog's attribute maps for each.
    """
    brand = catalog.select("item_id", F.lit("brand").alias("dimension"), _lower("brand").alias("value"))
    category = catalog.select("item_id", F.lit("category").alias("dimension"), _lower("category").alias("value"))
    return brand.unionByName(category).where(F.col("value").isNotNull()).unionByName(_attribute_values(catalog))


def _fact_node(dimension: Column, value: Column) -> Column:
    """The node an item fact points at: ``brand:<v>``, ``category:<v>`` or ``value:<dimension>=<v>``."""
    return (
        F.when(dimension == "brand", _node_id("brand", value))
        .when(dimension == "category", _node_id("category", value))
        .otherwise(_node_id("value", F.concat_ws("=", dimension, value)))
    )


def transform_item_edges(facts: DataFrame) -> DataFrame:
    """Item → brand / category / attribute value (:func:`transform_item_facts`), one edge per
    fact (confidence 1)."""
    dimension = F.col("dimension")
    edge_type = F.when(dimension == "brand", F.lit("has_brand")).when(
        dimension == "category", F.lit("in_category")).otherwise(F.lit("has_value"))
    return facts.select(
        _node_id("item", F.col("item_id")).alias("src"), _fact_node(dimension, F.col("value")).alias("dst"),
        edge_type.alias("edge_type"), F.lit(1.0).alias("confidence"), F.lit(1).cast("long").alias("support"))


def transform_brands(catalog: DataFrame) -> DataFrame:
    """(brand, items, categories): each lower-cased brand with its item count and the set of its
    items' categories. A catalog has few brands: the job stages this small table, which the
    sub-brand and competitor joins then read several times instead of rescanning the catalog."""
    return catalog.where(F.col("brand").isNotNull()).groupBy(_lower("brand").alias("brand")).agg(
        F.count("*").alias("items"), F.collect_set(_lower("category")).alias("categories"))


def transform_brand_edges(brands: DataFrame, cfg: BuildKgConfig) -> DataFrame:
    """``sub_brand`` (a brand named '<parent> <line>') and ``competitor`` (same categories), from
    :func:`transform_brands`."""
    parents = brands.select(F.col("brand").alias("parent"))
    sub = brands.join(parents, F.col("brand").startswith(F.concat(F.col("parent"), F.lit(" "))))
    sub_edges = sub.select(
        _node_id("brand", F.col("parent")).alias("src"), _node_id("brand", F.col("brand")).alias("dst"),
        F.lit(1.0).alias("confidence"), F.col("items").alias("support"))
    # Competition is between parent brands: map every sub-brand to its parent first.
    parent_of = sub.select(F.col("brand").alias("child"), "parent")
    by_parent = (
        brands.select(F.col("brand").alias("child"), F.explode("categories").alias("category"))
        .join(parent_of, "child", "left")
        .select(F.coalesce("parent", "child").alias("brand"), "category")
        .distinct()
    )
    sizes = by_parent.groupBy("brand").agg(F.count("*").alias("categories"))
    a, b = by_parent.alias("a"), by_parent.alias("b")
    shared = (
        a.join(b, (F.col("a.category") == F.col("b.category")) & (F.col("a.brand") < F.col("b.brand")))
        .groupBy(F.col("a.brand").alias("b1"), F.col("b.brand").alias("b2"))
        .agg(F.count("*").alias("shared"))
        .join(sizes.withColumnRenamed("brand", "b1").withColumnRenamed("categories", "n1"), "b1")
        .join(sizes.withColumnRenamed("brand", "b2").withColumnRenamed("categories", "n2"), "b2")
        .withColumn("confidence", F.col("shared") / (F.col("n1") + F.col("n2") - F.col("shared")))
        .where(F.col("confidence") >= cfg.competitor_min_overlap)
    )
    competitor_edges = shared.select(
        _node_id("brand", F.col("b1")).alias("src"), _node_id("brand", F.col("b2")).alias("dst"),
        "confidence", F.col("shared").alias("support"))
    return _edges(sub_edges, "sub_brand").unionByName(_edges(competitor_edges, "competitor"))


def transform_clicks(daily_impressions: DataFrame) -> DataFrame:
    """Clicks per (normalised query, item) over the window's ``silver.daily_impressions`` rows."""
    return (
        daily_impressions.where((F.col("clicks") > 0) & (F.col("query_norm") != ""))
        .groupBy("query_norm", "item_id")
        .agg(F.sum("clicks").cast("long").alias("clicks"))
    )


def _terms(df: DataFrame) -> DataFrame:
    return df.select("*", F.explode(F.array_distinct(F.split("query_norm", " "))).alias("term"))


def transform_query_votes(clicks: DataFrame, facts: DataFrame) -> DataFrame:
    """Per query and fact dimension (``category`` and each attribute): the value that more than half
    of its clicks land on, as (query_norm, dimension, value); a query split evenly casts no vote.

    ``facts`` are :func:`transform_item_facts`; brands cast no vote. The term→category and
    value-synonym edges both count these votes: counting queries rather than clicks keeps one
    heavy head query from deciding what a term means. The job stages them once, since both edge
    types read them several times.
    """
    voting = facts.where(F.col("dimension") != "brand")
    per = clicks.join(voting, "item_id").groupBy("query_norm", "dimension", "value").agg(F.sum("clicks").alias("c"))
    # A strict majority is unique, so max_by needs no tie-break (and is a hash aggregate, not a window).
    top = per.groupBy("query_norm", "dimension").agg(
        F.sum("c").alias("total"), F.max("c").alias("top"), F.max_by("value", "c").alias("value"))
    return top.where(2 * F.col("top") > F.col("total")).select("query_norm", "dimension", "value")


def _value_shares(df: DataFrame, keys: list[str]) -> DataFrame:
    """Per ``keys`` and value: the votes (rows) for the value, the votes in all, and their ratio.

    Each key's values are collected next to its total, so the per-value counts are computed once
    (a join of them with their own totals would make Sail compute them twice)."""
    per = df.groupBy(*keys, "value").agg(F.count("*").alias("support"))
    by_key = per.groupBy(*keys).agg(
        F.sum("support").alias("queries"), F.collect_list(F.struct("value", "support")).alias("values"))
    return by_key.select(*keys, "queries", F.inline("values")).withColumn(
        "confidence", F.col("support") / F.col("queries"))


def _term_edges(votes: DataFrame, min_support: int, min_confidence: float) -> DataFrame:
    """term → value edges: confidence = share of the term's voting queries that vote for the value."""
    return _value_shares(_terms(votes), ["term", "dimension"]).where(
        (F.col("support") >= min_support) & (F.col("confidence") >= min_confidence))


def _attribute_values(catalog: DataFrame) -> DataFrame:
    return catalog.select("item_id", F.explode("attributes").alias("dimension", "value")).where(
        ~F.col("dimension").isin(*ITEM_FACT_DIMENSIONS_EXCLUDED) & F.col("value").isNotNull()
    ).select("item_id", "dimension", F.lower("value").alias("value"))


def transform_term_category_edges(votes: DataFrame, cfg: BuildKgConfig) -> DataFrame:
    """Query term → category: the share of queries with the term whose clicks mostly land there
    (``votes`` from :func:`transform_query_votes`)."""
    votes = votes.where(F.col("dimension") == "category")
    edges = _term_edges(votes, cfg.min_support, cfg.term_category_min_confidence).select(
        _node_id("term", F.col("term")).alias("src"), _node_id("category", F.col("value")).alias("dst"),
        "confidence", "support")
    return _edges(edges, "term_category")


def transform_synonym_candidates(clicks: DataFrame, cfg: BuildKgConfig) -> DataFrame:
    """Phrase pairs (p1 < p2) that replace each other in two queries whose clicks land on the same
    items, with support and confidence; :func:`transform_synonym_edges` drops the alternatives.

    Queries q1 < q2 sharing clicked items with overlap = Σ min(clicks) / (clicks1 + clicks2 - Σ min)
    ≥ ``synonym_min_overlap``, sharing at least one word and differing by one or two words on
    each side yield the pair of differing phrases; support = number of such query pairs,
    confidence = their mean overlap. Numbers never count (they are quantities). Only each item's
    ``synonym_max_queries_per_item`` most-clicked queries are paired.

    The query pairs come from each item's list of queries, exploded against itself: on Sail a
    self-join recomputes both sides, the list is built once.
    """
    by_query = clicks.groupBy("query_norm").agg(
        F.sum("clicks").alias("total"), F.collect_list(F.struct("item_id", "clicks")).alias("items"))
    entry = F.struct((-F.col("clicks")).alias("order"), "query_norm", "clicks", "total")
    per_item = by_query.select("query_norm", "total", F.inline("items")).groupBy("item_id").agg(
        F.slice(F.array_sort(F.collect_list(entry)), 1, cfg.synonym_max_queries_per_item).alias("queries"))
    pairs = (
        per_item.select(F.explode("queries").alias("a"), "queries")
        .select("a", F.explode("queries").alias("b"))
        .where(F.col("a.query_norm") < F.col("b.query_norm"))
        .select(F.col("a.query_norm").alias("q1"), F.col("b.query_norm").alias("q2"),
                F.least("a.clicks", "b.clicks").alias("shared"), F.col("a.total").alias("t1"),
                F.col("b.total").alias("t2"))
        .groupBy("q1", "q2", "t1", "t2")
        .agg(F.sum("shared").alias("shared"))
        .withColumn("overlap", F.col("shared") / (F.col("t1") + F.col("t2") - F.col("shared")))
        .where(F.col("overlap") >= cfg.synonym_min_overlap)
    )
    w1, w2 = F.split("q1", " "), F.split("q2", " ")
    diffs = pairs.select(
        F.array_except(w1, w2).alias("d1"), F.array_except(w2, w1).alias("d2"),
        F.size(F.array_intersect(w1, w2)).alias("context"), "overlap",
    ).where(F.size("d1").between(1, 2) & F.size("d2").between(1, 2) & (F.col("context") >= 1))
    phrases = diffs.select(
        F.array_join("d1", " ").alias("p1"), F.array_join("d2", " ").alias("p2"), "overlap"
    ).select(F.least("p1", "p2").alias("p1"), F.greatest("p1", "p2").alias("p2"), "overlap")
    has_digit = F.col("p1").rlike("[0-9]") | F.col("p2").rlike("[0-9]")
    return (
        phrases.where(~has_digit)
        .groupBy("p1", "p2")
        .agg(F.count("*").alias("support"), F.avg("overlap").alias("confidence"))
        .where(F.col("support") >= cfg.synonym_min_support)
    )


def transform_synonym_edges(candidates: DataFrame, facts: DataFrame) -> DataFrame:
    """``synonym`` edges: the :func:`transform_synonym_candidates` that are not alternatives, i.e.
    two brands (competitors) or two values of one attribute (red/blue) per ``facts``
    (:func:`transform_item_facts`). Only the candidates' phrases are looked up, never every pair
    of brands or values."""
    kinds = facts.where(F.col("dimension") != "category").select(
        F.col("dimension").alias("kind"), F.col("value").alias("phrase")).distinct()
    alternatives = (
        candidates.select("p1", "p2", F.explode(F.array("p1", "p2")).alias("phrase"))
        .join(kinds, "phrase")
        .groupBy("p1", "p2", "kind").agg(F.count("*").alias("sides"))
        .where(F.col("sides") == 2)  # both phrases are of this kind (p1 != p2)
        .select("p1", "p2")
    )
    edges = candidates.join(alternatives, ["p1", "p2"], "left_anti").select(
        _node_id("term", F.col("p1")).alias("src"), _node_id("term", F.col("p2")).alias("dst"), "confidence", "support")
    return _edges(edges, "synonym")


def transform_value_synonym_edges(votes: DataFrame, cfg: BuildKgConfig) -> DataFrame:
    """Query term → attribute value that the queries containing it mostly click, far more often than
    their categories alone would make them (``votes`` from :func:`transform_query_votes`).

    Lift = the share of the term's queries voting for the value ÷ the share expected were each of
    them that votes for a category to vote like that category's queries: Σ over the term's
    queries of P(value | their category), over their number. A category's word is then not a
    synonym of the value most of its items carry ("shirt" → polyester), nor is a value most items
    carry (``bundle=single``) anyone's; a term none of whose queries votes for a category gets no
    value synonym.
    """
    categories = votes.where(F.col("dimension") == "category").select("query_norm", F.col("value").alias("category"))
    attribute_votes = votes.where(F.col("dimension") != "category")
    category_shares = _value_shares(attribute_votes.join(categories, "query_norm"), ["category", "dimension"]).select(
        "category", "dimension", "value", F.col("confidence").alias("category_share"))
    # The term's voting queries per category, from the categorised queries' terms (a few per query)
    # joined with their votes: no second explode of every vote.
    term_categories = (
        _terms(categories).join(attribute_votes.select("query_norm", "dimension"), "query_norm")
        .groupBy("term", "dimension", "category").agg(F.count("*").alias("category_queries"))
    )
    edges = (
        _term_edges(attribute_votes, cfg.min_support, cfg.value_synonym_min_confidence)
        .where(F.col("term") != F.col("value"))
        .join(term_categories, ["term", "dimension"])
        .join(category_shares, ["category", "dimension", "value"], "left")
        .groupBy("term", "dimension", "value", "confidence", "support")
        .agg((F.sum(F.col("category_queries") * F.coalesce("category_share", F.lit(0.0)))
              / F.sum("category_queries")).alias("expected"))
        .where(F.col("confidence") >= cfg.value_synonym_min_lift * F.col("expected"))
        .select(_node_id("term", F.col("term")).alias("src"),
                _node_id("value", F.concat_ws("=", "dimension", "value")).alias("dst"), "confidence", "support")
    )
    return _edges(edges, "value_synonym")


def transform_mined_edges(
    brands: DataFrame, facts: DataFrame, votes: DataFrame, synonym_candidates: DataFrame, cfg: BuildKgConfig
) -> DataFrame:
    """Every edge type except the item facts, from :func:`transform_brands`,
    :func:`transform_item_facts`, :func:`transform_query_votes` and
    :func:`transform_synonym_candidates`: one row per (src, dst, edge_type)."""
    return (
        transform_brand_edges(brands, cfg)
        .unionByName(transform_term_category_edges(votes, cfg))
        .unionByName(transform_synonym_edges(synonym_candidates, facts))
        .unionByName(transform_value_synonym_edges(votes, cfg))
        .groupBy("src", "dst", "edge_type")
        .agg(F.max("confidence").alias("confidence"), F.max("support").alias("support"))
    )


def transform_kg_edges(facts: DataFrame, mined_edges: DataFrame) -> DataFrame:
    """The item edges of ``facts`` plus the :func:`transform_mined_edges`.

    Item facts are unique as built (ingest keeps one catalog row per item id; attributes are a
    map), so only the small mined edge sets are deduplicated, not the million item edges.
    """
    return transform_item_edges(facts).unionByName(mined_edges)


def transform_kg_nodes(facts: DataFrame, mined_edges: DataFrame, catalog: DataFrame) -> DataFrame:
    """One node per id seen in an edge of :func:`transform_kg_edges`; support = edges touching it;
    items keep their title, categories their path (the greatest where items disagree, so that a
    re-run writes the same table).

    Counted from the item facts (per item, and per brand / category / value) and the few mined
    edges rather than from the million written edges: no read-back and no aggregate over both ends
    of every edge.
    """
    items = facts.groupBy("item_id").agg(F.count("*").alias("support")).join(
        catalog.select("item_id", "title"), "item_id").select(
        _node_id("item", F.col("item_id")).alias("node_id"), F.create_map(F.lit("title"), "title").alias("properties"),
        "support")
    fact_ends = facts.groupBy("dimension", "value").agg(F.count("*").alias("support")).select(
        _fact_node(F.col("dimension"), F.col("value")).alias("node_id"), "support")
    mined_ends = mined_edges.select(F.col("src").alias("node_id")).unionByName(
        mined_edges.select(F.col("dst").alias("node_id"))).withColumn("support", F.lit(1).cast("long"))
    paths = catalog.where(F.col("category").isNotNull()).groupBy(
        _node_id("category", _lower("category")).alias("node_id")).agg(F.max("category_path").alias("path"))
    others = (
        fact_ends.unionByName(mined_ends).groupBy("node_id").agg(F.sum("support").alias("support"))
        .join(paths.select("node_id", F.create_map(F.lit("path"), "path").alias("properties")), "node_id", "left")
    )
    kind = F.split("node_id", ":", 2)
    return items.unionByName(others).select(
        "node_id", kind.getItem(0).alias("node_type"), kind.getItem(1).alias("name"), "properties",
        F.col("support").cast("long").alias("support"))


def run(cfg: BuildKgConfig) -> dict[str, int]:
    """Write both tables for cfg.ds; return the edge count per type."""
    from jobs.rollup_logs import read_window
    from lore_ml.lakehouse import open_lakehouse, staging_area

    lakehouse = open_lakehouse(cfg)
    catalog = lakehouse.read_snapshot("bronze.catalog", cfg.ds_str)
    if catalog is None:
        raise InputsNotReady(f"no bronze.catalog snapshot at or before {cfg.ds_str}: run `lore ingest` first")
    daily_impressions = read_window(lakehouse, "silver.daily_impressions", cfg)
    # Sail keeps no cache(): results read by several transforms are staged once.
    with staging_area(cfg.lakehouse, "build_kg", cfg.ds_str) as scratch:
        clicks = scratch.stage(transform_clicks(daily_impressions), "clicks")
        facts = scratch.stage(transform_item_facts(catalog), "item_facts")
        votes = scratch.stage(transform_query_votes(clicks, facts), "votes")
        synonyms = scratch.stage(transform_synonym_candidates(clicks, cfg), "synonyms")
        brands = scratch.stage(transform_brands(catalog), "brands")
        mined = scratch.stage(transform_mined_edges(brands, facts, votes, synonyms, cfg), "mined")
        lakehouse.write_partition(transform_kg_edges(facts, mined), "silver.kg_edges", cfg.ds_str)
        lakehouse.write_partition(transform_kg_nodes(facts, mined, catalog), "silver.kg_nodes", cfg.ds_str)
    edges = lakehouse.read_partition("silver.kg_edges", cfg.ds_str)
    return {r["edge_type"]: r["count"] for r in edges.groupBy("edge_type").count().collect()}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = BuildKgConfig.from_cli(argv, prog="python -m jobs.build_kg")
    counts = run(cfg)
    print(f"knowledge graph ds={cfg.ds_str} window {cfg.first_ds}..{cfg.ds_str}")
    print(f"{'edge type':<16}{'edges':>12}")
    for edge_type, count in sorted(counts.items()):
        print(f"{edge_type:<16}{count:>12,}")
    return 0


if __name__ == "__main__":
    from lore_ml.cli import run_entry_point

    sys.exit(run_entry_point(main))
