"""The nightly chain on object stores: the same jobs (and the weekly one that synthesises SFT
examples), with the raw drops and the lakehouse in a bucket, write what they write on local disk,
leave no scratch behind, and the lakehouse upkeep commands (vacuum, migrate, expiry) work there.

Two stores, each an emulator in a process of its own on a free local port: S3 (moto; in the
default suite) and Azure Blob Storage (Azurite, from the npm registry; ``make test-azure``). Every
engine finds them the way it finds the real ones: through the environment (``AWS_*``; for Azure
``AZURE_STORAGE_*``), read by Sail and deltalake themselves and, for Azure, handed to pyarrow by
:func:`lore_ml.storage.filesystem`.
"""

import re
import socket
import subprocess
import sys
from contextlib import contextmanager

import pyarrow.fs
import pytest
from tenacity import retry, stop_after_delay, wait_fixed

from jobs import build_kg, synth_cot
from jobs.generate_marketplace import GenerateConfig, generate
from lore_ml.config import PROJECT_ROOT, LakehouseConfig
from lore_ml.lakehouse import Lakehouse, content_hash, migrate_main, vacuum_main
from lore_ml.retention import main as expire_main
from lore_ml.storage import filesystem

DS = "2026-01-31"
BUCKET = "lore-test"
CHAIN_TABLES = ("silver.daily_impressions", "silver.query_tiers", "silver.kg_edges", "silver.kg_nodes",
                "silver.training_pairs", "gold.sft_examples")
AZURITE = PROJECT_ROOT / ".tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="  # public


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def emulator(command: list[str], env: dict[str, str], create_bucket, log_path):
    """Run ``command`` with the store's settings in this process's environment until the context
    ends; ``create_bucket`` is retried until the emulator answers (or fails with its log)."""
    with log_path.open("w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            with pytest.MonkeyPatch.context() as patch:
                for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT"):
                    patch.delenv(name, raising=False)
                for name, value in env.items():
                    patch.setenv(name, value)
                try:
                    retry(stop=stop_after_delay(30), wait=wait_fixed(0.2), reraise=True)(create_bucket)()
                except Exception as exc:  # noqa: BLE001 - any failure to start is reported with the log
                    pytest.fail(f"{command[0]} did not answer: {exc}\n{log_path.read_text()[-2000:]}")
                yield
        finally:
            server.terminate()
            server.wait(timeout=10)


def s3_store(log_path):
    """moto's S3 server. It runs as a process of its own: deltalake holds the GIL while it waits on
    the network, which would stall a server thread of this one."""
    import boto3

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "lore-test", "AWS_SECRET_ACCESS_KEY": "lore-test"}
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    create = lambda: boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)  # noqa: E731
    return emulator(command, env, create, log_path), f"s3a://{BUCKET}"


def azure_store(log_path):
    """Azurite's blob service, installed by ``make azurite``; a missing install fails, never skips."""
    if not AZURITE.is_file():
        pytest.fail(f"Azurite is not installed at {AZURITE}: run `make azurite` (needs npm)")
    port = free_port()
    root = f"abfss://{BUCKET}@{AZURITE_ACCOUNT}.dfs.core.windows.net"
    env = {"AZURE_STORAGE_USE_EMULATOR": "true", "AZURITE_BLOB_STORAGE_URL": f"http://127.0.0.1:{port}",
           "AZURE_STORAGE_ACCOUNT_NAME": AZURITE_ACCOUNT, "AZURE_STORAGE_ACCOUNT_KEY": AZURITE_KEY}
    command = [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
               "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"]

    def create():
        fs, path = filesystem(root)
        fs.create_dir(path)

    return emulator(command, env, create, log_path), root


@pytest.fixture(scope="module")
def marketplace(tmp_path_factory, sail_spark, run_nightly_chain):
    """One generated marketplace (four days: ingest's volume check reads the Delta log of three
    earlier ones), chained on local disk."""
    root = tmp_path_factory.mktemp("object-store")
    raw = root / "raw"
    manifest = generate(GenerateConfig.load(overrides={"ds": DS, "rows": 20_000, "days": 4,
                                                       "data": {"raw_root": str(raw)}}))
    local = {"data": {"raw_root": str(raw)}, "lakehouse": {"root": str(root / "lake")}}
    job = run_nightly_chain(local, manifest["days"], DS)
    synth_cot.run(synth_cot.SynthCotConfig.load(overrides=job))
    return raw, manifest["days"], Lakehouse(sail_spark, LakehouseConfig(root=str(root / "lake")))


