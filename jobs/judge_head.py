"""Judge head queries × their candidate items with the teacher → ``gold.relevance_judgments``.

Candidates are the items impressed for a head query in the trailing window (the window's
``silver.daily_impressions``, :mod:`jobs.rollup_logs`), the most impressed first, capped per
query. Each pair gets the teacher's prompt (rules, KG facts, item fields); pairs already judged
by the same model version with the same prompt (any earlier run or day) are reused, not
re-judged, so a re-run costs nothing. The rest go to the inference backend of ``judge.backend``
(vLLM in production, transformers anywhere). Failures are written with ``status=failed`` and
their reason in ``reasoning``; ``fill_cache`` serves only ``ok``. Each ``ok`` judgment is also
saved as it comes (:class:`lore_ml.checkpoint.RunCheckpoint`, under
``<lakehouse.root>/_checkpoints/judge_head/<ds>/``), so a run that fails or is killed before
it writes the table resumes there: the next run of the day judges only the rest.

    python -m jobs.judge_head --ds 2026-01-31 --set judge.backend=vllm --set judge.model_path=artifacts/teacher-rl
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from lore_ml.config import WindowJobConfig
from lore_ml.inference import InferenceConfig
from lore_ml.prompts import DEFAULT_RULES_DIGEST, RulesDigest

log = logging.getLogger("lore.judge_head")


class JudgeHeadConfig(WindowJobConfig):
    """Judge the head queries of ``ds`` against the items impressed for them."""

    judge: InferenceConfig = Field(default_factory=InferenceConfig, description="Backend and model.")
    tiers: list[Literal["head", "mid", "tail"]] = Field(["head"], description="Which query tiers to judge.")
    max_items_per_query: int = Field(50, ge=1, description="Candidates per query, most impressed first.")
    max_facts: int = Field(6, ge=0, description="KG facts per prompt (as in training).")
    rules_in_prompt: RulesDigest = Field(DEFAULT_RULES_DIGEST, description="Rules digest (as in training).")
    chunk_size: int = Field(256, ge=1, description="Pairs per backend call (progress granularity).")
    checkpoint_every: int = Field(2048, ge=1, description="Judgments per saved part of the run's checkpoint "
                                  "(what a killed run can lose).")


def transform_impressions(daily_impressions: DataFrame) -> DataFrame:
    """(query_norm, item_id, impressions) over the window's ``silver.daily_impressions`` rows."""
    return daily_impressions.groupBy("query_norm", "item_id").agg(
        F.sum("impressions").cast("long").alias("impressions"))


def transform_candidates(impressions: DataFrame, tiers: DataFrame, cfg: JudgeHeadConfig) -> DataFrame:
    """(query_norm, query_hash, item_id, impressions): each chosen query's most impressed items.

    ``impressions`` comes from :func:`transform_impressions`; ``tiers`` is the day's
    ``silver.query_tiers``. Ties are broken by item id so the cap is deterministic.
    """
    chosen = tiers.where(F.col("tier").isin(list(cfg.tiers))).select("query_norm", "query_hash")
    rank = F.row_number().over(Window.partitionBy("query_norm").orderBy(F.desc("impressions"), "item_id"))
    return (
        impressions.join(chosen, "query_norm")
        .withColumn("rank", rank)
        .where(F.col("rank") <= cfg.max_items_per_query)
        .select("query_norm", "query_hash", "item_id", "impressions")
    )


def prompt_hash(prompt: str) -> str:
    """The prompt version a judgment was made with (any change of rules, facts or fields changes it).

    >>> prompt_hash("abc")
    'a9993e364706816a'
    """
    return hashlib.sha1(prompt.encode("utf-8")).hexdigest()[:16]


@dataclass
class JudgeSummary:
    pairs: int = 0
    reused: int = 0
    resumed: int = 0
    judged: int = 0
    failed: int = 0
    missing_items: int = 0
    labels: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    model_version: str = ""

    def format(self) -> str:
        rate = self.judged / self.seconds if self.seconds else 0.0
        lines = [
            f"model {self.model_version}: {self.pairs:,} pairs — {self.reused:,} reused, {self.resumed:,} resumed "
            f"from an interrupted run, {self.judged:,} judged "
            f"({rate:,.1f}/s), {self.failed:,} failed, {self.missing_items:,} skipped (item not in catalog)",
            f"{'label':<8}{'pairs':>8}",
        ]
        lines += [f"{label:<8}{n:>8,}" for label, n in sorted(self.labels.items())]
        return "\n".join(lines)


def transform_previous_judgments(judgments: DataFrame, candidates: DataFrame, model_version: str) -> DataFrame:
    """The latest ``ok`` judgment by ``model_version`` in ``judgments`` (``gold.relevance_judgments``
    up to ds) of each (query_hash, item_id) of ``candidates`` (:func:`transform_candidates`), per
    prompt_hash: what this run can reuse. Only that reaches the driver, however many days and
    queries the table holds."""
    latest = Window.partitionBy("query_hash", "item_id", "prompt_hash").orderBy(F.desc("ds"))
    return (
        judgments.where((F.col("model_version") == model_version) & (F.col("status") == "ok"))
        .join(candidates.select("query_hash", "item_id"), ["query_hash", "item_id"], "left_semi")
        .withColumn("n", F.row_number().over(latest))
        .where(F.col("n") == 1)
        .select("query_hash", "item_id", "prompt_hash", "label", "p", "score", "reasoning")
    )


