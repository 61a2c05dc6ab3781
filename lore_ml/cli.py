"""The ``lore`` command: one entry point for every job and stage.

    lore demo                      # the main job end to end on the embedded defaults
    lore generate --rows 1000000   # = python -m jobs.generate_marketplace
    lore ingest --ds 2026-01-31    # = python -m jobs.ingest
    lore load-home-depot           # = python -m jobs.load_home_depot
    lore stratify --ds 2026-01-31  # = python -m jobs.stratify (likewise rollup-logs, build-kg, mine-pairs)

Each subcommand takes the same flags as its module (``lore ingest --help``); a module given
as ``module:function`` runs that function instead of ``main``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable

# The exit status of a command that declined to act, by design rather than by failure (a worse model
# not promoted, a day older than the one the cache serves): the DAGs skip such a task instead of
# failing it (airflow_dags/lore_tasks.SKIP_EXIT_CODE, the same number).
SKIPPED = 99

COMMANDS = {
    "demo": ("lore_ml.demo", "Generate a marketplace and run the pipeline end to end."),
    "migrate-lakehouse": ("lore_ml.lakehouse:migrate_main", "After an upgrade: add new columns to the stored tables."),
    "vacuum-lakehouse": ("lore_ml.lakehouse:vacuum_main",
                         "Delete files of replaced or expired days and killed writes (after 7 days)."),
    "expire-partitions": ("lore_ml.retention", "Remove the days older than each table's lakehouse.keep_days."),
    "generate": ("jobs.generate_marketplace", "Generate the synthetic marketplace raw drops."),
    "ingest": ("jobs.ingest", "Raw drops of one day -> bronze Delta tables + quarantine."),
    "load-home-depot": ("jobs.load_home_depot", "Load the human-rated Home Depot pairs into bronze."),
    "rollup-logs": ("jobs.rollup_logs", "One day of search logs -> the silver.daily_* rollups the window jobs read."),
    "stratify": ("jobs.stratify", "Daily searches over a trailing window -> silver.query_tiers."),
    "build-kg": ("jobs.build_kg", "Catalog + daily clicks -> silver.kg_nodes / silver.kg_edges."),
    "mine-pairs": ("jobs.mine_pairs", "Human labels + behaviour + KG -> silver.training_pairs."),
    "embed-vectors": ("jobs.embed_vectors", "Catalog + head/mid queries -> silver.item_vectors / silver.query_vectors."),
    "synth-cot": ("jobs.synth_cot", "Training pairs + KG -> gold.sft_examples (prompts + reasoning paths)."),
    "init-teacher": ("lore_ml.training:init_teacher_main", "Tiny Qwen2 teacher + tokenizer trained on the SFT text."),
    "train": ("lore_ml.training", "Train the teacher: `lore train sft` or `lore train rl`."),
    "eval": ("lore_ml.evaluation", "Evaluate a teacher on human labels: report + gold.eval_reports."),
    "distill": ("lore_ml.distill", "Train a student (representation or cross-encoder); current if not worse on dev."),
    "promote": ("lore_ml.promotion", "Make a teacher the champion if its evaluation beats the champion's."),
    "judge-head": ("jobs.judge_head", "Head queries x candidate items -> teacher -> gold.relevance_judgments."),
    "fill-cache": ("jobs.fill_cache", "gold.relevance_judgments -> new Redis cache version, switched atomically."),
    "serve": ("online.serve", "Run the relevance shim under gunicorn."),
    "worker": ("online.worker", "Run the tail write-back worker."),
}


def _stop_on_sigterm(signum: int, frame) -> None:
    raise SystemExit(128 + signum)


def run_entry_point(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """``main(argv)``'s exit status; a job whose inputs are not ready ends with one line on stderr
    and status 1 instead of a traceback (what an Airflow task log shows last either way).

    SIGTERM (what Airflow sends a task past its timeout, or one marked failed) becomes
    ``SystemExit(143)`` in the main thread, so the job's ``finally`` blocks run on the way out: a
    long run saves its checkpoint and removes its staging area instead of dying with them."""
    import signal
    import threading

    from lore_ml.config import InputsNotReady

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm) if in_main_thread else None
    try:
        return main(argv)
    except InputsNotReady as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        width = max(map(len, COMMANDS))
        print("usage: lore <command> [options]\n\ncommands:")
        for name, (_, help_text) in COMMANDS.items():
            print(f"  {name:<{width}}  {help_text}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module_name, _, function = COMMANDS[argv[0]][0].partition(":")
    return run_entry_point(getattr(importlib.import_module(module_name), function or "main"), argv[1:])


if __name__ == "__main__":
    sys.exit(main())