@pytest.fixture(scope="module", params=["s3", pytest.param("azure", marks=pytest.mark.azure)])
def bucket(request, marketplace, tmp_path_factory, sail_spark, run_nightly_chain):
    """The same marketplace chained with its raw drops and lakehouse in a bucket of the store."""
    store = {"s3": s3_store, "azure": azure_store}[request.param]
    running, root = store(tmp_path_factory.mktemp(request.param) / "emulator.log")
    raw, days, _ = marketplace
    with running:
        fs, raw_path = filesystem(f"{root}/raw")
        fs.create_dir(raw_path)
        pyarrow.fs.copy_files(str(raw), raw_path, destination_filesystem=fs)
        paths = {"data": {"raw_root": f"{root}/raw"}, "lakehouse": {"root": f"{root}/lake"}}
        job = run_nightly_chain(paths, days, DS)
        synth_cot.run(synth_cot.SynthCotConfig.load(overrides=job))  # the weekly DAG's first job; reads the KG
        yield Lakehouse(sail_spark, LakehouseConfig(root=f"{root}/lake"))


def _hashes(lakehouse: Lakehouse) -> dict[str, str]:
    return {table: content_hash(lakehouse.read_partition(table, DS)) for table in CHAIN_TABLES}


def test_the_chain_writes_in_a_bucket_what_it_writes_on_local_disk(bucket, marketplace):
    local = marketplace[2]
    assert bucket.read_partition("silver.training_pairs", DS).count() > 500
    assert bucket.partitions("bronze.search_log") == local.partitions("bronze.search_log")
    assert _hashes(bucket) == _hashes(local)


def test_the_jobs_leave_no_scratch_in_the_bucket(bucket):
    fs, path = filesystem(f"{bucket.config.root}/_staging")
    found = fs.get_file_info(pyarrow.fs.FileSelector(path, recursive=True))
    assert [f.path for f in found if f.type == pyarrow.fs.FileType.File] == []


def test_vacuum_and_migrate_work_on_the_bucket(bucket, capsys):
    root = ["--set", f"lakehouse.root={bucket.config.root}"]
    before = content_hash(bucket.read_partition("silver.kg_edges", DS))
    build_kg.run(build_kg.BuildKgConfig.load(overrides={"ds": DS, "lakehouse": {"root": bucket.config.root}}))
    capsys.readouterr()

    def vacuum(*flags: str) -> dict[str, str]:
        assert vacuum_main([*root, "--retention-hours", "0", *flags]) == 0
        return {line[:30].strip(): line[30:].strip() for line in capsys.readouterr().out.splitlines()[2:]}

    replaced = vacuum("--dry-run")
    assert int(replaced["silver.kg_edges"]) > 0 and int(replaced["silver.kg_nodes"]) > 0, replaced
    assert vacuum() == replaced
    assert vacuum("--dry-run")["all tables"] == "0"
    assert content_hash(bucket.read_partition("silver.kg_edges", DS)) == before
    assert migrate_main(root) == 0
    assert "silver.kg_edges               up to date" in capsys.readouterr().out


def test_expired_days_leave_the_bucket(bucket, capsys):
    table, root = "silver.daily_position_ratios", ["--set", f"lakehouse.root={bucket.config.root}"]
    assert expire_main([*root, "--ds", DS, "--window-days", "2", "--set",
                        "lakehouse.keep_days.silver.daily_position_ratios=2"]) == 0
    assert re.search(rf"{table} +2 +2 +2  2026-01-28..2026-01-29\n", capsys.readouterr().out)
    assert bucket.partitions(table) == {"2026-01-30", "2026-01-31"}
    assert vacuum_main([*root, "--retention-hours", "0"]) == 0
    fs, path = filesystem(bucket.uri(table))
    stored = fs.get_file_info(pyarrow.fs.FileSelector(path, recursive=True))
    assert {f.path[len(path) + 1:].split("/")[0] for f in stored if f.path.endswith(".parquet")} == {
        "ds=2026-01-30", "ds=2026-01-31"}


def test_a_process_reading_the_bucket_without_spark_exits_cleanly(bucket):
    """KnowledgeGraph.load (the teacher's prompts, the shim) reads the graph with deltalake; read
    from S3 through deltalake's own file handler, 6 of 10 such processes aborted at exit here."""
    load = ("from lore_ml.config import LakehouseConfig; from lore_ml.kg import KnowledgeGraph; "
            f"kg = KnowledgeGraph.load(LakehouseConfig(root={bucket.config.root!r}), {DS!r}); print(len(kg.brands))")
    for _ in range(5):
        done = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and int(done.stdout) > 0, (done.returncode, done.stderr[-2000:])


def test_synth_cots_reasoning_checkpoint_saves_resumes_and_clears_in_the_bucket(bucket):
    """The parts of an LLM reasoning run (lore_ml.cot_llm) are whole objects in the bucket."""
    from lore_ml.checkpoint import RunCheckpoint

    uri = f"{bucket.config.root}/_checkpoints/synth_cot/{DS}"
    assert RunCheckpoint(uri).load() == {}
    first = RunCheckpoint(uri, flush_every=2)
    for n in range(5):
        first.add(f"key-{n}", f"path {n}: R-BRD-01")
    first.flush()
    second = RunCheckpoint(uri)
    second.add("key-5", "path 5")
    second.flush()
    assert RunCheckpoint(uri).load() == {**{f"key-{n}": f"path {n}: R-BRD-01" for n in range(5)}, "key-5": "path 5"}
    RunCheckpoint(uri).clear()
    assert RunCheckpoint(uri).load() == {}