def _previous_judgments(lakehouse, candidates: DataFrame, model_version: str, ds: str) -> dict[tuple, dict]:
    """:func:`transform_previous_judgments` by (query_hash, item_id, prompt_hash)."""
    if not lakehouse.exists("gold.relevance_judgments"):
        return {}
    judgments = lakehouse.read("gold.relevance_judgments").where(F.col("ds") <= ds)
    return {(row["query_hash"], row["item_id"], row["prompt_hash"]): row.asDict()
            for row in transform_previous_judgments(judgments, candidates, model_version).collect()}


def _checkpoint_key(model_version: str, key: tuple) -> str:
    """A judgment's key in the run's checkpoint: the model and (query_hash, item_id, prompt_hash)."""
    return json.dumps([model_version, *key])


def run(cfg: JudgeHeadConfig, judge=None) -> JudgeSummary:
    """Write ``gold.relevance_judgments`` for cfg.ds; ``judge`` overrides the configured backend."""
    import pyarrow as pa
    from tqdm import tqdm

    from jobs.rollup_logs import read_window
    from lore_ml.checkpoint import RunCheckpoint
    from lore_ml.inference import make_judge
    from lore_ml.lakehouse import open_lakehouse, schema_of
    from lore_ml.modeling import model_version as version_of
    from lore_ml.online_store import score
    from lore_ml.pair_context import load_items, load_kg
    from lore_ml.prompts import build_prompt

    started = time.perf_counter()
    lakehouse = open_lakehouse(cfg)
    summary = JudgeSummary(model_version=judge.model_version if judge else version_of(cfg.judge.model_path))
    daily_impressions = read_window(lakehouse, "silver.daily_impressions", cfg)
    lakehouse.require_partition("silver.query_tiers", cfg.ds_str)
    tiers = lakehouse.read_partition("silver.query_tiers", cfg.ds_str)
    candidates = transform_candidates(transform_impressions(daily_impressions), tiers, cfg)
    pairs = sorted((r["query_norm"], r["query_hash"], r["item_id"]) for r in candidates.collect())
    print(f"[judge_head] {len(pairs):,} candidate pairs for tiers {','.join(cfg.tiers)} in {cfg.first_ds}..{cfg.ds_str}",
          file=sys.stderr)
    items = load_items(lakehouse, cfg.ds_str, (item_id for _, _, item_id in pairs))
    kg = load_kg(lakehouse, cfg.ds_str)
    previous = _previous_judgments(lakehouse, candidates, summary.model_version, cfg.ds_str)
    checkpoint = RunCheckpoint.for_job(cfg.lakehouse, "judge_head", cfg.ds_str, cfg.checkpoint_every)
    saved = checkpoint.load()
    rows, todo = [], []
    for query, query_hash, item_id in pairs:
        item = items.get(item_id)
        if item is None:
            summary.missing_items += 1
            continue
        prompt = build_prompt(query, item, kg.facts(query, item, cfg.max_facts), rules=cfg.rules_in_prompt)
        key = (query_hash, item_id, prompt_hash(prompt))
        base = {"query_norm": query, "query_hash": query_hash, "item_id": item_id, "prompt_hash": key[2],
                "model_version": summary.model_version}
        saved_as = _checkpoint_key(summary.model_version, key)
        done = previous.get(key) or saved.get(saved_as)
        if done is not None:
            rows.append({**base, "label": done["label"], "p": done["p"], "score": done["score"],
                         "reasoning": done["reasoning"], "status": "ok"})
            summary.reused += key in previous
            summary.resumed += key not in previous
        else:
            todo.append((base, prompt, saved_as))
    if todo:
        judge = judge or make_judge(cfg.judge)
        with tqdm(total=len(todo), desc="judge_head", unit="pair", disable=None, file=sys.stderr) as bar:
            try:
                for start in range(0, len(todo), cfg.chunk_size):
                    chunk = todo[start : start + cfg.chunk_size]
                    for (base, _, saved_as), pred in zip(chunk, judge.judge([prompt for _, prompt, _ in chunk])):
                        row = {**base, "label": pred.label or None, "p": pred.p,
                               "score": score(pred.p) if pred.p else None,
                               "reasoning": pred.reasoning or pred.error, "status": pred.status}
                        rows.append(row)
                        if pred.status == "ok":
                            checkpoint.add(saved_as, {name: row[name] for name in ("label", "p", "score", "reasoning")})
                        summary.failed += pred.status != "ok"
                    bar.update(len(chunk))
            finally:
                checkpoint.flush()
        summary.judged = len(todo)
    summary.pairs = len(rows)
    summary.labels.update(r["label"] for r in rows if r["status"] == "ok")
    schema = pa.schema([pa.field(f.name, pa.list_(pa.float64()) if f.name == "p" else
                                 pa.float64() if f.name == "score" else pa.string())
                        for f in schema_of("gold.relevance_judgments").fields if f.name != "ds"])
    lakehouse.write_arrow(pa.Table.from_pylist(rows, schema=schema), "gold.relevance_judgments", cfg.ds_str)
    checkpoint.clear()  # written: a re-run reuses the table instead
    summary.seconds = time.perf_counter() - started
    return summary


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = JudgeHeadConfig.from_cli(argv, prog="python -m jobs.judge_head")
    summary = run(cfg)
    print(f"relevance judgments ds={cfg.ds_str} in {summary.seconds:.1f}s")
    print(summary.format())
    return 0


if __name__ == "__main__":
    from lore_ml.cli import run_entry_point

    sys.exit(run_entry_point(main))
