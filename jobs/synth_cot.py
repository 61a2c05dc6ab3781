"""Synthesise the SFT data: prompts with KG facts and label-conditioned reasoning paths.

Reads ``silver.training_pairs`` for ``ds`` (pairs at or above ``min_confidence``), the catalog
snapshot and the knowledge graph, and writes ``gold.sft_examples`` for ``ds``: one example per
pair (prompt from :func:`lore_ml.prompts.build_prompt`, completion from
:func:`lore_ml.cot.synthesize`), plus hard cases made by perturbing one demand of exact pairs.
A share of examples uses the label-first format the real-time tier decodes. Every path leads
to its label: a human label's path states the rater's judgment where the findings disagree;
a weak label (or hard case) whose findings disagree is left out and counted per source.

With ``reasoning_endpoint`` an LLM rewrites each path (:mod:`lore_ml.cot_llm`); its accepted
answers are saved under ``<lakehouse.root>/_checkpoints/synth_cot/<ds>/`` as they come, so a run
that fails or is killed resumes there, and deleted once the day's examples are written.

    python -m jobs.synth_cot --ds 2026-01-31
    python -m jobs.synth_cot --ds 2026-01-31 --set reasoning_endpoint=http://llm:8000
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, SecretStr

from lore_ml.config import JobConfig
from lore_ml.prompts import DEFAULT_RULES_DIGEST, RulesDigest

class SynthCotConfig(JobConfig):
    """Build gold.sft_examples for one day from silver.training_pairs."""

    min_confidence: float = Field(0.5, ge=0, le=1, description="Pairs below this confidence are not used.")
    max_pairs: int = Field(50_000, ge=1, description="Cap on the pairs sampled (deterministically, by pair hash) "
                           "besides the held-out human labels: every dev and test gold pair is always used, so "
                           "that the teacher's eval sets do not move with the cap or with the other pairs.")
    hard_case_share: float = Field(0.3, ge=0, le=1, description="Share of exact (L4) pairs also perturbed into an L2.")
    label_first_share: float = Field(0.25, ge=0, le=1, description="Share of examples in the label-first format.")
    rules_in_prompt: RulesDigest = Field(DEFAULT_RULES_DIGEST, description="Rules digest: full (with examples), "
                                         "compact (principles) or ids (id, label, relation).")
    max_facts: int = Field(6, ge=0, description="KG facts per prompt.")
    reasoning_endpoint: str | None = Field(None, description="OpenAI-compatible server (http://host:8000) whose "
                                           "model writes the reasoning; unset: the template engine.")
    reasoning_model: str | None = Field(None, description="Model name at reasoning_endpoint; unset: the one "
                                        "model the endpoint serves.")
    reasoning_api_key: SecretStr | None = Field(None, description="Set through LORE_REASONING_API_KEY.")
    reasoning_concurrency: int = Field(8, ge=1, description="Requests in flight to the reasoning endpoint.")
    reasoning_max_fallback_share: float = Field(
        0.2, ge=0, le=1, description="Largest share of pairs that may keep the template's reasoning (an HTTP "
        "failure after retries, or an answer that is not one <think> block whose deciding rule leads to the label). "
        "Above it the run stops, sends nothing more and writes nothing; 1 accepts any share.")


def _unit_hash(*parts: str) -> float:
    """A stable number in [0, 1) for deterministic sampling."""
    digest = hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()
    return int(digest[:12], 16) / float(16**12)


def _example(draft: tuple, cfg: SynthCotConfig) -> dict[str, Any]:
    from lore_ml.prompts import build_prompt, format_answer

    query, item, facts, label, reasoning, kind, split = draft
    label_first = _unit_hash(query, item["item_id"], "format") < cfg.label_first_share
    return {
        "example_id": hashlib.sha1(f"{query}\x1f{item['item_id']}\x1f{kind}".encode()).hexdigest()[:16],
        "query": query,
        "item_id": item["item_id"],
        "label": label,
        "prompt": build_prompt(query, item, facts, label_first=label_first, rules=cfg.rules_in_prompt),
        "completion": format_answer(label, reasoning, label_first=label_first),
        "kind": kind,
        "split": split,
    }


@dataclass
class SynthCotCounts:
    """What a run wrote and what it left out."""

    examples: Counter = field(default_factory=Counter)  # (kind, level) -> examples written
    left_out: Counter = field(default_factory=Counter)  # source -> pairs whose path disagrees with their label

    def left_out_line(self) -> str:
        """One line naming the pairs left out per source, or "" when none were.

        >>> SynthCotCounts(left_out=Counter({"purchase": 3, "cart": 1})).left_out_line()
        'left out, the path disagreeing with a label no person gave: cart 1, purchase 3'
        """
        per_source = ", ".join(f"{source} {n:,}" for source, n in sorted(self.left_out.items()))
        return f"left out, the path disagreeing with a label no person gave: {per_source}" if per_source else ""


def synthesize_pair(pair: dict, item: dict, kg) -> tuple[str, str] | None:
    """(label, reasoning) for a training pair (query, label, dimension, source), or None when the
    pair is left out: only a human label (source ``gold``) gets the rater's judgment stated."""
    from lore_ml.cot import synthesize

    gold = f"L2:{pair['dimension']}" if pair["label"] == "L2" and pair.get("dimension") else pair["label"]
    return synthesize(pair["query"], item, gold, kg, restate=pair["source"] == "gold")


