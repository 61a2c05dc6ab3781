"""The nightly Spark jobs chained on a small generated marketplace, checked against its truth."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import functions as F

from jobs import mine_pairs, stratify
from jobs.generate_marketplace import GenerateConfig, generate
from lore_ml.config import PROJECT_ROOT, InputsNotReady, LakehouseConfig
from lore_ml.kg import KnowledgeGraph
from lore_ml.lakehouse import Lakehouse, content_hash
from lore_ml.marketplace import MarketplaceTruth

DS = "2026-01-31"


@pytest.fixture(scope="module")
def chain(tmp_path_factory, sail_spark, run_nightly_chain):
    """The chain with its raw drops and lakehouse given as URIs, as on a cluster's shared storage
    (s3a://...); the generator writes a local folder."""
    root = tmp_path_factory.mktemp("chain")
    paths = {"data": {"raw_root": (root / "raw").as_uri()}, "lakehouse": {"root": (root / "lake").as_uri()}}
    manifest = generate(GenerateConfig.load(overrides={"ds": DS, "rows": 60_000, "days": 7, **paths,
                                                       "data": {"raw_root": str(root / "raw")}}))
    job = run_nightly_chain(paths, manifest["days"], DS)
    return root, job, Lakehouse(sail_spark, LakehouseConfig(root=str(root / "lake")))


def test_tiers_cover_the_configured_share(chain):
    _, _, lakehouse = chain
    summary = stratify.tier_summary(lakehouse.read_partition("silver.query_tiers", DS))
    tiers = {tier: share for tier, _, _, share in summary}
    assert set(tiers) == {"head", "mid", "tail"}
    assert 0.6 <= tiers["head"] < 0.75


def test_jobs_leave_no_scratch_behind(chain):
    root, _, _ = chain
    assert (root / "lake" / "_staging").is_dir()  # every job staged something
    assert [p for p in (root / "lake" / "_staging").rglob("*") if p.is_file()] == []
    assert not (Path.cwd() / "file:").exists()  # a URI root is never taken for a relative local path


def test_kg_has_every_edge_type(chain):
    _, _, lakehouse = chain
    types = {r["edge_type"] for r in lakehouse.read_partition("silver.kg_edges", DS).select("edge_type").distinct().collect()}
    assert {"has_brand", "in_category", "has_value", "sub_brand", "competitor", "term_category"} <= types


def test_mined_value_synonyms_are_what_the_terms_queries_demand(chain):
    """Each value synonym holds for most of the generator's queries with the term. On this lake no term
    clears the lift (the 200k-row demo's lake mines "mens" → audience=men, see bench/kg_quality.py);
    a lift against all queries rather than those of the term's categories mined "insoles" →
    function=arch support (12% of its queries ask for it), "carafe" → material=stainless steel and
    "phone" → ip=galaxy raiders here."""
    root, _, lakehouse = chain
    truth = MarketplaceTruth(root / "raw")
    edges = lakehouse.read_partition("silver.kg_edges", DS).where(F.col("edge_type") == "value_synonym").collect()
    shares = {(edge["src"], edge["dst"]): truth.edge_demand_share(edge["src"], edge["dst"])[1] for edge in edges}
    assert all(share > 0.5 for share in shares.values()), shares


def test_the_graph_loads_with_the_catalogs_attribute_values(chain):
    root, _, _ = chain
    kg = KnowledgeGraph.load(LakehouseConfig(root=(root / "lake").as_uri()), DS)
    assert kg.brands and {"color", "material"} <= set(kg.attribute_values.values())


def test_weak_labels_agree_with_the_truth(chain):
    root, _, lakehouse = chain
    pairs = lakehouse.read_partition("silver.training_pairs", DS).select("query", "item_id", "label", "source")
    agreement = {row["source"]: row for row in MarketplaceTruth(root / "raw").agreement(pairs.toPandas())}
    assert agreement["gold"]["label_accuracy"] == 1.0  # human labels are the truth itself
    for source, floor in {"purchase": 0.85, "cart": 0.85, "hard_negative": 0.9, "skip_above": 0.7}.items():
        assert agreement[source]["pairs"] > 0 and agreement[source]["binary_accuracy"] >= floor, agreement[source]
    # Skipped pairs are nearly all L2 in truth: on the CTR itself (no Wilson bound) most were called L1.
    assert agreement["skip_above"]["label_accuracy"] >= 0.7, agreement["skip_above"]


def test_no_query_in_two_splits_and_rerun_is_idempotent(chain):
    _, job, lakehouse = chain
    pairs = lakehouse.read_partition("silver.training_pairs", DS)
    leaks = pairs.groupBy("query_norm").agg(F.countDistinct("split").alias("n")).where(F.col("n") > 1).count()
    assert leaks == 0
    before = content_hash(pairs)
    mine_pairs.run(mine_pairs.MinePairsConfig.load(overrides=job))
    assert content_hash(lakehouse.read_partition("silver.training_pairs", DS)) == before


def test_mine_pairs_refuses_a_day_without_query_tiers(chain):
    _, job, lakehouse = chain
    day_before = "2026-01-30"  # rolled up, but stratify never ran for it
    with pytest.raises(InputsNotReady, match=f"no silver.query_tiers rows for ds={day_before} .*: "
                                             f"run `lore stratify --ds {day_before}` first"):
        mine_pairs.run(mine_pairs.MinePairsConfig.load(overrides={**job, "ds": day_before}))
    assert not lakehouse.has_partition("silver.training_pairs", day_before)


@pytest.mark.jvm
def test_jobs_run_under_spark_submit():
    """spark-submit runs the job module as a script; without Delta jars it says which are missing."""
    import pyspark

    submit = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[1]"]
    env = {**os.environ, "SPARK_HOME": os.path.dirname(pyspark.__file__), "PYSPARK_PYTHON": sys.executable}
    env.pop("SPARK_CONNECT_MODE_ENABLED", None)
    script = str(PROJECT_ROOT / "jobs" / "stratify.py")
    done = subprocess.run([*submit, script, "--help"], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 and "--window-days" in done.stdout, done.stderr[-2000:]
    done = subprocess.run([*submit, script, "--ds", DS, "--set", "spark.engine=jvm"],
                          capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode != 0 and "delta-spark_2.13" in done.stdout + done.stderr


def test_sft_examples_parse_and_carry_their_label(chain):
    from jobs import synth_cot
    from lore_ml.cot import contradiction
    from lore_ml.prompts import parse_judgment

    _, job, lakehouse = chain
    counts = synth_cot.run(synth_cot.SynthCotConfig.load(overrides=job))
    examples = lakehouse.read_partition("gold.sft_examples", DS).collect()
    assert len(examples) == sum(counts.examples.values()) > 100
    assert counts.examples[("hard_case", "L2")] > 0
    assert sum(counts.left_out.values()) > 0 and "gold" not in counts.left_out  # human labels are never left out
    for example in examples:
        label_first = example["completion"].startswith("<label>")
        judgment = parse_judgment(example["completion"], label_first=label_first)
        assert judgment.full_label == example["label"]
        assert contradiction(judgment.reasoning, example["label"]) is None, example["completion"]
        assert f"Query: {example['query']}\n" in example["prompt"]
    assert 0.1 < sum(e["completion"].startswith("<label>") for e in examples) / len(examples) < 0.4


def test_every_held_out_human_label_is_synthesised_whatever_the_cap(chain):
    """The teacher's eval sets are the day's dev and test gold pairs, never a sample of them."""
    from jobs import synth_cot

    _, job, lakehouse = chain
    pairs = lakehouse.read_partition("silver.training_pairs", DS)
    held_out = {(r["query"], r["item_id"]) for r in pairs.where(
        (F.col("source") == "gold") & F.col("split").isin("dev", "test")).collect()}
    counts = synth_cot.run(synth_cot.SynthCotConfig.load(overrides={**job, "max_pairs": 50}))
    examples = lakehouse.read_partition("gold.sft_examples", DS).where(F.col("kind") == "gold")
    written = {(r["query"], r["item_id"]) for r in examples.where(F.col("split").isin("dev", "test")).collect()}
    assert len(held_out) > 50 and written == held_out
    assert examples.where(F.col("split") == "train").count() <= 50 < sum(counts.examples.values())


@pytest.fixture
def reasoning_server():
    """An OpenAI-compatible server on a free local port serving one model, ``llm-7b``. Its chat
    completions are a well-formed path until ``script["good"]`` of them were given, then ``script["bad"]``;
    ``script["asked"]`` counts them."""
    import threading

    from flask import Flask, jsonify, request
    from werkzeug.serving import make_server

    app, lock = Flask("reasoning"), threading.Lock()
    script = {"good": 10**9, "bad": "L4, clearly", "asked": 0}
    app.add_url_rule("/v1/models", "models", lambda: jsonify({"object": "list", "data": [{"id": "llm-7b"}]}))

    @app.post("/v1/chat/completions")
    def chat():
        if request.get_json()["model"] != "llm-7b":
            return jsonify({"error": {"message": "model not found"}}), 404
        with lock:
            script["asked"] += 1
            good = script["asked"] <= script["good"]
        level = request.get_json()["messages"][1]["content"].split("Correct label: ")[1][:2]
        deciding = {"L1": "R-CAT-01", "L2": "R-BRD-01", "L3": "R-UNK-01", "L4": "R-EXA-01"}[level]
        content = f"<think>demands checked by the endpoint: {deciding}</think>" if good else script["bad"]
        return jsonify({"choices": [{"message": {"content": content}}]})

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", script, server
    server.shutdown()


def test_sft_reasoning_from_an_endpoint_resumes_and_writes_nothing_when_it_fails(chain, reasoning_server):
    """The endpoint's model is found and writes every path. A run whose answers turn unusable
    stops with the reason and leaves the day's examples as they were; the re-run asks only for the
    paths the failed run did not save. An endpoint that is down fails the run before it reads."""
    from jobs import synth_cot
    from lore_ml.cot_llm import ReasoningFailed

    root, job, lakehouse = chain
    url, script, server = reasoning_server
    checkpoint = root / "lake" / "_checkpoints" / "synth_cot" / DS
    cfg = synth_cot.SynthCotConfig.load(overrides={**job, "reasoning_endpoint": url, "max_pairs": 300})

    def examples_now():
        present = lakehouse.has_partition("gold.sft_examples", DS)
        return content_hash(lakehouse.read_partition("gold.sft_examples", DS)) if present else None

    before = examples_now()
    script["good"] = 150
    with pytest.raises(ReasoningFailed, match="more than max share 0.2 allows; stopped. Why: malformed"):
        synth_cot.run(cfg)
    assert examples_now() == before and checkpoint.is_dir()

    script["good"], script["asked"] = 10**9, 0
    counts = synth_cot.run(cfg).examples
    examples = lakehouse.read_partition("gold.sft_examples", DS)
    assert examples.count() == sum(counts.values()) >= 300
    assert script["asked"] == sum(counts.values()) - 150  # the 150 saved paths were not asked again
    assert examples.where(~F.col("completion").contains("demands checked by the endpoint")).count() == 0
    assert not checkpoint.exists()  # written: nothing left to resume

    server.shutdown()
    written = examples_now()
    with pytest.raises(InputsNotReady, match=f"reasoning endpoint {url} did not list its models"):
        synth_cot.run(cfg)
    assert examples_now() == written


@pytest.fixture(scope="module")
def tiny_teacher(chain, tmp_path_factory):
    """A tiny teacher whose tokenizer is trained on the chain's SFT examples."""
    from jobs import synth_cot
    from lore_ml.modeling import TinyQwenSpec, init_teacher

    _, job, lakehouse = chain
    synth_cot.run(synth_cot.SynthCotConfig.load(overrides=job))
    examples = lakehouse.read_partition("gold.sft_examples", DS).limit(200).collect()
    return init_teacher((e["prompt"] + e["completion"] for e in examples), tmp_path_factory.mktemp("teacher") / "teacher",
                        TinyQwenSpec(vocab_size=500, hidden_size=32, layers=1, heads=2, kv_heads=1, intermediate_size=64))


def test_eval_writes_a_report_and_a_table_row(chain, tiny_teacher, tmp_path):
    from lore_ml.evaluation import EvalConfig, run_eval

    _, job, lakehouse = chain
    metrics, out = run_eval(EvalConfig.load(overrides={**job, "model_path": str(tiny_teacher), "max_examples": 6,
                                                       "out_dir": str(tmp_path / "eval")}))
    assert metrics["n"] == 6 and 0 <= metrics["acc2"] <= 1 and "ece" in metrics
    assert (out / "report.md").exists() and (out / "confusion.png").exists()
    rows = lakehouse.read_partition("gold.eval_reports", DS).collect()
    assert len(rows) == 1 and rows[0]["report_id"].startswith("teacher@")
    assert rows[0]["report_id"].endswith("/marketplace/test") and json.loads(rows[0]["metrics_json"])["n"] == 6


def test_eval_refuses_examples_longer_than_max_model_len(chain, tiny_teacher, tmp_path):
    from lore_ml.evaluation import EvalConfig, run_eval

    _, job, _ = chain
    with pytest.raises(ValueError, match=r"6 of 6 examples \(e.g. \w+\) do not fit max_model_len=256"):
        run_eval(EvalConfig.load(overrides={**job, "model_path": str(tiny_teacher), "max_examples": 6,
                                            "max_model_len": 256, "out_dir": str(tmp_path / "eval")}))


@pytest.fixture
def teacher(tiny_teacher, tmp_path):
    """A copy of the tiny teacher, whose manifest a test may change (a fitted decision rule)."""
    import shutil

    return Path(shutil.copytree(tiny_teacher, tmp_path / "teacher"))


def test_a_decision_rule_fitted_on_dev_is_stored_and_labels_the_test_report(chain, teacher, tmp_path):
    from lore_ml.evaluation import EvalConfig, run_eval
    from lore_ml.modeling import model_version, read_manifest

    _, job, _ = chain
    before = model_version(teacher)
    base = {**job, "model_path": str(teacher), "max_examples": 12, "out_dir": str(tmp_path / "eval")}
    with pytest.raises(ValueError, match="never on the test split"):
        run_eval(EvalConfig.load(overrides={**base, "split": "test", "fit_decision": True}))
    dev, _ = run_eval(EvalConfig.load(overrides={**base, "split": "dev", "fit_decision": True}))
    rule = read_manifest(teacher)["decision"]["label_first"]
    assert dev["decision"] == rule and rule["rule"] in ("bias", "thresholds")
    assert model_version(teacher).startswith(before + "+d")  # judgments under the old labels are not reused
    test, out = run_eval(EvalConfig.load(overrides={**base, "split": "test"}))
    assert test["decision"] == rule and "fitted on dev" in (out / "report.md").read_text()
    assert "rule_follows_label" not in test  # label-first judgments carry no reasoning to check


def test_a_think_first_eval_checks_each_label_against_the_rule_its_reasoning_ends_on(chain, teacher, tmp_path):
    from lore_ml.evaluation import RULE_METRICS, EvalConfig, run_eval

    _, job, _ = chain
    metrics, out = run_eval(EvalConfig.load(overrides={
        **job, "model_path": str(teacher), "max_examples": 4, "out_dir": str(tmp_path / "eval"), "split": "dev",
        "fit_decision": True, "think_first": True}))
    for shares in (metrics, metrics["argmax"]):  # the fitted rule's labels, and argmax's
        assert all(0 <= shares[name] <= 1 for name in RULE_METRICS)
    assert "| rule_follows_label |" in (out / "report.md").read_text()


def test_a_think_first_rule_that_contradicts_the_reasoning_is_not_stored(chain, teacher, tmp_path, monkeypatch):
    """A stand-in read of the labels: every reasoning ends on the exact-match rule (L4) and p(L4)
    leads, but the gold level gets the next most mass, so a rule fitted for macro-F1 moves labels
    off L4, against the reasoning served with them: argmax is stored instead."""
    from lore_ml.evaluation import EvalConfig, run_eval
    from lore_ml.inference import THINK_CLOSE, THINK_OPEN, TransformersJudge
    from lore_ml.labels import LABELS, label_level
    from lore_ml.modeling import read_manifest

    _, job, lakehouse = chain
    dev = lakehouse.read_partition("gold.sft_examples", DS).where((F.col("split") == "dev") & (F.col("kind") == "gold"))
    gold = {row["prompt"]: LABELS.index(label_level(row["label"])) for row in dev.collect()}
    assert len(set(gold.values())) > 1  # a mix of levels, so fitting has something to move

    def read_labels(self, prompts):
        p = np.full((len(prompts), 4), 0.05)
        for row, prompt in enumerate(prompts):
            p[row, gold[prompt]] += 0.35
            p[row, 3] += 0.45
        thought = "every demand met: R-EXA-01"
        texts = [prompt + THINK_OPEN + thought + THINK_CLOSE for prompt in prompts]
        return texts, [thought] * len(prompts), p / p.sum(axis=1, keepdims=True)

    monkeypatch.setattr(TransformersJudge, "read_labels", read_labels)
    metrics, out = run_eval(EvalConfig.load(overrides={
        **job, "model_path": str(teacher), "max_examples": 40, "out_dir": str(tmp_path / "eval"), "split": "dev",
        "fit_decision": True, "think_first": True}))
    refused = metrics["refused_decision"]
    assert refused["argmax_rule_follows_label"] == 1.0 and refused["rule_follows_label"] < 0.98
    assert metrics["decision"] is None and read_manifest(teacher)["decision"] == {"think_first": None}
    assert metrics["rule_follows_label"] == 1.0 and set(metrics["predicted_distribution"]) == {"L4"}
    assert "was not stored" in (out / "report.md").read_text()


class HashJudge:
    """A stand-in teacher with decided answers (label by prompt hash, every 7th a failure), so the
    job's bookkeeping is checked independently of what a tiny random model happens to output.
    With ``crash_after`` it raises once it has judged that many prompts (an engine that died)."""

    def __init__(self, model_version="hash-judge@1", crash_after=None):
        self.model_version, self.crash_after, self.calls = model_version, crash_after, 0

    def judge(self, prompts):
        import hashlib

        from lore_ml.inference import Prediction

        if self.crash_after is not None and self.calls >= self.crash_after:
            raise RuntimeError("engine died")
        self.calls += len(prompts)
        predictions = []
        for prompt in prompts:
            bucket = int(hashlib.sha1(prompt.encode()).hexdigest(), 16)
            label = ("L1", "L2:brand", "L3", "L4")[bucket % 4]
            p = [0.1] * 4
            p[bucket % 4] = 0.7
            failed = bucket % 7 == 0
            predictions.append(Prediction(label, p, status="failed" if failed else "ok",
                                          error="greedy: no </label>" if failed else None))
        return predictions


def test_judge_head_resumes_a_run_that_died_and_judges_only_the_rest(chain):
    from jobs import judge_head

    root, job, lakehouse = chain
    checkpoint = root / "lake" / "_checkpoints" / "judge_head" / DS
    config = judge_head.JudgeHeadConfig.load(overrides={**job, "max_items_per_query": 3, "chunk_size": 4,
                                                        "checkpoint_every": 5})
    dying = HashJudge("hash-judge@resume", crash_after=12)
    with pytest.raises(RuntimeError, match="engine died"):
        judge_head.run(config, judge=dying)
    assert dying.calls == 12 and checkpoint.is_dir()
    again = HashJudge("hash-judge@resume")
    summary = judge_head.run(config, judge=again)
    ok_of_the_dead_run = summary.resumed
    assert 0 < ok_of_the_dead_run <= 12 and again.calls == summary.judged == summary.pairs - ok_of_the_dead_run
    judgments = lakehouse.read_partition("gold.relevance_judgments", DS)
    assert judgments.where(F.col("model_version") != "hash-judge@resume").count() == 0
    assert judgments.count() == summary.pairs and not checkpoint.exists()
    fresh = judge_head.run(config, judge=HashJudge("hash-judge@resume"))
    assert (fresh.reused, fresh.resumed) == (summary.pairs - summary.failed, 0)  # the written table, not the checkpoint


@pytest.mark.redis
def test_judge_head_then_fill_cache_serve_the_head_queries(chain, redis_client, capsys):
    import uuid

    from jobs import fill_cache, judge_head
    from lore_ml.cli import SKIPPED
    from lore_ml.online_store import CacheReader, Keys

    _, job, lakehouse = chain
    config = judge_head.JudgeHeadConfig.load(overrides={**job, "max_items_per_query": 3})
    first = judge_head.run(config, judge=HashJudge())
    head = lakehouse.read_partition("silver.query_tiers", DS).where(F.col("tier") == "head").count()
    judgments = lakehouse.read_partition("gold.relevance_judgments", DS)
    assert first.judged == first.pairs == judgments.count() and head <= first.pairs <= 3 * head
    assert judgments.groupBy("query_hash").count().where(F.col("count") > 3).count() == 0
    assert judgments.where(F.col("status") == "failed").where(F.col("reasoning").isNull()).count() == 0
    before = content_hash(judgments)
    again = judge_head.run(config, judge=HashJudge())  # same model + prompts: only failures are judged again
    assert 0 < first.failed < first.pairs and (again.reused, again.judged) == (first.pairs - first.failed, first.failed)
    assert content_hash(lakehouse.read_partition("gold.relevance_judgments", DS)) == before

    prefix = f"test-{uuid.uuid4().hex[:8]}"
    fill = fill_cache.FillCacheConfig.load(overrides={**job, "redis": {"key_prefix": prefix}})
    try:
        result = fill_cache.run(fill, redis_client)
        assert result.switched and result.judgments == judgments.where(F.col("status") == "ok").count()
        reader = CacheReader(redis_client, Keys(prefix))
        row = judgments.where(F.col("status") == "ok").orderBy("query_hash", "item_id").first()
        tier, cached = reader.lookup(reader.active_version(), row["query_hash"], [row["item_id"]])
        assert tier == "head" and cached[0].label == row["label"] and cached[0].model_version == row["model_version"]
        meta = redis_client.hget(Keys(prefix).meta(result.version), "model_versions").decode()
        assert meta == ",".join(sorted({r["model_version"] for r in judgments.where(F.col("status") == "ok").collect()}))
        assert not fill_cache.run(fill, redis_client).switched  # same content: same version, nothing written

        # A backfilled day, older than the one the cache serves: skipped (the DAG's exit status), not switched.
        newer = "2026-02-01-0123456789ab"
        redis_client.hset(Keys(prefix).meta(newer), "ds", "2026-02-01")
        redis_client.set(Keys(prefix).active, newer)
        argv = ["--ds", DS, "--set", f"lakehouse.root={job['lakehouse']['root']}", "--set", f"redis.key_prefix={prefix}"]
        assert fill_cache.main(argv) == SKIPPED
        assert reader.active_version() == newer
        assert "skipped: active cache version 2026-02-01-0123456789ab holds ds=2026-02-01, newer than 2026-01-31" in (
            capsys.readouterr().err)
        assert fill_cache.main([*argv, "--force"]) == 0 and reader.active_version() == result.version
    finally:
        for key in redis_client.scan_iter(match=f"{prefix}:*"):
            redis_client.delete(key)


@pytest.fixture(scope="module")
def tower_vectors(chain):
    """silver.item_vectors / silver.query_vectors of the chain's day (a re-run encodes nothing)."""
    from jobs import embed_vectors

    _, job, lakehouse = chain
    cfg = embed_vectors.EmbedVectorsConfig.load(overrides=job)
    first = embed_vectors.run(cfg)
    assert embed_vectors.run(cfg) == {table: (rows, 0) for table, (rows, _) in first.items()}
    return first


def test_tower_vectors_cover_the_catalog_and_the_head_and_mid_queries(chain, tower_vectors):
    _, _, lakehouse = chain
    items = lakehouse.read("bronze.catalog").select("item_id").distinct().count()
    queries = lakehouse.read_partition("silver.query_tiers", DS).where(F.col("tier") != "tail").count()
    assert tower_vectors == {"silver.item_vectors": (items, items), "silver.query_vectors": (queries, queries)}


def test_distill_trains_a_student_the_shim_can_load_and_refuses_a_worse_one(chain, tower_vectors, tmp_path):
    import torch

    from lore_ml.distill import DistillConfig, run
    from lore_ml.students import RepresentationStudent, features, interaction_head, query_coverage

    _, job, _ = chain
    cfg = DistillConfig.load(overrides={**job, "dataset": "marketplace", "epochs": 3, "max_pairs": 400,
                                        "out_dir": str(tmp_path / "students")})
    metrics, out, promoted = run(cfg)
    manifest = json.loads((out / "manifest.json").read_text())
    assert promoted and (tmp_path / "students" / "current" / "head.pt").is_file()
    assert len(manifest["train_loss"]) == 3 and all(loss > 0 for loss in manifest["train_loss"])
    torch.manual_seed(cfg.seed)  # the head as run() initialised it, before training
    initial = interaction_head(manifest["input_width"], manifest["hidden"]).state_dict()
    trained = torch.load(out / "head.pt", weights_only=True)
    assert any(not torch.equal(initial[name], trained[name]) for name in initial)
    assert (out / "report" / "report.md").is_file() and 0 <= metrics["macro_f1"] <= 1
    assert metrics["decision"] == manifest["decision"] and "fitted on dev" in (out / "report" / "report.md").read_text()
    student = RepresentationStudent(tmp_path / "students" / "current")
    known = json.loads((out / "item_ids.json").read_text())[:2]
    p = student.score("stridex running shoes", [{"item_id": known[0]}, {"item_id": known[1]},
                                                {"item_id": "never-seen", "title": "red wool scarf"}])
    assert p.shape == (3, 4) and abs(p.sum(axis=1) - 1).max() < 1e-5
    head = interaction_head(manifest["input_width"], manifest["hidden"])  # what the shim computes, the long way
    head.load_state_dict(trained)
    head.eval()
    q, i = student._query_vector("stridex running shoes"), student.item_vectors[[student.item_row[k] for k in known]]
    coverage = [query_coverage("stridex running shoes", {"item_id": k}) for k in known]
    with torch.no_grad():
        expected = torch.softmax(head(torch.from_numpy(features(np.repeat(q[None], 2, 0), i, coverage))), -1).numpy()
    assert np.allclose(p[:2], expected, atol=1e-5)
    assert student.model_version == manifest["version"]
    head_query = json.loads((out / "queries.json").read_text())[0]  # precomputed: no encoding at request time
    assert np.allclose(student._query_vector(head_query), np.load(out / "query_vectors.npy")[0])
    assert student.is_cheap(head_query, [{"item_id": known[0]}])
    assert not student.is_cheap("a query never seen", [{"item_id": known[0]}])
    assert not student.is_cheap(head_query, [{"item_id": "new", "title": "blue wool hat"}])
    student.score("a query never seen", [{"item_id": "new", "title": "blue wool hat"}])  # encoded once, memoised
    assert student.is_cheap("a query never seen", [{"item_id": "new", "title": "blue wool hat"}])
    assert manifest["decision"]["rule"] in ("bias", "thresholds")
    assert manifest["dev"]["macro_f1"] == pytest.approx(manifest["decision"]["dev_macro_f1"])

    current = tmp_path / "students" / "current" / "manifest.json"
    current.write_text(json.dumps({**manifest, "dev": {**manifest["dev"], "macro_f1": 1.0}}))
    assert run(cfg)[2] is False and json.loads(current.read_text())["dev"]["macro_f1"] == 1.0


def test_distill_learns_the_teachers_judgments_of_unlabelled_train_pairs(chain, tower_vectors, tmp_path, monkeypatch):
    import pandas as pd

    from lore_ml import distill

    _, job, _ = chain
    cfg = distill.DistillConfig.load(overrides={**job, "dataset": "marketplace", "epochs": 1, "max_pairs": 400,
                                                "out_dir": str(tmp_path / "students")})
    pairs, items, _ = distill.labelled_pairs(cfg)
    train_query = pairs.loc[pairs["split"] == "train", "query_norm"].iloc[0]
    dev_query = pairs.loc[pairs["split"] == "dev", "query_norm"].iloc[0]
    labelled = set(zip(pairs["query_norm"], pairs["item_id"]))
    unlabelled = [item for item in sorted(items) if (train_query, item) not in labelled][:3]
    judged = pd.DataFrame({  # three unlabelled pairs of a train query, one of a dev query, one failed judgment
        "query_norm": [train_query] * 3 + [dev_query, train_query], "item_id": unlabelled + unlabelled[:2],
        "status": ["ok"] * 4 + ["failed"], "p": [[0.0, 0.1, 0.2, 0.7]] * 5})
    read = distill._read
    monkeypatch.setattr(distill, "_read", lambda cfg, table, **filters: (
        judged if table == "gold.relevance_judgments" else read(cfg, table, **filters)))
    learnt = {}
    train = distill.train_representation

    def recording_trainer(cfg, pairs, items, targets):
        learnt.update(pairs=pairs, targets=targets)
        return train(cfg, pairs, items, targets)

    monkeypatch.setattr(distill, "train_representation", recording_trainer)
    _, out, _ = distill.run(cfg)
    extra = learnt["pairs"].iloc[len(pairs):]
    assert list(zip(extra["query_norm"], extra["item_id"], extra["split"])) == [
        (train_query, item, "train") for item in unlabelled]
    assert np.allclose(learnt["targets"][len(pairs):], [0.0, 0.1, 0.2, 0.7])
    assert json.loads((out / "manifest.json").read_text())["teacher_pairs"] == 3

    distill.run(cfg.model_copy(update={"teacher_pairs": False}))
    assert len(learnt["pairs"]) == len(pairs)


def test_distill_cross_encoder_student_on_the_chain(chain, tmp_path):
    from lore_ml.cross_encoder import CrossEncoderStudent
    from lore_ml.distill import DistillConfig, run

    _, job, _ = chain
    cfg = DistillConfig.load(overrides={**job, "dataset": "marketplace", "student": "cross", "max_pairs": 120,
                                        "cross": {"batch_size": 16, "max_length": 32}, "epochs": 1,
                                        "out_dir": str(tmp_path / "students")})
    metrics, out, promoted = run(cfg)
    manifest = json.loads((out / "manifest.json").read_text())
    assert promoted and manifest["kind"] == "cross" and manifest["train_loss"] and manifest["settings"]["epochs"] == 1
    assert (tmp_path / "students" / "current-cross" / "config.json").is_file()
    assert not (tmp_path / "students" / "current").exists()  # the shim's student is untouched
    p = CrossEncoderStudent(tmp_path / "students" / "current-cross").score("stridex running shoes", [{"title": "shoe"}])
    assert p.shape == (1, 4) and 0 <= metrics["macro_f1"] <= 1
