import datetime as dt

import pytest
from pydantic import ValidationError

from jobs.ingest import IngestConfig
from lore_ml.config import JobConfig, LoreConfig


def test_defaults_run_locally():
    cfg = LoreConfig.load()
    assert cfg.spark.engine == "sail"
    assert cfg.lakehouse.table_uri("bronze.search_log").endswith("lakehouse/bronze/search_log")


def test_precedence_cli_over_env_over_yaml(tmp_path, monkeypatch):
    config_file = tmp_path / "c.yaml"
    config_file.write_text("spark: {engine: jvm, shuffle_partitions: 8}\nlakehouse: {root: /yaml}\nds: 2026-01-02\n")
    monkeypatch.setenv("LORE_LAKEHOUSE__ROOT", "/from-env")
    monkeypatch.setenv("LORE_REDIS__PASSWORD", "s3cret")
    cfg = IngestConfig.from_cli(["--config", str(config_file), "--set", "spark.shuffle_partitions=3"])
    assert cfg.spark.engine == "jvm"  # YAML
    assert cfg.spark.shuffle_partitions == 3  # CLI beats YAML
    assert cfg.lakehouse.root == "/from-env"  # env beats YAML
    assert cfg.redis.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(cfg)
    assert cfg.ds == dt.date(2026, 1, 2)
    assert IngestConfig.from_cli(["--config", str(config_file), "--ds", "2026-02-03"]).ds == dt.date(2026, 2, 3)


def test_ds_is_required_and_validated():
    with pytest.raises(ValidationError, match="ds"):
        JobConfig.from_cli([])
    with pytest.raises(ValidationError):
        JobConfig.from_cli(["--ds", "31/01/2026"])


def test_unknown_fields_and_bad_values_fail_loudly():
    with pytest.raises(ValidationError, match="engin"):
        LoreConfig.from_cli(["--set", "spark.engin=jvm"])
    with pytest.raises(ValidationError, match="engine"):
        LoreConfig.from_cli(["--set", "spark.engine=flink"])
    with pytest.raises(FileNotFoundError):
        LoreConfig.from_cli(["--config", "/no/such.yaml"])


def test_table_uri_rejects_unqualified_names():
    with pytest.raises(ValueError):
        LoreConfig.load().lakehouse.table_uri("search_log")