def synthesize_examples(pairs: list[dict], items: dict[str, dict], kg, vocabulary: dict[str, list[str]],
                        cfg: SynthCotConfig, progress=None, reasoner=None, checkpoint=None
                        ) -> tuple[list[dict], Counter]:
    """Examples for ``pairs`` (query, item_id, label, dimension, source, split), and per source the
    pairs left out.

    A human label's path states the rater's judgment where the findings disagree with it
    (:func:`lore_ml.cot.decide`). A label from behaviour or a perturbation whose findings disagree
    is likelier wrong than the path, so that pair (or hard case) is left out rather than taught
    with made-up reasoning. The template engine writes every path; a ``reasoner``
    (:class:`lore_ml.cot_llm.LlmReasoner`) then rewrites them from the same facts and label,
    with a progress bar of its own, resuming from and saving to ``checkpoint``.
    """
    from lore_ml.cot import PERTURBABLE, extract_demands, hard_case, synthesize

    drafts = []  # (query, item, facts, label, reasoning, kind, split)
    left_out: Counter = Counter()
    for pair in pairs:
        item = items.get(pair["item_id"])
        if progress:
            progress.update(1)
        if item is None:
            continue
        query = pair["query"]
        path = synthesize_pair(pair, item, kg)
        if path is None:
            left_out[pair["source"]] += 1
            continue
        label, reasoning = path
        drafts.append((query, item, kg.facts(query, item, cfg.max_facts), label, reasoning, pair["source"], pair["split"]))
        if label != "L4" or _unit_hash(query, item["item_id"], "hard") >= cfg.hard_case_share:
            continue
        demands = extract_demands(query, item, kg)
        for dimension in [d for d in demands if d in PERTURBABLE][:1]:
            replacement = _replacement(dimension, item, kg, vocabulary, query)
            if replacement is None:
                continue
            changed, hard_gold = hard_case(item, dimension, replacement)
            path = synthesize(query, changed, hard_gold, kg, demands, restate=False)
            if path is None:
                left_out["hard_case"] += 1
                continue
            drafts.append((query, changed, kg.facts(query, changed, cfg.max_facts), *path, "hard_case", pair["split"]))
    if reasoner is not None:
        from tqdm import tqdm

        with tqdm(total=len(drafts), desc="synth-cot reasoning", unit="pair", disable=None, file=sys.stderr) as bar:
            rewritten = reasoner.write([draft[:5] for draft in drafts], bar, checkpoint)
        drafts = [(*draft[:4], reasoning, *draft[5:]) for draft, reasoning in zip(drafts, rewritten)]
    return [_example(draft, cfg) for draft in drafts], left_out


def _replacement(dimension: str, item: dict, kg, vocabulary: dict[str, list[str]], query: str) -> str | None:
    """A different value for ``dimension``: a competitor brand, or another value seen in the catalog."""
    if dimension == "brand":
        own = str(item.get("brand") or "").lower()
        options = sorted(kg.competitors.get(kg.parent_brand.get(own, own), ()))
    else:
        current = str((item.get("attributes") or {}).get(dimension, "")).lower()
        options = [v for v in vocabulary.get(dimension, []) if v != current]
    if not options:
        return None
    return options[int(_unit_hash(query, item["item_id"], dimension) * len(options))]


