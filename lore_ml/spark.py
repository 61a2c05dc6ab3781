"""Spark session factory for the runtimes of DESIGN.md §4.

* ``sail`` (default): a Sail Spark Connect server started in this process — no cluster, no
  JVM, no jars; Delta tables read and written natively.
* ``jvm``: Apache Spark (``local[N]`` or a cluster master) with delta-spark. The Delta jars
  come from ``spark.delta_jars_dir`` or ``spark.delta_packages``; without them the session
  still starts (pure transforms run) but any Delta read/write raises :class:`DeltaJarsMissing`.
* ``connect``: an existing Spark Connect endpoint (``spark.remote``), e.g. a cluster's.

Jobs submitted with ``spark-submit`` get the session spark-submit created (``jvm`` engine,
``SparkSession.builder.getOrCreate()`` picks it up).
"""

from __future__ import annotations

import atexit
import glob
import logging
import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_fixed

from lore_ml.config import SparkConfig

log = logging.getLogger(__name__)

DELTA_JAR_PATTERNS = ("delta-spark_2.13-*.jar", "delta-storage-*.jar")
DELTA_SQL_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"

_sail_servers: list = []
CALL_SITE_CONF = "spark.python.sql.dataFrameDebugging.enabled"


class DeltaJarsMissing(RuntimeError):
    """The JVM engine cannot read or write Delta tables because the jars are not available."""


def get_spark(config: SparkConfig) -> SparkSession:
    """Return a Spark session for ``config.engine`` (reusing one already started)."""
    if config.engine == "sail":
        return _sail_session(config)
    if config.engine == "connect":
        if not config.remote:
            raise ValueError("spark.engine=connect needs spark.remote (sc://host:port)")
        return _connect_session(config.remote, config)
    return _jvm_session(config)


# Sail's own log (Rust, on stderr): its INFO lines and the WARN it logs at every exit ("aborting
# N task(s) for SessionManagerActor") look like trouble in a job's output and are not. RUST_LOG
# set by the user wins.
SAIL_LOG_LEVELS = "warn,sail_common::actor=error"


def _sail_session(config: SparkConfig) -> SparkSession:
    os.environ.setdefault("RUST_LOG", SAIL_LOG_LEVELS)  # read when the server's logger starts
    from pysail.spark import SparkConnectServer

    if not _sail_servers:
        server = SparkConnectServer(ip="127.0.0.1", port=0)
        server.start(background=True)
        _sail_servers.append(server)
        atexit.register(server.stop)
    host, port = _sail_servers[0].listening_address
    # PySpark records the Python call site of every DataFrame call for error messages (0.2 ms a
    # call, most of it a failed `import IPython`: ~0.09 s of a build_kg run); Sail's errors never
    # show it. A `spark.conf` entry of the config still wins.
    debugging = {CALL_SITE_CONF: "false"} | config.conf
    return _connect_session(f"sc://{host}:{port}", config.model_copy(update={"conf": debugging}))


def _connect_session(url: str, config: SparkConfig) -> SparkSession:
    # The Connect builder itself, so a classic session in the same process does not block it.
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"  # pyspark.sql.functions build Connect columns
    return _configure(ConnectSession.builder.remote(url), config).getOrCreate()


def _jvm_session(config: SparkConfig) -> SparkSession:
    os.environ.pop("SPARK_REMOTE", None)
    os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)  # pyspark.sql.functions build classic columns
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Python UDF workers use this interpreter
    builder = SparkSession.builder.appName("lore")
    if "PYSPARK_GATEWAY_PORT" not in os.environ:  # under spark-submit the master comes from its flags
        builder = builder.master(config.master)
    jars = delta_jars(config.delta_jars_dir) if config.delta_jars_dir else []
    if jars:
        builder = builder.config("spark.jars", ",".join(jars))
    if config.delta_packages:
        builder = builder.config("spark.jars.packages", ",".join(config.delta_packages))
    if jars or config.delta_packages:
        builder = builder.config("spark.sql.extensions", DELTA_SQL_EXTENSION).config(
            "spark.sql.catalog.spark_catalog", DELTA_CATALOG
        )
    builder = builder.config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC")
    return _start_jvm(_configure(builder, config))


@retry(
    retry=retry_if_exception(lambda exc: "JAVA_GATEWAY_EXITED" in str(exc)),
    stop=stop_after_attempt(3),
    wait=wait_fixed(2),
    before_sleep=lambda state: log.warning("JVM gateway exited during start-up; retrying (%s)", state.attempt_number),
    reraise=True,
)
def _start_jvm(builder: SparkSession.Builder) -> SparkSession:
    """Start the JVM session; its gateway occasionally exits during start-up here, so retry."""
    return builder.getOrCreate()


def _configure(builder: SparkSession.Builder, config: SparkConfig) -> SparkSession.Builder:
    builder = builder.config("spark.sql.shuffle.partitions", str(config.shuffle_partitions))
    for key, value in config.conf.items():
        builder = builder.config(key, value)
    return builder


def delta_jars(jars_dir: Path) -> list[str]:
    """The Delta jars in ``jars_dir``; raises :class:`DeltaJarsMissing` naming what is absent."""
    found, missing = [], []
    for pattern in DELTA_JAR_PATTERNS:
        matches = sorted(glob.glob(str(Path(jars_dir) / pattern)))
        (found.extend(matches) if matches else missing.append(pattern))
    if missing:
        raise DeltaJarsMissing(
            f"spark.delta_jars_dir={jars_dir} lacks {', '.join(missing)}. The JVM engine needs the "
            "Delta Lake jars io.delta:delta-spark_2.13 and io.delta:delta-storage (Delta 4.x for "
            "Spark 4). Copy them from your Maven mirror into that folder, set "
            "spark.delta_packages to resolve them from a reachable Maven repository, or use "
            "spark.engine=sail, which needs no jars."
        )
    return found


def require_delta(spark: SparkSession, config: SparkConfig) -> None:
    """Fail with a clear message when this session cannot read or write Delta tables."""
    if config.engine != "jvm":
        return
    if not (config.delta_jars_dir or config.delta_packages):
        raise DeltaJarsMissing(
            "spark.engine=jvm has no Delta Lake jars: set spark.delta_jars_dir to a folder holding "
            "delta-spark_2.13-<version>.jar and delta-storage-<version>.jar, or spark.delta_packages "
            "to Maven coordinates (io.delta:delta-spark_2.13:<version>) your cluster can resolve. "
            "On a machine without Maven access use spark.engine=sail, which needs no jars."
        )
    jvm = spark.sparkContext._jvm  # noqa: SLF001 - the only way to probe the classpath
    try:
        jvm.java.lang.Class.forName(DELTA_SQL_EXTENSION)
    except Exception as exc:  # py4j wraps ClassNotFoundException
        raise DeltaJarsMissing(
            f"Delta Lake classes ({DELTA_SQL_EXTENSION}) are not on the JVM classpath although "
            f"spark.delta_jars_dir/delta_packages are set: {exc}"
        ) from exc
