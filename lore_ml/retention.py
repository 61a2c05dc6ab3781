"""Partition retention: drop the days of a table older than its ``lakehouse.keep_days``.

Every job writes a partition per ``ds``, so without a policy the lakehouse only grows: a night's
``silver.kg_edges`` alone is every item fact again, and ``bronze.search_log`` keeps each
searcher's ``user_id`` for as long as the table lives. ``lore expire-partitions --ds D`` (the
nightly DAG's ``expire_partitions`` task) removes, from each table given a retention, the days
before the ``keep_days`` days ending at ``D``:

* the newest day at or before ``D`` is always kept, however old (a snapshot still in force, or a
  job that has not run for a while), and days after ``D`` are never touched (a backfill);
* the removal is a Delta commit through ``deltalake`` (no Spark), so readers never see half of it
  and a re-run removes nothing more; the files stay until ``lore vacuum-lakehouse`` deletes them
  past its retention (168 h by default), which is also how long the days can be read back by version;
* tables that jobs read whole cannot be given a retention (:data:`READ_WHOLE`), and the daily
  rollups must keep at least the longest window a job reads (``window_days``);
* the run checkpoints of days before the ``checkpoint_keep_days`` ending at ``D`` are deleted
  (:func:`lore_ml.checkpoint.expire_checkpoints`): a day whose run failed and was not run again
  within them will not be. This needs no policy.

    lore expire-partitions --ds 2026-01-31 --dry-run --set lakehouse.keep_days.bronze.search_log=90
"""

from __future__ import annotations

import datetime as dt
import logging

from pydantic import Field, model_validator

from lore_ml.checkpoint import expire_checkpoints
from lore_ml.config import JobConfig

log = logging.getLogger("lore.retention")

READ_WHOLE = {
    "bronze.catalog": "embed_vectors and the pair context read every snapshot up to ds",
    "bronze.human_labels": "every label up to ds trains (mine_pairs) and evaluates (eval)",
    "gold.relevance_judgments": "judge_head reuses earlier days' judgments instead of judging those pairs again",
}
"""Tables whose old days are read by later runs: a retention on them is refused, with the reason."""


def min_keep_days(table: str, window_days: int) -> int:
    """The fewest days ``table`` may keep: a window job's whole window of rollups, and for the raw
    logs the days ingest compares a new drop's size with (plus the day itself)."""
    from jobs.ingest import VOLUME_HISTORY_DAYS
    from jobs.rollup_logs import TABLES as DAILY_ROLLUPS

    if table in DAILY_ROLLUPS:
        return window_days
    return VOLUME_HISTORY_DAYS + 1 if table == "bronze.search_log" else 1


class ExpirePartitionsConfig(JobConfig):
    """Remove the days of each table older than its lakehouse.keep_days, counted back from ds."""

    window_days: int = Field(28, ge=1, description="The longest window of the window jobs: the daily rollups "
                             "(silver.daily_*) must keep at least this many days.")
    dry_run: bool = Field(False, description="List what would be removed; remove nothing.")
    checkpoint_keep_days: int = Field(7, ge=1, description="Days (ending at ds) whose run checkpoints "
                                      "(_checkpoints/<job>/<ds>) are kept for a re-run; older ones are deleted.")

    @classmethod
    def add_arguments(cls, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--window-days", dest="window_days", type=int,
                            help="The longest window of the window jobs (default 28): the daily rollups keep at least "
                            "this many days.")
        parser.add_argument("--dry-run", dest="dry_run", action="store_const", const=True,
                            help="List the days that would be removed; remove nothing.")

    @model_validator(mode="after")
    def _check_policy(self):
        from lore_ml.lakehouse import SCHEMAS

        problems = []
        for table, days in self.lakehouse.retention().items():
            if table not in SCHEMAS:
                problems.append(f"{table}: no such table; tables that may expire: "
                                f"{', '.join(sorted(set(SCHEMAS) - set(READ_WHOLE)))}")
            elif table in READ_WHOLE:
                problems.append(f"{table} cannot expire: {READ_WHOLE[table]}")
            elif days < (least := min_keep_days(table, self.window_days)):
                problems.append(f"{table} must keep at least {least} days, got {days}")
        if problems:
            raise ValueError("lakehouse.keep_days:\n    " + "\n    ".join(problems))
        return self


