"""The session factory: both runtimes start, and a JVM without Delta jars says exactly that."""

import pytest

from lore_ml.config import SparkConfig
from lore_ml.spark import CALL_SITE_CONF, DeltaJarsMissing, delta_jars, get_spark, require_delta


def test_sail_session_is_reused(sail_spark):
    assert get_spark(SparkConfig(engine="sail")) is sail_spark
    assert sail_spark.range(5).count() == 5


def test_sail_sessions_skip_recording_python_call_sites(sail_spark):
    """Sail's errors never show them, and recording one cost 0.2 ms per DataFrame call."""
    assert sail_spark.conf.get(CALL_SITE_CONF) == "false"


def test_both_runtimes_compute_the_same(spark):
    rows = spark.createDataFrame([("a", 1), ("b", 2), ("a", 3)], "k string, v int").groupBy("k").sum("v")
    assert sorted(tuple(r) for r in rows.collect()) == [("a", 4), ("b", 2)]


def test_jvm_without_delta_jars_names_them(jvm_spark):
    with pytest.raises(DeltaJarsMissing, match=r"delta-spark_2\.13.*delta-storage"):
        require_delta(jvm_spark, SparkConfig(engine="jvm"))


def test_jars_dir_lacking_jars_names_the_missing_ones(tmp_path):
    (tmp_path / "delta-spark_2.13-4.0.0.jar").write_bytes(b"")
    with pytest.raises(DeltaJarsMissing, match=r"lacks delta-storage-\*\.jar"):
        delta_jars(tmp_path)
    (tmp_path / "delta-storage-4.0.0.jar").write_bytes(b"")
    assert [p.rsplit("/", 1)[1] for p in delta_jars(tmp_path)] == ["delta-spark_2.13-4.0.0.jar", "delta-storage-4.0.0.jar"]


def test_connect_engine_needs_a_url():
    with pytest.raises(ValueError, match="spark.remote"):
        get_spark(SparkConfig(engine="connect"))
