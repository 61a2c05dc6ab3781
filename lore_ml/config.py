"""Typed configuration shared by every LORE entry point.

Each entry point defines one ``*Config`` class derived from :class:`LoreConfig` and builds it
with :meth:`LoreConfig.from_cli`. Values are resolved in this order (first wins):

1. command-line overrides: ``--set spark.engine=jvm`` (repeatable; values are YAML scalars)
   and the entry point's own flags (``--ds``, ``--rows`` ...);
2. environment variables: ``LORE_<FIELD>`` with ``__`` between nested fields, e.g.
   ``LORE_REDIS__PASSWORD`` (use this for secrets, never YAML);
3. the YAML file given with ``--config`` (see ``configs/local.yaml``);
4. the defaults below, which run everything locally.

Run ``lore <command> --help`` to see an entry point's flags and its own settings with their
defaults, and ``python -m lore_ml.config`` to print the fully resolved default configuration.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Collection, Literal, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError, YamlConfigSettingsSource

from lore_ml.storage import is_uri

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The checkout (or install) root; relative default paths are resolved against it."""

DEFAULT_HOME_DEPOT_DIR = PROJECT_ROOT.parent / "shared" / "data" / "home_depot"


TorchDevice = Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?)$")]
"""A setting naming where a model runs: cpu, cuda, cuda:N, or auto (the GPU when there is one)."""


def torch_device(setting: str) -> str:
    """The device a :data:`TorchDevice` setting names on this machine.

    >>> torch_device("cpu"), torch_device("cuda:1")
    ('cpu', 'cuda:1')
    """
    if setting != "auto":
        return setting
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SparkConfig(_Section):
    """Which Spark runtime runs the jobs (DESIGN.md §4)."""

    engine: Literal["sail", "jvm", "connect"] = Field(
        "sail",
        description="sail: embedded Sail Spark Connect server started in-process (default); "
        "jvm: Apache Spark (local master or a cluster) with delta-spark; "
        "connect: an existing Spark Connect endpoint given by `remote`.",
    )
    master: str = Field("local[2]", description="JVM engine: Spark master URL.")
    remote: str | None = Field(None, description="connect engine: sc://host:port URL.")
    delta_jars_dir: Path | None = Field(
        None,
        description="JVM engine: folder holding delta-spark_2.13-*.jar and delta-storage-*.jar "
        "(e.g. copied from the cluster's Maven mirror).",
    )
    delta_packages: list[str] = Field(
        default_factory=list,
        description="JVM engine: Maven coordinates resolved through spark.jars.packages "
        "(needs a reachable Maven repository or mirror), e.g. io.delta:delta-spark_2.13:4.0.0.",
    )
    shuffle_partitions: int = Field(
        4, ge=1, description="spark.sql.shuffle.partitions; small by default for one machine."
    )
    conf: dict[str, str] = Field(default_factory=dict, description="Extra Spark conf entries.")


class LakehouseConfig(_Section):
    """Where the Delta tables live."""

    root: str = Field(
        "lakehouse",
        description="Root folder or URI of the lakehouse; tables live at <root>/<layer>/<name>. "
        "Relative paths are resolved against the current directory.",
    )
    keep_days: dict[str, dict[str, PositiveInt]] = Field(
        default_factory=dict,
        description="Partition retention, by layer then table name: the days ending at ds each table keeps, e.g. "
        "{bronze: {search_log: 90}}; `lore expire-partitions` (the nightly DAG's expire_partitions task) drops "
        "the older days. Empty (the default): every day is kept. lore_ml/retention.py says which tables may "
        "expire and the fewest days each must keep.",
    )
    commit_attempts: PositiveInt = Field(
        8,
        description="Attempts at one day's write when another writer commits to the same table at the same "
        "moment (e.g. a backfill writing several days at once): Sail makes one commit attempt and fails the "
        "other writer, so the write is run again, after a random pause that grows with each attempt.",
    )

    def retention(self) -> dict[str, int]:
        """:attr:`keep_days` by full table name.

        >>> LakehouseConfig(keep_days={"bronze": {"search_log": 90}, "silver": {"kg_edges": 14}}).retention()
        {'bronze.search_log': 90, 'silver.kg_edges': 14}
        """
        return {f"{layer}.{name}": days for layer, tables in self.keep_days.items() for name, days in tables.items()}

    def table_uri(self, table: str) -> str:
        """``bronze.search_log`` → ``<root>/bronze/search_log`` (absolute for local paths)."""
        layer, _, name = table.partition(".")
        if not name:
            raise ValueError(f"table names are <layer>.<name>, got {table!r}")
        if is_uri(self.root):
            return f"{self.root.rstrip('/')}/{layer}/{name}"
        return str(Path(self.root).resolve() / layer / name)