def expired_days(days: set[str], ds: str, keep_days: int) -> list[str]:
    """The days of ``days`` that a retention of ``keep_days`` days ending at ``ds`` removes: those
    before the first day kept, except the newest day at or before ``ds``.

    >>> days = {"2026-01-01", "2026-01-02", "2026-01-05", "2026-01-09"}
    >>> expired_days(days, "2026-01-06", 3)  # keeps 01-04..01-06; 01-09 is after ds
    ['2026-01-01', '2026-01-02']
    >>> expired_days(days, "2026-01-04", 1)  # nothing since 01-02: it is still the newest
    ['2026-01-01']
    >>> expired_days(set(), "2026-01-04", 1)
    []
    """
    first_kept = (dt.date.fromisoformat(ds) - dt.timedelta(days=keep_days - 1)).isoformat()
    newest = max((day for day in days if day <= ds), default=None)
    return sorted(day for day in days if day < first_kept and day != newest)


def expire_table(cfg: ExpirePartitionsConfig, table: str, keep_days: int) -> tuple[list[str], int] | None:
    """Remove ``table``'s :func:`expired_days` in one Delta commit (with ``cfg.dry_run``: only list
    them); return those days and the days left, or None when the table does not exist."""
    from lore_ml.lakehouse import PARTITION_COLUMN, open_delta

    delta = open_delta(cfg.lakehouse.table_uri(table))
    if delta is None:
        return None
    days = {partition[PARTITION_COLUMN] for partition in delta.partitions()}
    expired = expired_days(days, cfg.ds_str, keep_days)
    if expired and not cfg.dry_run:
        # Every day up to the last expired one is expired (the newest day kept is after it). The
        # predicate names only the partition column: whole files are removed, none rewritten.
        metrics = delta.delete(f"{PARTITION_COLUMN} <= '{expired[-1]}'")
        log.info("%s: removed %s..%s (%s)", table, expired[0], expired[-1], metrics)
    return expired, len(days) - len(expired)


def main(argv: list[str] | None = None) -> int:
    """``lore expire-partitions``: print, per table with a retention, the days removed and kept."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = ExpirePartitionsConfig.from_cli(argv, prog="lore expire-partitions")
    policy = cfg.lakehouse.retention()
    verb = "would remove" if cfg.dry_run else "removed"

    def header(kind: str) -> str:
        return f"{kind:<30}{'keep days':>10}{verb:>14}{'days left':>11}  from..to"

    if not policy:
        print(f"lakehouse {cfg.lakehouse.root}: no lakehouse.keep_days set, every day of every table is kept")
    else:
        print(f"lakehouse {cfg.lakehouse.root}: days before each table's retention, counted back from {cfg.ds_str}")
        print(header("table"))
        for table, keep_days in sorted(policy.items()):
            result = expire_table(cfg, table, keep_days)
            if result is None:
                print(f"{table:<30}{keep_days:>10}{'absent':>14}")
                continue
            _print_row(table, keep_days, *result)
    checkpoints = expire_checkpoints(cfg.lakehouse, cfg.ds_str, cfg.checkpoint_keep_days, cfg.dry_run)
    if checkpoints:
        print(f"run checkpoints older than {cfg.checkpoint_keep_days} days, counted back from {cfg.ds_str}")
        print(header("checkpoint"))
        for job, (expired, left) in checkpoints.items():
            _print_row(f"_checkpoints/{job}", cfg.checkpoint_keep_days, expired, left)
    return 0


def _print_row(name: str, keep_days: int, expired: list[str], left: int) -> None:
    span = f"{expired[0]}..{expired[-1]}" if expired else "-"
    print(f"{name:<30}{keep_days:>10}{len(expired):>14}{left:>11}  {span}")
