"""The nightly chain on S3: the same jobs (and the weekly one that synthesises SFT examples), with
the raw drops and the lakehouse in a bucket of an S3-protocol server (moto, on this machine),
write what they write on local disk, leave no scratch behind, and the lakehouse upkeep commands
work there. Every engine finds the server the way it finds AWS: the ``AWS_*`` environment
variables (Sail, pyarrow.fs and deltalake alike)."""

import socket
import subprocess
import sys

import pyarrow.fs
import pytest

from jobs import build_kg, synth_cot
from jobs.generate_marketplace import GenerateConfig, generate
from lore_ml.config import LakehouseConfig
from lore_ml.lakehouse import Lakehouse, content_hash, migrate_main, vacuum_main

DS = "2026-01-31"
BUCKET = "lore-test"
CHAIN_TABLES = ("silver.daily_impressions", "silver.query_tiers", "silver.kg_edges", "silver.kg_nodes",
                "silver.training_pairs", "gold.sft_examples")


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """An S3-protocol server on a free local port, with one empty bucket, named to every engine
    through the environment for the module's tests. It runs in a process of its own: deltalake
    holds the GIL while it waits on the network, which would stall a server thread of this one."""
    import boto3
    from tenacity import retry, stop_after_delay, wait_fixed

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("s3") / "moto.log"
    log = log_path.open("w")
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        with pytest.MonkeyPatch.context() as env:
            for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT"):
                env.delenv(name, raising=False)
            for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
                                "AWS_ACCESS_KEY_ID": "lore-test", "AWS_SECRET_ACCESS_KEY": "lore-test"}.items():
                env.setenv(name, value)
            client = boto3.client("s3", endpoint_url=endpoint)
            try:
                retry(stop=stop_after_delay(30), wait=wait_fixed(0.2), reraise=True)(client.create_bucket)(
                    Bucket=BUCKET)
            except Exception as exc:  # noqa: BLE001 - any failure to start is reported with the server's log
                pytest.fail(f"moto's S3 server did not answer on {endpoint}: {exc}\n{log_path.read_text()[-2000:]}")
            yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def chains(s3_server, sail_spark, tmp_path_factory, run_nightly_chain):
    """One generated marketplace (four days: ingest's volume check reads the Delta log of three
    earlier ones), chained once from a bucket and once from local disk."""
    root = tmp_path_factory.mktemp("object-store")
    raw = root / "raw"
    manifest = generate(GenerateConfig.load(overrides={"ds": DS, "rows": 20_000, "days": 4,
                                                       "data": {"raw_root": str(raw)}}))
    bucket, _ = pyarrow.fs.FileSystem.from_uri(f"s3://{BUCKET}/raw")
    pyarrow.fs.copy_files(str(raw), f"{BUCKET}/raw", destination_filesystem=bucket)
    s3 = {"data": {"raw_root": f"s3a://{BUCKET}/raw"}, "lakehouse": {"root": f"s3a://{BUCKET}/lake"}}
    local = {"data": {"raw_root": str(raw)}, "lakehouse": {"root": str(root / "lake")}}
    for paths in (s3, local):
        job = run_nightly_chain(paths, manifest["days"], DS)
        synth_cot.run(synth_cot.SynthCotConfig.load(overrides=job))  # the weekly DAG's first job; reads the KG
    return {name: Lakehouse(sail_spark, LakehouseConfig(root=paths["lakehouse"]["root"]))
            for name, paths in (("s3", s3), ("local", local))}


def _hashes(lakehouse: Lakehouse) -> dict[str, str]:
    return {table: content_hash(lakehouse.read_partition(table, DS)) for table in CHAIN_TABLES}


def test_the_chain_writes_in_a_bucket_what_it_writes_on_local_disk(chains):
    s3 = chains["s3"]
    assert s3.read_partition("silver.training_pairs", DS).count() > 500
    assert s3.partitions("bronze.search_log") == chains["local"].partitions("bronze.search_log")
    assert _hashes(s3) == _hashes(chains["local"])


def test_the_jobs_leave_no_scratch_in_the_bucket(chains):
    bucket, _ = pyarrow.fs.FileSystem.from_uri(f"s3://{BUCKET}/lake")
    found = bucket.get_file_info(pyarrow.fs.FileSelector(f"{BUCKET}/lake/_staging", recursive=True))
    assert [f.path for f in found if f.type == pyarrow.fs.FileType.File] == []


def test_vacuum_and_migrate_work_on_the_bucket(chains, capsys):
    lake = chains["s3"]
    root = ["--set", f"lakehouse.root={lake.config.root}"]
    before = content_hash(lake.read_partition("silver.kg_edges", DS))
    build_kg.run(build_kg.BuildKgConfig.load(overrides={"ds": DS, "lakehouse": {"root": lake.config.root}}))
    capsys.readouterr()

    def vacuum(*flags: str) -> dict[str, str]:
        assert vacuum_main([*root, "--retention-hours", "0", *flags]) == 0
        return {line[:30].strip(): line[30:].strip() for line in capsys.readouterr().out.splitlines()[2:]}

    replaced = vacuum("--dry-run")
    assert int(replaced["silver.kg_edges"]) > 0 and int(replaced["silver.kg_nodes"]) > 0, replaced
    assert vacuum() == replaced
    assert vacuum("--dry-run")["all tables"] == "0"
    assert content_hash(lake.read_partition("silver.kg_edges", DS)) == before
    assert migrate_main(root) == 0
    assert "silver.kg_edges               up to date" in capsys.readouterr().out


def test_a_process_reading_the_bucket_without_spark_exits_cleanly(chains):
    """KnowledgeGraph.load (the teacher's prompts, the shim) reads the graph with deltalake; read
    from S3 through deltalake's own file handler, 6 of 10 such processes aborted at exit here."""
    root = chains["s3"].config.root
    load = ("import sys; from lore_ml.config import LakehouseConfig; from lore_ml.kg import KnowledgeGraph; "
            f"kg = KnowledgeGraph.load(LakehouseConfig(root={root!r}), {DS!r}); print(len(kg.brands))")
    for _ in range(5):
        done = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and int(done.stdout) > 0, (done.returncode, done.stderr[-2000:])
