"""The Airflow DAGs: they import cleanly and fast, have the expected task graphs, and the nightly
DAG runs green end to end (`airflow dags test`, SQLite) on a small generated marketplace."""

import datetime as dt
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
        assert task.retry_exponential_backoff > 1  # a multiplier: True would be 1, a constant delay
        assert task.bash_command.startswith(os.environ.get("LORE_CLI", "lore"))
        day = "{{ ds }}" if dag_id == "lore_nightly" else "{{ macros.ds_add(ds, -1) }}"
        assert (f"--ds {day}" in task.bash_command) == (task.task_id != "vacuum_lakehouse")  # the one task not about a day
    if dag_id == "lore_weekly_training":  # an LLM writing 50k reasoning paths takes hours
        assert dag.get_task("synth_cot").execution_timeout.total_seconds() >= 12 * 3600


FIRST_RUNS = """
import json, sys
sys.path.insert(0, sys.argv[1])
import jinja2, pendulum
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.execution_time import macros
from airflow.serialization.serialized_objects import DagSerialization
from airflow.timetables.base import TimeRestriction

bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
first = {}
for dag_id, task_id in (("lore_nightly", "ingest"), ("lore_weekly_training", "synth_cot")):
    dag = bag.dags[dag_id]
    run = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag)).timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=pendulum.datetime(2026, 1, 5, tz="UTC"), latest=None, catchup=True))
    command = jinja2.Template(dag.get_task(task_id).bash_command).render(ds=run.logical_date.strftime("%Y-%m-%d"),
                                                                        macros=macros)
    first[dag_id] = [run.run_after.isoformat(), command.split("--ds ")[1].split()[0]]
print(json.dumps(first))
"""


