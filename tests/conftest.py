"""Shared fixtures: one session-scoped Spark session per runtime, temporary lakehouse roots."""

from __future__ import annotations

import logging
import shutil

import pytest

from lore_ml.config import DEFAULT_HOME_DEPOT_DIR, LakehouseConfig, SparkConfig

ENGINES = ("sail", "jvm")


@pytest.fixture(scope="session")
def sail_spark():
    """The embedded engine (default runtime): Sail started in-process."""
    from lore_ml.spark import get_spark

    return get_spark(SparkConfig(engine="sail"))


@pytest.fixture(scope="session")
def jvm_spark():
    """Apache Spark in local JVM mode (no Delta jars: pure transforms only)."""
    if shutil.which("java") is None:
        pytest.fail("java is not installed: the JVM Spark runtime needs Java 17 (apt-get install openjdk-17-jre-headless)")
    from lore_ml.spark import get_spark

    logging.getLogger("py4j").setLevel(logging.WARNING)
    session = get_spark(SparkConfig(engine="jvm", master="local[2]"))
    yield session
    session.stop()


@pytest.fixture(scope="session", params=ENGINES)
def spark(request):
    """Pure transforms run on both runtimes: tests using this fixture run once per engine."""
    return request.getfixturevalue(f"{request.param}_spark")


@pytest.fixture(autouse=True)
def _spark_api_mode(request, monkeypatch):
    """pyspark builds Connect or classic columns from one process-wide flag; a process normally
    uses one runtime, the tests use both, so each test gets the flag of the runtime it uses."""
    names = set(request.fixturenames)
    engine = getattr(request.node, "callspec", None) and request.node.callspec.params.get("spark")
    if engine == "jvm" or ("jvm_spark" in names and engine is None):
        monkeypatch.delenv("SPARK_CONNECT_MODE_ENABLED", raising=False)
    elif names & {"spark", "sail_spark", "lakehouse"}:
        monkeypatch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")


@pytest.fixture
def lakehouse(sail_spark, tmp_path):
    from lore_ml.lakehouse import Lakehouse

    return Lakehouse(sail_spark, LakehouseConfig(root=str(tmp_path / "lakehouse")))


@pytest.fixture(scope="session")
def home_depot_dir():
    if not (DEFAULT_HOME_DEPOT_DIR / "train.csv.zip").is_file():
        pytest.skip(f"Home Depot data not found at {DEFAULT_HOME_DEPOT_DIR} (set by the checkout layout ../shared)")
    return DEFAULT_HOME_DEPOT_DIR


@pytest.fixture(scope="session")
def redis_client():
    """The local redis-server `make setup` starts; a missing server fails loudly (never a skip)."""
    import redis

    from lore_ml.config import RedisConfig
    from lore_ml.online_store import connect

    config = RedisConfig()
    client = connect(config)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"no redis-server at {config.url} ({exc}): run `make redis` (scripts/ensure_redis.sh)")
    return client


@pytest.fixture(scope="session")
def run_nightly_chain():
    """The nightly Spark jobs in the DAG's order, as a function of (paths overrides, the days to
    ingest and roll up, the day to build for)."""
    def run(paths: dict, days: list[str], ds: str) -> dict:
        from jobs import build_kg, mine_pairs, rollup_logs, stratify
        from jobs.ingest import IngestConfig
        from jobs.ingest import run as ingest

        for day in days:
            ingest(IngestConfig.load(overrides={"ds": day, **paths}))
            rollup_logs.run(rollup_logs.RollupLogsConfig.load(overrides={"ds": day, **paths}))
        job = {"ds": ds, **paths}
        stratify.run(stratify.StratifyConfig.load(overrides={**job, "head_min_searches": 5}))
        build_kg.run(build_kg.BuildKgConfig.load(overrides=job))
        mine_pairs.run(mine_pairs.MinePairsConfig.load(overrides=job))
        return job

    return run