def run(cfg: SynthCotConfig) -> SynthCotCounts:
    """Write gold.sft_examples for cfg.ds; return the examples per (kind, level) and the pairs left out."""
    import pyarrow as pa
    from pyspark.sql import functions as F
    from tqdm import tqdm

    from lore_ml.labels import label_level
    from lore_ml.lakehouse import open_lakehouse, schema_of
    from lore_ml.pair_context import load_items, load_kg

    reasoner = checkpoint = None
    if cfg.reasoning_endpoint:  # checked first: a server that is down fails the run in seconds, not after the reads
        from lore_ml.checkpoint import RunCheckpoint
        from lore_ml.cot_llm import LlmReasoner

        key = cfg.reasoning_api_key.get_secret_value() if cfg.reasoning_api_key else None
        reasoner = LlmReasoner(cfg.reasoning_endpoint, cfg.reasoning_model, key, cfg.reasoning_concurrency,
                               max_fallback_share=cfg.reasoning_max_fallback_share)
        print(f"[synth-cot] reasoning by {reasoner.check()} at {cfg.reasoning_endpoint}", file=sys.stderr)
        checkpoint = RunCheckpoint.for_job(cfg.lakehouse, "synth_cot", cfg.ds_str)
    lakehouse = open_lakehouse(cfg)
    lakehouse.require_partition("silver.training_pairs", cfg.ds_str)
    pairs = lakehouse.read_partition("silver.training_pairs", cfg.ds_str).where(F.col("confidence") >= cfg.min_confidence)
    held_out = (F.col("source") == "gold") & F.col("split").isin("dev", "test")
    pairs = pairs.where(held_out).unionByName(
        pairs.where(~held_out).orderBy(F.xxhash64("query_norm", "item_id")).limit(cfg.max_pairs))
    pair_rows = [r.asDict() for r in pairs.select("query", "item_id", "label", "dimension", "source", "split").collect()]
    items = load_items(lakehouse, cfg.ds_str, (p["item_id"] for p in pair_rows))
    vocabulary: dict[str, set[str]] = {}
    for item in items.values():
        for dimension, value in item["attributes"].items():
            vocabulary.setdefault(dimension, set()).add(str(value).lower())
    kg = load_kg(lakehouse, cfg.ds_str)
    with tqdm(total=len(pair_rows), desc="synth-cot", unit="pair", disable=None, file=sys.stderr) as bar:
        examples, left_out = synthesize_examples(pair_rows, items, kg, {k: sorted(v) for k, v in vocabulary.items()},
                                                 cfg, bar, reasoner, checkpoint)
    if reasoner is not None:
        why = ", ".join(f"{reason} ({n:,})" for reason, n in reasoner.fallback_reasons.most_common())
        print(f"[synth-cot] {len(examples) - reasoner.fallbacks:,} reasoning paths from {cfg.reasoning_endpoint} "
              f"({reasoner.resumed:,} saved by an earlier run of the day), {reasoner.fallbacks:,} kept the template's"
              + (f": {why}" if why else ""), file=sys.stderr)
    columns = [f.name for f in schema_of("gold.sft_examples").fields if f.name != "ds"]  # all strings
    lakehouse.write_arrow(pa.table({c: pa.array([e[c] for e in examples], pa.string()) for c in columns}),
                          "gold.sft_examples", cfg.ds_str)
    if checkpoint is not None:
        checkpoint.clear()  # written: a re-run of the day asks the endpoint afresh
    return SynthCotCounts(Counter((e["kind"], label_level(e["label"])) for e in examples), left_out)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = SynthCotConfig.from_cli(argv, prog="python -m jobs.synth_cot")
    counts = run(cfg)
    print(f"sft examples ds={cfg.ds_str}: {sum(counts.examples.values()):,}")
    print(f"{'kind':<15}{'label':<7}{'examples':>10}")
    for (kind, label), n in sorted(counts.examples.items()):
        print(f"{kind:<15}{label:<7}{n:>10,}")
    if counts.left_out:
        print(counts.left_out_line())
    return 0


if __name__ == "__main__":
    from lore_ml.cli import run_entry_point

    sys.exit(run_entry_point(main))