@pytest.mark.parametrize(("nightly_hour", "expected"), [
    (None, {"lore_nightly": ["2026-01-06T00:00:00+00:00", "2026-01-05"],
            "lore_weekly_training": ["2026-01-11T06:00:00+00:00", "2026-01-10"]}),
    ("3", {"lore_nightly": ["2026-01-06T03:00:00+00:00", "2026-01-05"],
           "lore_weekly_training": ["2026-01-11T09:00:00+00:00", "2026-01-10"]}),
])
def test_a_scheduled_run_works_on_a_day_that_has_ended(tmp_path, nightly_hour, expected):
    """From Monday 2026-01-05: the nightly run starting on D+1 (at LORE_NIGHTLY_HOUR) works on D (with a
    plain cron string Airflow 3 would start the run for D at 00:00 of D, before any of D's drops); the
    weekly run starting on Sunday, six hours after the nightly one, works on Saturday."""
    env = {k: v for k, v in os.environ.items() if k != "LORE_NIGHTLY_HOUR"} | {"AIRFLOW_HOME": str(tmp_path)}
    if nightly_hour is not None:
        env["LORE_NIGHTLY_HOUR"] = nightly_hour
    done = subprocess.run([sys.executable, "-c", FIRST_RUNS, str(DAGS)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected


def test_a_nightly_hour_too_late_for_the_weekly_run_is_refused(tmp_path):
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "LORE_NIGHTLY_HOUR": "20"}
    done = subprocess.run([sys.executable, "-c", FIRST_RUNS, str(DAGS)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode != 0 and "LORE_NIGHTLY_HOUR=20: give an hour of the day from 0 to 17" in done.stderr


def test_a_backfill_of_several_days_at_once_keeps_each_days_inputs_ready(dagbag):
    """An Airflow backfill runs days at once whatever the DAG's max_active_runs: the tasks that read the
    days before their own wait for the day before, and GPU or whole-lakehouse tasks run one at a time."""
    dag = dagbag.dags["lore_nightly"]
    assert {t.task_id for t in dag.tasks if t.depends_on_past} == {"ingest", "stratify"}
    assert {t.task_id for t in dag.tasks if t.max_active_tis_per_dag == 1} == {
        "judge_head", "expire_partitions", "vacuum_lakehouse"}
    window_jobs = {"build_kg", "mine_pairs", "embed_vectors", "judge_head"}  # they read the window or its tiers
    assert window_jobs <= dag.get_task("stratify").get_flat_relative_ids(upstream=False)


def test_the_weekly_training_is_never_backfilled(dagbag):
    """A backfill's weeks would run at once, sharing the GPU and the model folders; an older week is
    triggered by hand, which max_active_runs=1 holds to one run at a time."""
    dag = dagbag.dags["lore_weekly_training"]
    assert dag.allowed_run_types == {"scheduled", "manual"} and dag.max_active_runs == 1


def test_the_dags_skip_what_lore_commands_decline(dagbag):
    from lore_tasks import SKIP_EXIT_CODE

    from lore_ml.cli import SKIPPED

    assert SKIP_EXIT_CODE == SKIPPED
    for dag in dagbag.dags.values():
        assert all(task.skip_on_exit_code == [SKIPPED] for task in dag.tasks)


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
            "import json; print(json.dumps({t.task_id: f'{type(t).__name__} {t.depends_on_past} "
            "{getattr(t, \"application\", \"\")}' for t in dag.tasks}))")
    env = {**os.environ, "LORE_SPARK_SUBMIT": "1", "AIRFLOW_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code, str(DAGS)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    tasks = json.loads(out.stdout.strip().splitlines()[-1])
    for job in ("ingest", "rollup_logs", "stratify", "build_kg", "mine_pairs", "embed_vectors"):
        waits = job in ("ingest", "stratify")  # for the day before, as the BashOperators do
        assert tasks[job].startswith(f"SparkSubmitOperator {waits} ") and tasks[job].endswith(f"jobs/{job}.py")
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


STAND_IN_LORE = '''#!{python}
"""A stand-in for `lore`: records when each command starts and ends for its day; fill-cache declines
(exit 99) every day but the last, as for days older than the one the cache serves."""
import json, sys, time
command, ds = sys.argv[1], (sys.argv[sys.argv.index("--ds") + 1] if "--ds" in sys.argv else None)
started = time.time()
time.sleep(1)
with open({events!r}, "a") as events:
    events.write(json.dumps({{"command": command, "ds": ds, "start": started, "end": time.time()}}) + "\\n")
sys.exit(99 if command == "fill-cache" and ds != {last_day!r} else 0)
'''


def _airflow_json(airflow: str, env: dict, *args: str) -> list[dict]:
    done = subprocess.run([airflow, *args, "-o", "json"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(next(line for line in reversed(done.stdout.splitlines()) if line.startswith(("[{", "[]"))))


@pytest.mark.slow
def test_an_airflow_backfill_of_days_at_once_keeps_the_day_order_where_it_must(tmp_path):
    """A real backfill of four days with --max-active-runs 4 (scheduler, DAG processor and API server on
    SQLite, LocalExecutor), each task a stand-in `lore`: ingest and stratify start only once the day
    before's ended, rollups run beside other days' work, judge_head never twice at once, and a
    fill_cache that declines is skipped with the tasks after it while the runs succeed. The scheduled
    run that unpausing starts works on the day that ended last."""
    import signal
    import socket
    import time

    days = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]
    events = tmp_path / "events.jsonl"
    stand_in = tmp_path / "lore"
    stand_in.write_text(STAND_IN_LORE.format(python=sys.executable, events=str(events), last_day=days[-1]))
    stand_in.chmod(0o755)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "LORE_CLI": str(stand_in),
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    migrate = subprocess.run([airflow, "db", "migrate"], capture_output=True, text=True, env=env, timeout=300)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in ("api-server", "scheduler", "dag-processor")}
    servers = [subprocess.Popen([airflow, name, *(["--port", str(port)] if name == "api-server" else [])], env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
               for name, log in logs.items()]
    try:
        deadline = time.monotonic() + 180
        while not any(d["dag_id"] == "lore_nightly" for d in _airflow_json(airflow, env, "dags", "list")):
            assert time.monotonic() < deadline, "the DAG processor never parsed lore_nightly"
            time.sleep(3)
        backfill = [airflow, "backfill", "create", "--dag-id", "lore_nightly", "--from-date", days[0],
                    "--to-date", days[-1], "--max-active-runs", "4"]
        refused = subprocess.run(backfill, capture_output=True, text=True, env=env, timeout=120)
        assert refused.returncode != 0 and "reprocess" in refused.stderr  # depends_on_past asks for a reprocess behavior
        created = subprocess.run([*backfill, "--reprocess-behavior", "failed"], capture_output=True, text=True,
                                 env=env, timeout=120)
        assert created.returncode == 0, created.stderr[-3000:]
        subprocess.run([airflow, "dags", "unpause", "lore_nightly"], capture_output=True, env=env, timeout=120, check=True)
        deadline = time.monotonic() + 400
        while True:  # the backfill's runs, and the scheduled run that unpausing starts (the last finished day)
            listed = _airflow_json(airflow, env, "dags", "list-runs", "lore_nightly")
            runs = {r["logical_date"][:10]: r for r in listed if r["run_id"].startswith("backfill__")}
            scheduled = [r for r in listed if r["run_id"].startswith("scheduled__")]
            if len(runs) == len(days) and scheduled and all(
                    r["state"] in ("success", "failed") for r in [*runs.values(), *scheduled]):
                break
            assert time.monotonic() < deadline, f"runs not done: {listed}"
            time.sleep(5)
        assert {day: run["state"] for day, run in runs.items()} == {day: "success" for day in days}
        scheduled = min(scheduled, key=lambda run: run["logical_date"])  # a second one only past midnight UTC
        started, day = dt.datetime.fromisoformat(scheduled["run_after"]), dt.datetime.fromisoformat(
            scheduled["logical_date"])
        assert scheduled["state"] == "success" and started - day == dt.timedelta(days=1), scheduled
        states = {task["task_id"]: task["state"] for task in _airflow_json(
            airflow, env, "tasks", "states-for-dag-run", "lore_nightly", runs[days[0]]["run_id"])}
        assert {task: states[task] for task in ("fill_cache", "expire_partitions", "vacuum_lakehouse")} == {
            "fill_cache": "skipped", "expire_partitions": "skipped", "vacuum_lakehouse": "skipped"}
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
        for server in servers:
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:  # the scheduler's executor workers can take minutes
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=20)

    recorded = [json.loads(line) for line in events.read_text().splitlines()]
    spans = {}
    for event in recorded:
        if event["ds"] in days or event["ds"] is None:
            spans.setdefault(event["command"], []).append((event["ds"], event["start"], event["end"]))
    assert {(event["command"], event["ds"]) for event in recorded} >= {
        ("ingest", day.date().isoformat()), ("mine-pairs", day.date().isoformat())}  # the scheduled run's day
    for command in ("ingest", "stratify"):
        ordered = sorted(spans[command])
        assert [ds for ds, _, _ in ordered] == days
        assert all(later[1] >= earlier[2] for earlier, later in zip(ordered, ordered[1:])), (command, ordered)
    judging = sorted(spans["judge-head"], key=lambda span: span[1])
    assert all(later[1] >= earlier[2] for earlier, later in zip(judging, judging[1:])), judging
    other_days_work = [span for command, runs in spans.items() if command != "rollup-logs" for span in runs]
    assert any(start < other_end and other_start < end and ds != other_ds
               for ds, start, end in spans["rollup-logs"] for other_ds, other_start, other_end in other_days_work)
