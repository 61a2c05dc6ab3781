"""The Airflow DAGs: they import cleanly and fast, have the expected task graphs, and the nightly
DAG runs green end to end (`airflow dags test`, SQLite) on a small generated marketplace."""

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from lore_ml.config import PROJECT_ROOT

DAGS = PROJECT_ROOT / "airflow_dags"
DS = "2026-01-31"
EXPECTED = {
    "lore_nightly": [("ingest", "rollup_logs"), ("rollup_logs", "stratify"), ("stratify", "build_kg"), ("build_kg", "mine_pairs"),
                     ("mine_pairs", "judge_head"), ("judge_head", "fill_cache"), ("stratify", "embed_vectors"),
                     ("fill_cache", "expire_partitions"), ("embed_vectors", "expire_partitions"),
                     ("expire_partitions", "vacuum_lakehouse")],
    "lore_weekly_training": [("synth_cot", "sft"), ("sft", "rl"), ("rl", "distill"), ("distill", "evaluate"),
                             ("evaluate", "promote"), ("rl", "distill_cross")],
}


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    sys.path.insert(0, str(DAGS))  # Airflow puts the DAG folder on sys.path; so does this test
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == set(EXPECTED)


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_task_graph(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    edges = sorted((up, down) for task in dag.tasks for up in [task.task_id] for down in task.downstream_task_ids)
    assert edges == sorted(EXPECTED[dag_id])
    for task in dag.tasks:
        assert task.retries >= 1 and task.execution_timeout is not None
        assert task.bash_command.startswith(os.environ.get("LORE_CLI", "lore"))
        assert ("{{ ds }}" in task.bash_command) == (task.task_id != "vacuum_lakehouse")  # the one task not about a day
    if dag_id == "lore_weekly_training":  # an LLM writing 50k reasoning paths takes hours
        assert dag.get_task("synth_cot").execution_timeout.total_seconds() >= 12 * 3600


def test_parse_time_under_two_seconds_per_file(dagbag):
    stats = {Path(stat.file).name: stat.duration for stat in dagbag.dagbag_stats}
    assert {"lore_nightly.py", "lore_weekly_training.py"} <= set(stats)
    for name, duration in stats.items():
        seconds = duration.total_seconds() if hasattr(duration, "total_seconds") else float(duration)
        assert seconds < 2.0, (name, seconds)


def test_spark_tasks_can_go_to_a_cluster_through_the_spark_provider(tmp_path):
    """With LORE_SPARK_SUBMIT=1 the Spark jobs become SparkSubmitOperators running jobs/*.py on the JVM engine."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from airflow.dag_processing.dagbag import DagBag; "
            "dag = DagBag(dag_folder=sys.argv[1] + '/lore_nightly.py').dags[\"lore_nightly\"]; "
            "import json; print(json.dumps({t.task_id: f'{type(t).__name__} {getattr(t, \"application\", \"\")}' "
            "for t in dag.tasks}))")
    env = {**os.environ, "LORE_SPARK_SUBMIT": "1", "AIRFLOW_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code, str(DAGS)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    tasks = json.loads(out.stdout.strip().splitlines()[-1])
    for job in ("ingest", "rollup_logs", "stratify", "build_kg", "mine_pairs", "embed_vectors"):
        assert tasks[job].startswith("SparkSubmitOperator") and tasks[job].endswith(f"jobs/{job}.py")
    assert tasks["judge_head"].startswith("BashOperator") and tasks["fill_cache"].startswith("BashOperator")


@pytest.fixture(scope="module")
def small_marketplace(tmp_path_factory):
    """One generated day and a tiny teacher whose (random) answers parse, for the nightly run."""
    from jobs.generate_marketplace import GenerateConfig, generate
    from lore_ml.inference import TransformersJudge
    from lore_ml.modeling import TinyQwenSpec, init_teacher
    from lore_ml.prompts import build_prompt, format_answer

    root = tmp_path_factory.mktemp("nightly")
    generate(GenerateConfig.load(overrides={"ds": DS, "rows": 20_000, "days": 1, "data": {"raw_root": str(root / "raw")}}))
    texts = [build_prompt(f"stridex shoes {i}", {"title": f"shoe {i}", "brand": "stridex"}) + format_answer(label, "why")
             for i in range(40) for label in ("L4", "L3", "L2:brand", "L1")]
    spec = TinyQwenSpec(vocab_size=2000, hidden_size=64, layers=1, heads=2, kv_heads=1, intermediate_size=128)
    for seed in range(20):  # a random model answers one label everywhere; take a seed whose label needs no dimension
        teacher = init_teacher(texts, root / f"teacher-{seed}", spec, seed=seed)
        if TransformersJudge(teacher).judge([build_prompt("stridex shoes", {"title": "shoe"})])[0].status == "ok":
            return root, teacher
    pytest.fail("no seed gave a tiny teacher with parseable answers")


@pytest.mark.redis
def test_airflow_dags_test_runs_the_nightly_dag_green(small_marketplace, redis_client, tmp_path):
    root, teacher = small_marketplace
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
        "LORE_CLI": f"{sys.executable} -m lore_ml.cli",
        "LORE_DATA__RAW_ROOT": str(root / "raw"),
        "LORE_LAKEHOUSE__ROOT": str(root / "lake"),
        "LORE_REDIS__KEY_PREFIX": prefix,
        "LORE_JUDGE__MODEL_PATH": str(teacher),
        "LORE_JUDGE__MAX_MODEL_LEN": "16000",
        "LORE_MAX_ITEMS_PER_QUERY": "2",
        "LORE_LAKEHOUSE__KEEP_DAYS__SILVER__KG_EDGES": "7",
    }
    env.pop("SPARK_CONNECT_MODE_ENABLED", None)
    airflow = str(Path(sys.executable).parent / "airflow")
    try:
        migrate = subprocess.run([airflow, "db", "migrate"], capture_output=True, text=True, env=env, timeout=300)
        assert migrate.returncode == 0, migrate.stderr[-3000:]
        run = subprocess.run([airflow, "dags", "test", "lore_nightly", DS], capture_output=True, text=True, env=env,
                             timeout=900, cwd=tmp_path)
        log = run.stdout + run.stderr
        assert run.returncode == 0, log[-5000:]
        assert "state=failed" not in log and "cache version" in log and "files replaced, expired or orphaned" in log
        assert re.search(r"silver.kg_edges +7 +0 +1  -", log)  # the retention ran; one day, nothing to remove
        active = redis_client.get(f"{prefix}:active")
        assert active is not None and active.decode().startswith(DS.replace("-", ""))
    finally:
        for key in redis_client.scan_iter(match=f"{prefix}:*"):
            redis_client.delete(key)
