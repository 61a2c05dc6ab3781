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


def _usage_error(capsys, config_class, argv) -> str:
    """What ``from_cli`` printed when it refused ``argv`` as a usage error (exit status 2)."""
    with pytest.raises(SystemExit) as exit_info:
        config_class.from_cli(argv, prog="lore-test")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.split("lore-test: error: ", 1)[1]


def test_ds_is_required_and_validated(capsys):
    assert _usage_error(capsys, JobConfig, []) == "invalid configuration:\n  ds: Field required\n"
    assert "ds: Value error" in _usage_error(capsys, JobConfig, ["--ds", "31/01/2026"])
    with pytest.raises(ValidationError, match="ds"):  # in Python, load() raises
        JobConfig.load(overrides={"ds": "2026-13-01"})


def test_unknown_fields_and_bad_values_are_usage_errors_naming_each_field(capsys, tmp_path):
    err = _usage_error(capsys, LoreConfig, ["--set", "spark.engin=jvm", "--set", "spark.shuffle_partitions=0"])
    assert "  spark.engin: Extra inputs are not permitted\n" in err
    assert "  spark.shuffle_partitions: Input should be greater than or equal to 1 (got 0)\n" in err
    assert "(got 'flink')" in _usage_error(capsys, LoreConfig, ["--set", "spark.engine=flink"])
    assert _usage_error(capsys, LoreConfig, ["--config", "/no/such.yaml"]) == "config file not found: /no/such.yaml\n"
    assert _usage_error(capsys, LoreConfig, ["--set", "spark"]) == "--set expects KEY=VALUE, got 'spark'\n"
    assert "the value is not YAML" in _usage_error(capsys, LoreConfig, ["--set", "spark.conf={"])
    broken = tmp_path / "broken.yaml"
    broken.write_text("spark: [\n")
    assert "broken.yaml" in _usage_error(capsys, LoreConfig, ["--config", str(broken)])
    err = _usage_error(capsys, LoreConfig, ["--set", "redis.password=98765"])
    assert "redis.password: Input should be a valid string" in err and "98765" not in err  # a secret never shown


def test_lore_serve_says_each_worker_loads_its_own_in_process_teacher(capsys, monkeypatch, tmp_path):
    from online import serve

    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setattr(serve.ShimServer, "run", lambda self: None)
    serve.main(["--set", f"teacher.model_path={tmp_path}", "--set", "teacher.device=cpu", "--set", "workers=3"])
    assert f"3 copies of {tmp_path} on cpu" in capsys.readouterr().err
    serve.main(["--set", f"teacher.model_path={tmp_path}", "--set", "workers=1"])
    serve.main(["--set", "teacher_url=http://teacher:8000/v1", "--set", f"teacher.model_path={tmp_path}"])
    assert "copies" not in capsys.readouterr().err


def test_table_uri_rejects_unqualified_names():
    with pytest.raises(ValueError):
        LoreConfig.load().lakehouse.table_uri("search_log")


def test_the_shim_refuses_model_paths_with_no_model_before_any_worker_boots(capsys, tmp_path):
    from online.config import ServeConfig

    assert "student_path: Value error, /nope is not a representation student directory (no manifest.json)" \
        in _usage_error(capsys, ServeConfig, ["--set", "student_path=/nope"])
    assert "teacher: Value error, model_path /nope is not a Hugging Face model directory" in _usage_error(
        capsys, ServeConfig, ["--set", "teacher.model_path=/nope"])
    assert "teacher_dir: Value error, /nope is not a directory" in _usage_error(
        capsys, ServeConfig, ["--set", "teacher_url=http://vllm:8000", "--set", "teacher_dir=/nope"])
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / "manifest.json").write_text("{}")
    served = ServeConfig.from_cli(["--set", f"student_path={tmp_path / 'student'}", "--set", "teacher_url=http://vllm",
                                   "--set", "teacher.model_path=/not/read/when/served/by/url"])
    assert served.student_path == tmp_path / "student"