class DataConfig(_Section):
    """Where raw inputs are read from."""

    raw_root: str = Field(
        "data/raw",
        description="Landing folder or storage URI for raw drops: <raw_root>/<source>/ds=<ds>/ files. jobs.ingest "
                    "reads URIs (s3a://, gs://, file://, ...); the generator and load_home_depot write local folders.",
    )
    home_depot_dir: Path = Field(
        DEFAULT_HOME_DEPOT_DIR,
        description="Folder with the human-rated Home Depot train.csv.zip (never copied in).",
    )


class RedisConfig(_Section):
    """The online store."""

    url: str = Field("redis://127.0.0.1:6379/0", description="redis:// or rediss:// (TLS) URL.")
    password: SecretStr | None = Field(None, description="Set through LORE_REDIS__PASSWORD.")
    key_prefix: str = Field("lore", description="Prefix of every key LORE writes.")


class LoreConfig(BaseSettings):
    """Settings every entry point shares."""

    model_config = SettingsConfigDict(
        env_prefix="LORE_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    spark: SparkConfig = Field(default_factory=SparkConfig)
    lakehouse: LakehouseConfig = Field(default_factory=LakehouseConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls), file_secret_settings)

    @classmethod
    def load(
        cls, config_file: str | Path | None = None, overrides: dict[str, Any] | None = None
    ):
        """Build the config from a YAML file (optional), the environment and overrides."""
        if config_file is not None and not Path(config_file).is_file():
            raise FileNotFoundError(f"config file not found: {config_file}")
        with_file = type(
            cls.__name__,
            (cls,),
            {"model_config": {**cls.model_config, "yaml_file": config_file}, "__module__": cls.__module__},
        )
        return with_file(**(overrides or {}))

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Entry points add their own flags here; each flag's dest is a dotted field path."""

    @classmethod
    def parser(cls, prog: str | None = None, description: str | None = None) -> argparse.ArgumentParser:
        settings = settings_help(cls, skip=set(LoreConfig.model_fields))
        epilog = ("settings of this command (--set KEY=VALUE; spark.*, lakehouse.*, data.* and redis.* are in "
                  "configs/local.yaml):\n" + "\n".join(settings)) if settings else None
        parser = argparse.ArgumentParser(prog=prog, description=description or cls.__doc__, epilog=epilog,
                                         formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--config", metavar="YAML", help="YAML config file (see configs/).")
        parser.add_argument(
            "--set",
            dest="overrides",
            metavar="KEY=VALUE",
            action="append",
            default=[],
            help="Override any field, e.g. --set spark.engine=jvm (repeatable).",
        )
        cls.add_arguments(parser)
        return parser

    @classmethod
    def from_cli(cls, argv: Sequence[str] | None = None, prog: str | None = None):
        """Parse ``argv`` (``sys.argv[1:]`` when None) into a validated config. A bad value, flag,
        config file or environment variable ends the program as a usage error (exit status 2) with
        one line per problem, not a traceback; :meth:`load` raises instead, for callers in Python."""
        parser = cls.parser(prog=prog)
        args = parser.parse_args(argv)
        overrides: dict[str, Any] = {}
        try:
            for item in args.overrides:
                key, sep, value = item.partition("=")
                if not sep or not key:
                    parser.error(f"--set expects KEY=VALUE, got {item!r}")
                try:
                    _assign(overrides, key, yaml.safe_load(value))
                except yaml.YAMLError as exc:
                    parser.error(f"--set {item!r}: the value is not YAML ({exc.problem})")
            for dest, value in vars(args).items():
                if dest not in ("config", "overrides") and value is not None:
                    _assign(overrides, dest, value)
            return cls.load(args.config, overrides)
        except ValidationError as exc:
            parser.error("invalid configuration:\n" + "\n".join(_problems(exc)))
        except (FileNotFoundError, yaml.YAMLError, SettingsError) as exc:
            parser.error(str(exc))


class InputsNotReady(RuntimeError):
    """A job's inputs for its ``ds`` are not there (a day not ingested or rolled up, an upstream
    job not run, a late drop); the message says what to run. Entry points print it as one line,
    without a traceback (:func:`lore_ml.cli.run_entry_point`)."""


class JobConfig(LoreConfig):
    """Settings of a daily batch job: every job is keyed by its logical date."""

    ds: dt.date = Field(
        description="Logical date YYYY-MM-DD (required); the job reads and rewrites only this "
        "partition. There is deliberately no default: a job never guesses today's date.",
    )

    @field_validator("ds", mode="before")
    @classmethod
    def _parse_ds(cls, value: Any) -> Any:
        if isinstance(value, str):
            return dt.date.fromisoformat(value)
        return value

    @property
    def ds_str(self) -> str:
        return self.ds.isoformat()

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--ds", help="Logical date YYYY-MM-DD.")


class WindowJobConfig(JobConfig):
    """A daily job that reads a trailing window of days ending at ``ds``."""

    window_days: int = Field(28, ge=1, description="Days of search logs read, ending at ds (inclusive).")
    max_missing_days: int = Field(
        0, ge=0, description="Days of the window (after the first day bronze.search_log holds) that may have no logs, "
        "e.g. an outage; with more the job fails naming them instead of counting fewer days. Set it for the DAG as "
        "LORE_MAX_MISSING_DAYS.")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--window-days", dest="window_days", type=int)

    @property
    def first_ds(self) -> str:
        """The first day of the window, ``ds - (window_days - 1)``."""
        return (self.ds - dt.timedelta(days=self.window_days - 1)).isoformat()


def _problems(exc: ValidationError) -> list[str]:
    """One line per invalid field, ``  spark.engine: Input should be ... (got 'flink')``; a secret's
    value is never shown.

    >>> try:
    ...     JobConfig(ds="2026-13-01", spark={"engin": "jvm"})
    ... except ValidationError as exc:
    ...     print("\\n".join(_problems(exc)))
      spark.engin: Extra inputs are not permitted
      ds: Value error, month must be in 1..12 (got '2026-13-01')
    """
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "config"
        value = error.get("input")
        shown = isinstance(value, (str, int, float)) and "password" not in where and error["type"] != "extra_forbidden"
        lines.append(f"  {where}: {error['msg']}" + (f" (got {value!r})" if shown else ""))
    return lines


def settings_help(model: type[BaseModel], prefix: str = "", skip: Collection[str] = ()) -> list[str]:
    """One wrapped entry per field of ``model``, nested models flattened to dotted keys, e.g.
    ``judge.device = auto: ...``: what ``--help`` lists under the flags.

    >>> class Judge(BaseModel):
    ...     device: str = Field("auto", description="Where to judge.")
    >>> class Job(BaseModel):
    ...     judge: Judge = Field(default_factory=Judge)
    >>> settings_help(Job)
    ['  judge.device = auto: Where to judge.']
    """
    import textwrap

    lines = []
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        default = "(required)" if field.is_required() else field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            lines += settings_help(type(default), f"{prefix}{name}.")
            continue
        shown = "(secret)" if isinstance(default, SecretStr) else yaml.safe_dump(
            default if isinstance(default, (str, int, float, bool, list, dict, type(None))) else str(default),
            default_flow_style=True, width=10**6).strip().removesuffix("...").strip()
        text = f"{prefix}{name} = {shown}" + (f": {field.description}" if field.description else "")
        lines.append(textwrap.fill(text, width=100, initial_indent="  ", subsequent_indent="      "))
    return lines


def _assign(target: dict[str, Any], dotted_key: str, value: Any) -> None:
    *parents, leaf = dotted_key.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


if __name__ == "__main__":
    print(yaml.safe_dump(LoreConfig.from_cli().model_dump(mode="json"), sort_keys=False))
