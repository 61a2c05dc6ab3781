"""``lore promote``: make a trained teacher the champion only if its evaluation beats the champion's.

The gate reads ``gold.eval_reports`` for ``ds``: the candidate's report and the champion's on the
same dataset and split (run ``lore eval`` for the candidate first; a champion without a report
for ``ds`` is evaluated here, with the decision rule it was promoted with). The candidate
wins when its macro-F1 is higher and its Acc@2 is not lower by more than ``max_acc2_drop``; with
no champion yet it wins by default. A winner is copied to ``champion_dir`` (via a temporary
folder and a rename, the previous champion kept as ``<champion_dir>.previous``); a loser changes
nothing and the command exits with 99, which the DAG turns into a skipped task.

    lore promote --ds 2026-01-31 --model artifacts/teacher-rl --split dev
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path
from pydantic import Field

from lore_ml.cli import SKIPPED
from lore_ml.config import InputsNotReady
from lore_ml.evaluation import EvalConfig, ReportConfig, run_eval

log = logging.getLogger("lore.promotion")
NOT_PROMOTED = SKIPPED


class PromoteConfig(ReportConfig):
    """Promote a teacher (``model_path``) to champion when it passes the evaluation gate."""

    champion_dir: Path = Field(Path("artifacts/champion"), description="Where the champion lives (what judging loads).")
    split: str = Field("dev", description="Report split compared (never test: that is for the final numbers).")
    max_acc2_drop: float = Field(0.005, ge=0, description="Acc@2 the candidate may lose while gaining macro-F1.")
    max_examples: int | None = Field(2000, ge=1, description="Examples of the champion's evaluation when this day "
                                     "has none yet (as many as the candidate's `lore eval`).")


def gate(candidate: dict, champion: dict | None, max_acc2_drop: float) -> tuple[bool, str]:
    """Whether ``candidate`` metrics beat ``champion`` metrics, and why.

    >>> gate({"macro_f1": 0.5, "acc2": 0.8}, None, 0.005)
    (True, 'no champion yet')
    >>> gate({"macro_f1": 0.5, "acc2": 0.8}, {"macro_f1": 0.45, "acc2": 0.81}, 0.005)
    (False, 'Acc@2 0.800 < champion 0.810 - 0.005')
    >>> gate({"macro_f1": 0.5, "acc2": 0.8}, {"macro_f1": 0.45, "acc2": 0.802}, 0.005)[0]
    True
    """
    if champion is None:
        return True, "no champion yet"
    if candidate["macro_f1"] <= champion["macro_f1"]:
        return False, f"macro-F1 {candidate['macro_f1']:.3f} <= champion {champion['macro_f1']:.3f}"
    if candidate["acc2"] < champion["acc2"] - max_acc2_drop:
        return False, f"Acc@2 {candidate['acc2']:.3f} < champion {champion['acc2']:.3f} - {max_acc2_drop}"
    return True, f"macro-F1 {candidate['macro_f1']:.3f} > champion {champion['macro_f1']:.3f}"


def evaluation_report(cfg: PromoteConfig, model_version: str) -> dict | None:
    """The metrics of ``model_version``'s report on the configured dataset/split for ``ds``, if any."""
    from lore_ml.lakehouse import read_delta

    report_id = f"{model_version}/{cfg.dataset}/{cfg.split}"  # label-first, the format the gate compares
    try:
        rows = read_delta(cfg.lakehouse, "gold.eval_reports",
                          filters=[("ds", "=", cfg.ds_str), ("report_id", "=", report_id)]).to_pandas()
    except InputsNotReady:  # no model evaluated yet
        return None
    return json.loads(rows["metrics_json"].iloc[0]) if len(rows) else None


def promote(cfg: PromoteConfig) -> tuple[bool, str]:
    from lore_ml.modeling import model_version, require_model_directory, write_manifest

    require_model_directory(cfg.model_path)
    if not (cfg.model_path / "lore_manifest.json").is_file():  # an outside checkpoint: pin its version first
        write_manifest(cfg.model_path, stage="external")
    candidate_version = model_version(cfg.model_path)
    candidate = evaluation_report(cfg, candidate_version)
    if candidate is None:
        raise InputsNotReady(f"no {cfg.dataset}/{cfg.split} report for {candidate_version} in gold.eval_reports "
                             f"ds={cfg.ds_str}: run `lore eval --model {cfg.model_path} --split {cfg.split}` first")
    champion = None
    if (cfg.champion_dir / "config.json").is_file():
        champion_version = model_version(cfg.champion_dir)
        if champion_version == candidate_version:
            return True, f"{candidate_version} is already the champion"
        champion = evaluation_report(cfg, champion_version)
        if champion is None:  # last week's champion, not yet evaluated on this day's examples
            log.info("evaluating the champion %s on %s/%s", champion_version, cfg.dataset, cfg.split)
            champion, _ = run_eval(EvalConfig.load(overrides={
                **cfg.model_dump(include={"ds", "lakehouse", "spark", "dataset", "split"}),
                "model_path": str(cfg.champion_dir), "max_examples": cfg.max_examples}))
    won, why = gate(candidate, champion, cfg.max_acc2_drop)
    if won:
        install_directory(cfg.model_path, cfg.champion_dir)
    return won, why


def install_directory(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` next to it, then swap it in; the old one stays as ``<target>.previous``.

    Readers never see a half-copied directory: the copy goes to ``<target>.incoming`` first.
    """
    staging = target.with_name(target.name + ".incoming")
    previous = target.with_name(target.name + ".previous")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    if target.exists():
        shutil.rmtree(previous, ignore_errors=True)
        target.rename(previous)
    staging.rename(target)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = PromoteConfig.from_cli(argv, prog="lore promote")
    won, why = promote(cfg)
    print(f"{'promoted' if won else 'not promoted'}: {cfg.model_path} ({why})")
    return 0 if won else NOT_PROMOTED


if __name__ == "__main__":
    from lore_ml.cli import run_entry_point

    sys.exit(run_entry_point(main))
