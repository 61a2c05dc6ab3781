"""The main job on the embedded defaults: the whole of LORE, end to end, on one machine.

generate a marketplace → nightly pipeline (ingest and roll up every day, tiers, KG, Home Depot labels,
training pairs, tower vectors, SFT examples) → teacher training at demo scale (tiny model, SFT, a few GRPO
steps, evaluation, promotion) → head judgments → the representation student (lore distill: the
labels and the teacher's head judgments) → Redis cache fill → the shim under gunicorn → sample
requests that hit every tier (cache, student, teacher, fallback + write-back) → a summary.

A second run reuses what exists (days already in the lakehouse, trained models, judgments,
the active cache version) instead of redoing it; ``--force`` redoes everything.

    lore demo                          # = make demo
    lore demo --rows 1000000 --force
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from pydantic import Field

from lore_ml.config import JobConfig


class DemoConfig(JobConfig):
    """Run LORE end to end on a generated marketplace."""

    ds: dt.date = Field(dt.date(2026, 1, 31), description="Last day of the generated logs (a fixed demo date).")
    rows: int = Field(200_000, ge=1000, description="Search-log rows of the generated marketplace.")
    days: int = Field(7, ge=1, description="Days of logs, ending at ds.")
    home_depot: bool = Field(True, description="Also load the Home Depot human labels when the folder exists.")
    artifacts: Path = Field(Path("artifacts/demo"), description="Where the demo's models and reports go.")
    sft_steps: int = Field(40, ge=1, description="SFT steps of the demo-scale teacher.")
    rl_steps: int = Field(2, ge=0, description="GRPO steps after SFT (0 skips RL).")
    items_per_head_query: int = Field(10, ge=1, description="Candidates judged per head query.")
    force: bool = Field(False, description="Redo every step even when its output exists.")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--rows", type=int)
        parser.add_argument("--days", type=int)
        parser.add_argument("--force", action="store_true", default=None)


class Progress:
    """Numbered steps with timings; a step whose output exists is reported as reused."""

    def __init__(self, total: int):
        self.total, self.done, self.started = total, 0, time.perf_counter()

    def step(self, name: str, reused: bool = False) -> float:
        self.done += 1
        print(f"[{self.done}/{self.total}] {name}{' (reused)' if reused else ''}", flush=True)
        return time.perf_counter()

    def took(self, since: float, what: str = "") -> None:
        print(f"      {what}{' ' if what else ''}({time.perf_counter() - since:.0f}s)", flush=True)


def run(cfg: DemoConfig) -> dict:
    from jobs import (build_kg, embed_vectors, fill_cache, judge_head, load_home_depot, mine_pairs, rollup_logs,
                      stratify, synth_cot)
    from jobs.generate_marketplace import GenerateConfig, generate
    from jobs.ingest import IngestConfig, format_counts
    from jobs.ingest import run as run_ingest
    from lore_ml.lakehouse import open_lakehouse

    shared = cfg.model_dump(include={"spark", "lakehouse", "data", "redis"})
    day = {**shared, "ds": cfg.ds}
    progress = Progress(16 + (1 if cfg.rl_steps else 0))
    summary: dict = {}

    t = progress.step("marketplace")
    manifest = generate(GenerateConfig.load(overrides={**day, "rows": cfg.rows, "days": cfg.days}))
    progress.took(t, f"{manifest['counts']['search_log_rows']:,} log rows, {manifest['counts']['items']:,} items, "
                     f"{manifest['counts']['queries']:,} queries")
    lakehouse = open_lakehouse(cfg)

    def exists(table: str, ds: str) -> bool:
        return not cfg.force and lakehouse.has_partition(table, ds)

    todo = [d for d in manifest["days"] if not exists("bronze.search_log", d)]
    t = progress.step("ingest", reused=not todo)
    results = [r for d in todo for r in run_ingest(IngestConfig.load(overrides={**shared, "ds": d}))]
    if results:
        print(format_counts(results))

    # rollup_logs writes its tables in order: a day holding the last one holds them all
    todo = [d for d in manifest["days"] if d in todo or not exists(rollup_logs.TABLES[-1], d)]
    t = progress.step("daily log rollups", reused=not todo)
    for d in todo:
        rollup_logs.run(rollup_logs.RollupLogsConfig.load(overrides={**shared, "ds": d}))
    if todo:
        progress.took(t, f"{len(todo)} day(s)")

    hd_day = load_home_depot.HomeDepotConfig.model_fields["ds"].default.isoformat()
    has_hd = cfg.home_depot and (cfg.data.home_depot_dir / "train.csv.zip").is_file()
    t = progress.step("Home Depot human labels", reused=has_hd and exists("bronze.human_labels", hd_day))
    if has_hd and not exists("bronze.human_labels", hd_day):
        load_home_depot.run(load_home_depot.HomeDepotConfig.load(overrides=shared))
    elif not cfg.home_depot:
        print("      skipped: home_depot=false")
    elif not has_hd:
        print(f"      skipped: no train.csv.zip under {cfg.data.home_depot_dir}")

    def edge_counts(counts: dict) -> str:
        return "      " + ", ".join(f"{n:,} {kind}" for kind, n in sorted(counts.items()))

    def sft_counts(counts: synth_cot.SynthCotCounts) -> str:
        return "      " + "; ".join(filter(None, [f"{sum(counts.examples.values()):,} examples", counts.left_out_line()]))

    def vector_counts(counts: dict) -> str:
        return "      " + ", ".join(f"{table}: {rows:,} rows ({encoded:,} encoded)" for table, (rows, encoded) in counts.items())

    for name, table, job, config, describe in (
        ("query tiers", "silver.query_tiers", stratify, stratify.StratifyConfig, stratify.format_summary),
        ("knowledge graph", "silver.kg_edges", build_kg, build_kg.BuildKgConfig, edge_counts),
        ("training pairs", "silver.training_pairs", mine_pairs, mine_pairs.MinePairsConfig, None),
        ("tower vectors (MiniLM, every catalog item)", "silver.item_vectors", embed_vectors,
         embed_vectors.EmbedVectorsConfig, vector_counts),
        ("SFT examples (synthesised reasoning)", "gold.sft_examples", synth_cot, synth_cot.SynthCotConfig, sft_counts),
    ):
        reused = exists(table, cfg.ds_str)
        t = progress.step(name, reused)
        if not reused:
            result = job.run(config.load(overrides=day))
            progress.took(t, describe(result) if describe else "")

    champion = train_teacher(cfg, day, progress)
    t = progress.step("head judgments")
    judged = judge_head.run(judge_head.JudgeHeadConfig.load(overrides={
        **day, "max_items_per_query": cfg.items_per_head_query, "judge": {"model_path": str(champion)}}))
    print("      " + judged.format().replace("\n", "\n      "))
    student = cfg.artifacts / "students" / "current"
    reused = not cfg.force and (student / "manifest.json").is_file()
    t = progress.step("representation student (distill, labels + head judgments)", reused)
    if not reused:
        from lore_ml.distill import DistillConfig
        from lore_ml.distill import run as run_distill

        metrics, _, _ = run_distill(DistillConfig.load(overrides={
            **day, "dataset": "marketplace", "out_dir": str(cfg.artifacts / "students")}))
        progress.took(t, f"marketplace test: Acc@2 {metrics['acc2']:.3f}, macro-F1 {metrics['macro_f1']:.3f}")

    t = progress.step("Redis head cache")
    filled = fill_cache.run(fill_cache.FillCacheConfig.load(overrides=day))
    print(f"      version {filled.version} active: {filled.queries:,} queries, {filled.judgments:,} judgments, "
          f"{filled.tier_entries:,} tier entries" if filled.switched else f"      version {filled.version} already active")
    summary["cache_version"] = filled.version

    t = progress.step("shim + sample requests")
    summary["requests"] = exercise_shim(cfg, lakehouse, champion, student)
    summary["seconds"] = time.perf_counter() - progress.started
    summary["champion"] = str(champion)
    return summary


def train_teacher(cfg: DemoConfig, day: dict, progress: Progress) -> Path:
    """Tiny teacher → SFT → GRPO → eval (dev) → promote; each stage reused when its model exists."""
    from lore_ml import training
    from lore_ml.evaluation import EvalConfig, run_eval
    from lore_ml.modeling import model_version
    from lore_ml.promotion import PromoteConfig, evaluation_report, promote

    base, sft, rl = (cfg.artifacts / name for name in ("teacher-base", "teacher-sft", "teacher-rl"))
    stages = [
        ("tiny teacher", base, lambda: training.run_init_teacher(training.InitTeacherConfig.load(
            overrides={**day, "output_dir": str(base), "max_texts": 5000, "dataset": "marketplace"}))),
        (f"SFT ({cfg.sft_steps} steps)", sft, lambda: training.run_sft(training.SftConfig.load(overrides={
            **day, "model_path": str(base), "output_dir": str(sft), "max_steps": cfg.sft_steps,
            "max_examples": cfg.sft_steps * 8, "learning_rate": 2e-3, "dataset": "marketplace"}))),
    ]
    if cfg.rl_steps:
        stages.append((f"GRPO ({cfg.rl_steps} steps)", rl, lambda: training.run_rl(training.RlConfig.load(overrides={
            **day, "model_path": str(sft), "output_dir": str(rl), "max_steps": cfg.rl_steps, "batch_size": 4,
            "max_examples": 4 * cfg.rl_steps, "max_completion_length": 48, "dataset": "marketplace"}))))
    for name, out, train in stages:
        reused = not cfg.force and (out / "config.json").is_file()
        t = progress.step(name, reused)
        if not reused:
            train()
            progress.took(t, f"saved {out}")
    candidate = rl if cfg.rl_steps else sft
    t = progress.step("evaluate + promote")
    champion = cfg.artifacts / "champion"
    gate_cfg = PromoteConfig.load(overrides={**day, "model_path": str(candidate), "champion_dir": str(champion),
                                             "max_examples": 100})
    metrics = None if cfg.force else evaluation_report(gate_cfg, model_version(candidate))
    if metrics is None:  # dev examples: the decision rule is fitted on them, the gate compares them
        metrics, _ = run_eval(EvalConfig.load(overrides={
            **day, "model_path": str(candidate), "split": "dev", "max_examples": 100, "fit_decision": True,
            "out_dir": str(cfg.artifacts / "eval")}))
    print(f"      {candidate.name}: Acc@2 {metrics['acc2']:.3f}, macro-F1 {metrics['macro_f1']:.3f} "
          f"(marketplace dev, n={metrics['n']}, decision rule fitted there; report under {cfg.artifacts / 'eval'})")
    won, why = promote(gate_cfg)
    print(f"      {'promoted' if won else 'kept the champion'}: {why}")
    return champion


def exercise_shim(cfg: DemoConfig, lakehouse, champion: Path, student: Path) -> list[dict]:
    """Start `lore serve`, send one request per tier (and a fallback), drain the write-back queue."""
    from pyspark.sql import functions as F

    from lore_ml.online_store import CacheReader, Keys, connect
    from lore_ml.text import normalize_query, query_hash
    from online.config import ServeConfig
    from online.app import build_teacher
    from online.worker import WriteBackWorker

    tiers = lakehouse.read_partition("silver.query_tiers", cfg.ds_str)
    head = tiers.where(F.col("tier") == "head").orderBy("rank").first()["query_norm"]
    mid = tiers.where(F.col("tier") == "mid").orderBy("rank").first()["query_norm"]
    judged = (lakehouse.read_partition("gold.relevance_judgments", cfg.ds_str)
              .where((F.col("query_norm") == head) & (F.col("status") == "ok")))
    head_items = [r["item_id"] for r in judged.orderBy("item_id").limit(3).collect()]
    catalog = {r["item_id"]: r for r in lakehouse.read_snapshot("bronze.catalog", cfg.ds_str).limit(200).collect()}
    some_items = list(catalog)[:3]

    def item(item_id: str) -> dict:
        row = catalog.get(item_id)
        return {"item_id": item_id, **({"title": row["title"], "brand": row["brand"]} if row else {})}

    requests = [
        ("head (cache)", head, head_items + ["unjudged-item"], None),
        ("mid (student)", mid, some_items, None),
        ("tail (teacher)", "vintage brass desk lamp with usb port", some_items[:2], 5000),
        ("tail (deadline 1 ms)", "left handed cast iron skillet", some_items[:2], 1),
    ]
    # A re-run (or another checkout on the same Redis) finds the tail answers of the last run
    # written back into the active version: forget them, so every run shows the fallback again.
    reader = CacheReader(connect(cfg.redis), Keys(cfg.redis.key_prefix))
    active = reader.active_version()
    if active:
        reader.client.delete(*(reader.keys.query(active, query_hash(normalize_query(query)))
                               for name, query, _, _ in requests if name.startswith("tail")))
    port = free_port()
    serve_cfg = ServeConfig.load(overrides={**cfg.model_dump(include={"redis"}), "port": port,
                                            "teacher": {"model_path": str(champion)}})
    env = {**os.environ, "LORE_REDIS__URL": cfg.redis.url, "LORE_REDIS__KEY_PREFIX": cfg.redis.key_prefix,
           "LORE_TEACHER__MODEL_PATH": str(champion)}
    command = [str(Path(sys.executable).parent / "lore"), "serve", "--set", f"port={port}", "--set", "workers=1",
               "--set", f"student_path={student}"]
    shim = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=open(cfg.artifacts / "shim.log", "w"))
    base = f"http://127.0.0.1:{port}"
    answers = []
    try:
        wait_for(lambda: urllib.request.urlopen(f"{base}/readyz", timeout=2).status == 200, "lore serve", 120)
        for name, query, item_ids, deadline in requests:
            answers.append({"request": name, **_post(base, query, [item(i) for i in item_ids], deadline)})
        worker = WriteBackWorker(reader.client, build_teacher(serve_cfg), reader.keys, serve_cfg)
        drained = worker.run(once=True)
        print(f"      write-back worker: {drained.entries} queued requests judged, {drained.judgments} judgments cached")
        name, query, item_ids, deadline = requests[-1]
        answers.append({"request": "same tail again (written back)",
                        **_post(base, query, [item(i) for i in item_ids], deadline)})
    finally:
        shim.send_signal(signal.SIGTERM)
        shim.wait(timeout=30)
    print(f"      {'request':<32}{'tier':<9}{'sources':<22}{'ms':>7}  labels")
    for a in answers:
        print(f"      {a['request']:<32}{a['tier']:<9}{a['sources']:<22}{a['latency_ms']:>7.1f}  {' '.join(a['labels'])}")
    return answers


def _post(base: str, query: str, items: list[dict], deadline_ms: int | None) -> dict:
    body = {"query": query, "items": items, **({"deadline_ms": deadline_ms} if deadline_ms else {})}
    request = urllib.request.Request(f"{base}/v1/relevance", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    return {"tier": answer["tier"], "sources": "+".join(sorted({i["source"] for i in answer["items"]})),
            "latency_ms": answer["latency_ms"], "labels": [i["label"] for i in answer["items"]]}


def free_port() -> int:
    """A free TCP port on loopback (for the shim and, in the benchmarks, its helpers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, what: str, timeout_s: float = 60.0) -> None:
    """Poll ``check`` until it returns true; errors while a service starts count as not yet."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not come up within {timeout_s:.0f}s")


def main(argv: list[str] | None = None) -> int:
    import warnings

    from lore_ml.storage import is_uri

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore", category=UserWarning, module="trl")
    cfg = DemoConfig.from_cli(argv, prog="lore demo")
    cfg.artifacts.mkdir(parents=True, exist_ok=True)
    summary = run(cfg)
    print(f"\ndone in {summary['seconds']:.0f}s")
    tables = cfg.lakehouse.root if is_uri(cfg.lakehouse.root) else Path(cfg.lakehouse.root).resolve()
    print(f"  Delta tables     {tables}  (bronze/silver/gold, e.g. gold/relevance_judgments)")
    print(f"  models, reports  {cfg.artifacts.resolve()}  (champion/, eval/*/report.md, shim.log)")
    print(f"  Redis            {cfg.redis.url}  active cache version {summary['cache_version']}")
    print("  serve it         lore serve   (then POST /v1/relevance; GET /openapi.json)")
    return 0


if __name__ == "__main__":
    from lore_ml.cli import run_entry_point

    sys.exit(run_entry_point(main))
