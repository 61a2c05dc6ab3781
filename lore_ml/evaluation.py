"""Evaluation of relevance judgments: metrics, and a Markdown + JSON + PNG report.

Metrics: Acc@2 (binary: L3/L4 relevant), Acc@4, macro-F1 and per-class F1 over L1-L4, the
confusion matrix (rows gold, columns predicted), a per-dimension table for gold L2 pairs
(level right, dimension right), the expected calibration error of p(L1..L4) (top label,
10 equal-width bins), and Spearman's rho between the score ``Σ p(Lk)·gain(Lk)`` and a raw
rating where the data has one (Home Depot). For think-first judgments, the share whose
reasoning ends on a rule of the level they give, and of the gold level.

    lore eval --ds 2026-01-31 --model artifacts/teacher-rl --dataset home_depot --split test
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np
from pydantic import Field

from lore_ml.config import InputsNotReady, JobConfig
from lore_ml.labels import DATASETS, GAINS, LABELS, RELEVANT_LABELS, DatasetName, label_level, of_dataset
from lore_ml.prompts import deciding_rule_id
from lore_ml.rules import leads_to

log = logging.getLogger("lore.eval")

# think-first: the deciding rule gives the predicted level / the gold level
RULE_METRICS = ("rule_follows_label", "rule_gives_gold")
# report.md's metric table, in this order
REPORTED_METRICS = ("acc2", "acc4", "macro_f1", "ece", "spearman", *RULE_METRICS)


def scores_from(probabilities: np.ndarray, gains: Sequence[float] = GAINS) -> np.ndarray:
    """Ranking score per row of p(L1..L4).

    >>> scores_from(np.array([[0.0, 0.0, 0.5, 0.5], [1.0, 0.0, 0.0, 0.0]])).tolist()
    [0.85, 0.0]
    """
    return probabilities @ np.asarray(gains, dtype=float)


def reliability_bins(probabilities: np.ndarray, gold_index: np.ndarray, bins: int = 10) -> list[dict]:
    """Top-label confidence vs accuracy in equal-width confidence bins (empty bins left out)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == gold_index
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    return [
        {"low": float(edges[b]), "high": float(edges[b + 1]), "n": int(mask.sum()),
         "confidence": float(confidence[mask].mean()), "accuracy": float(correct[mask].mean())}
        for b in range(bins)
        if (mask := which == b).any()
    ]


def expected_calibration_error(probabilities: np.ndarray, gold_index: np.ndarray, bins: int = 10) -> float:
    """Top-label ECE: Σ_bins |bin| / n · |accuracy(bin) − confidence(bin)|.

    >>> round(expected_calibration_error(np.array([[0.1, 0.1, 0.1, 0.7]] * 10), np.array([3] * 7 + [0] * 3)), 6)
    0.0
    >>> round(expected_calibration_error(np.array([[0.0, 0.0, 0.0, 1.0]] * 4), np.array([3, 3, 0, 0])), 6)
    0.5
    """
    table = reliability_bins(probabilities, gold_index, bins)
    n = sum(b["n"] for b in table)
    return float(sum(b["n"] / n * abs(b["accuracy"] - b["confidence"]) for b in table))


def evaluate(
    gold: Sequence[str],
    predicted: Sequence[str],
    probabilities: np.ndarray | None = None,
    ratings: Sequence[float | None] | None = None,
    gains: Sequence[float] = GAINS,
    reasonings: Sequence[str] | None = None,
) -> dict:
    """All metrics for one set of judgments; labels may carry a dimension (``L2:brand``).

    With the judgments' ``reasonings`` (think-first), also how often the deciding rule (the last
    rule id cited) gives the predicted level (``rule_follows_label``: the reasoning argues for the
    label shown) and the gold level (``rule_gives_gold``).
    """
    from scipy.stats import spearmanr
    from sklearn.metrics import confusion_matrix, f1_score

    if len(gold) != len(predicted) or not gold:
        raise ValueError(f"need equally many gold and predicted labels, got {len(gold)} and {len(predicted)}")
    gold_levels = [label_level(g) for g in gold]
    pred_levels = [label_level(p) for p in predicted]
    per_class = f1_score(gold_levels, pred_levels, labels=list(LABELS), average=None, zero_division=0)
    metrics: dict = {
        "n": len(gold),
        "acc2": float(np.mean([(g in RELEVANT_LABELS) == (p in RELEVANT_LABELS) for g, p in zip(gold_levels, pred_levels)])),
        "acc4": float(np.mean([g == p for g, p in zip(gold_levels, pred_levels)])),
        "macro_f1": float(np.mean(per_class)),
        "f1": {label: float(f) for label, f in zip(LABELS, per_class)},
        "confusion": confusion_matrix(gold_levels, pred_levels, labels=list(LABELS)).tolist(),
        "gold_distribution": dict(Counter(gold_levels)),
        "predicted_distribution": dict(Counter(pred_levels)),
        "dimensions": _dimension_table(gold, predicted),
    }
    if probabilities is not None:
        probabilities = np.asarray(probabilities, dtype=float)
        gold_index = np.array([LABELS.index(g) for g in gold_levels])
        metrics["ece"] = expected_calibration_error(probabilities, gold_index)
        metrics["reliability"] = reliability_bins(probabilities, gold_index)
        scores = scores_from(probabilities, gains)
    else:
        scores = np.array([gains[LABELS.index(p)] for p in pred_levels])
    if reasonings is not None:
        for name, levels in zip(RULE_METRICS, (pred_levels, gold_levels)):
            metrics[name] = rule_follows(levels, reasonings)
    if ratings is not None:
        pairs = [(s, r) for s, r in zip(scores, ratings) if r is not None and not np.isnan(r)]
        if len(pairs) > 2:
            rho = spearmanr([s for s, _ in pairs], [r for _, r in pairs]).statistic
            metrics["spearman"] = None if np.isnan(rho) else float(rho)
    return metrics


def rule_follows(levels: Sequence[str], reasonings: Sequence[str]) -> float:
    """The share of ``levels`` (``L1``..``L4``) that the rule their reasoning ends on gives.

    >>> rule_follows(["L2", "L4", "L4"], ["... the brand conflicts, R-BRD-01", "all met: R-EXA-01", "no rule"])
    0.6666666666666666
    """
    return float(np.mean([leads_to(deciding_rule_id(r), level) for level, r in zip(levels, reasonings)]))


def refuse_contradicting_rule(fitted: dict, probabilities: np.ndarray, reasonings: Sequence[str],
                              tolerance: float) -> dict | None:
    """Why ``fitted`` may not label think-first judgments, or None when it may.

    A think-first judgment is served with its reasoning. On a nearly one-hot p(L1..L4) (what a
    model that has reasoned first gives) a rule fitted for macro-F1 moves labels across the level
    the reasoning concluded: on dev, 70.6 % of the README teacher's labels under its fitted cut
    points were on the reasoning's rule, against 92.8 % under argmax. The fitted rule is refused
    when the share of its labels that the reasoning's rule gives is more than ``tolerance`` below
    argmax's.

    >>> p, why = np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]), ["R-BRD-01", "R-EXA-01"]
    >>> refuse_contradicting_rule({"rule": "bias", "bias": [0, 0, 0, 0]}, p, why, 0.02) is None
    True
    >>> refuse_contradicting_rule({"rule": "thresholds", "cuts": [1.5, 2.5, 2.9]}, p, why, 0.02)["rule_follows_label"]
    0.5
    """
    from lore_ml.decision import decide

    fitted_share, argmax_share = (rule_follows([LABELS[k] for k in decide(probabilities, rule)], reasonings)
                                  for rule in (fitted, None))
    if argmax_share - fitted_share <= tolerance:
        return None
    return {**fitted, "rule_follows_label": fitted_share, "argmax_rule_follows_label": argmax_share}


def _dimension_table(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, dict]:
    table: dict[str, dict] = defaultdict(lambda: {"n": 0, "level_right": 0, "dimension_right": 0})
    for g, p in zip(gold, predicted):
        gold_level, _, dimension = g.partition(":")
        if gold_level != "L2" or not dimension:
            continue
        row = table[dimension]
        row["n"] += 1
        row["level_right"] += label_level(p) == "L2"
        row["dimension_right"] += p == g
    return dict(sorted(table.items()))


def write_report(metrics: dict, out_dir: str | Path, title: str) -> Path:
    """``report.md``, ``metrics.json``, ``confusion.png`` and (with ECE) ``reliability.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    confusion = np.array(metrics["confusion"])
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(4), LABELS)
    ax.set_yticks(range(4), LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    for i in range(4):
        for j in range(4):
            dark = confusion[i, j] > confusion.max() / 2
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", color="white" if dark else "black")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out / "confusion.png", dpi=100)
    plt.close(fig)
    if metrics.get("reliability"):
        fig, ax = plt.subplots(figsize=(4, 4))
        bins = metrics["reliability"]
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
        ax.bar([(b["low"] + b["high"]) / 2 for b in bins], [b["accuracy"] for b in bins],
               width=[b["high"] - b["low"] for b in bins], edgecolor="black", alpha=0.7)
        ax.set_xlabel("confidence (top label)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{title}: ECE {metrics['ece']:.3f}")
        fig.tight_layout()
        fig.savefig(out / "reliability.png", dpi=100)
        plt.close(fig)
    lines = [
        f"# {title}", "",
        "| metric | value |", "|---|---:|",
        *(f"| {name} | {metrics[name]:.3f} |" for name in REPORTED_METRICS if metrics.get(name) is not None),
        f"| n | {metrics['n']:,} |", "",
        f"Labels: {_describe_decision(metrics.get('decision'))}.", *_describe_refusal(metrics.get("refused_decision")), "",
        "| class | F1 |", "|---|---:|", *(f"| {label} | {f:.3f} |" for label, f in metrics["f1"].items()), "",
        "Confusion (rows gold, columns predicted): ![confusion](confusion.png)", "",
    ]
    if metrics["dimensions"]:
        lines += ["| L2 dimension | n | level right | dimension right |", "|---|---:|---:|---:|"]
        lines += [f"| {d} | {r['n']} | {r['level_right']} | {r['dimension_right']} |" for d, r in metrics["dimensions"].items()]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return out


def record_decision(metrics: dict, gold: Sequence[str], probabilities: np.ndarray, decision: dict | None,
                    reasonings: Sequence[str] | None = None) -> dict:
    """Note in ``metrics`` the rule that made the labels (the report names it) and, under a fitted
    rule, what argmax labels of the same p(L1..L4) would have scored (with think-first
    ``reasonings``, also how often their deciding rule gives the argmax label)."""
    metrics["decision"] = decision
    if decision is not None:
        argmax = evaluate(list(gold), [LABELS[k] for k in np.nan_to_num(probabilities).argmax(axis=1)],
                          reasonings=reasonings)
        metrics["argmax"] = {name: argmax[name] for name in ("acc2", "acc4", "macro_f1", *RULE_METRICS)
                             if name in argmax}
    return metrics


def _describe_decision(decision: dict | None) -> str:
    """How p(L1..L4) became labels, for the report.

    >>> _describe_decision(None), _describe_decision({"rule": "bias", "bias": [0.0, 0.5, 0.0, -0.2]})
    ('argmax of p(L1..L4)', 'argmax after class biases [0.0, 0.5, 0.0, -0.2] (fitted on dev)')
    """
    if decision is None:
        return "argmax of p(L1..L4)"
    if decision["rule"] == "bias":
        return f"argmax after class biases {[round(b, 2) for b in decision['bias']]} (fitted on dev)"
    return f"cut points {[round(c, 2) for c in decision['cuts']]} on the expected level (fitted on dev)"


def _describe_refusal(refused: dict | None) -> list[str]:
    """The report's line on a fitted rule that was not stored because its labels contradict the reasoning."""
    if refused is None:
        return []
    return [f"The rule fitted here ({_describe_decision(refused)}) was not stored: its labels follow the rule their "
            f"reasoning ends on in {refused['rule_follows_label']:.1%} of pairs, argmax's in "
            f"{refused['argmax_rule_follows_label']:.1%} (max_reasoning_disagreement)."]


class ReportConfig(JobConfig):
    """Which model, and whose human labels on which split: what a report is about."""

    model_path: Path = Field(Path("artifacts/teacher-rl"), description="HF model directory.")
    split: str = Field("test", description="train | dev | test")
    dataset: DatasetName = Field("marketplace", description="Whose human labels.")

    @classmethod
    def add_arguments(cls, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--model", dest="model_path")
        parser.add_argument("--split")
        parser.add_argument("--dataset", choices=DATASETS)


class EvalConfig(ReportConfig):
    """Evaluate a teacher directory on the human-labelled examples of gold.sft_examples."""

    @classmethod
    def add_arguments(cls, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--think-first", dest="think_first", action="store_true", default=None)
        parser.add_argument("--fit-decision", dest="fit_decision", action="store_true", default=None)

    max_examples: int | None = Field(2000, ge=1, description="Evaluate at most this many (deterministic).")
    fit_decision: bool = Field(False, description="Fit the decision rule (class biases or expected-level cut "
                               "points, best dev macro-F1) on these examples and store it in the model's manifest; "
                               "refused on test. The report then shows the labels under the fitted rule (think-first: unless refused, see "
                               "max_reasoning_disagreement).")
    think_first: bool = Field(False, description="Generate the reasoning before reading the label (slower); "
                              "default: label-first, as the real-time tier decodes.")
    max_reasoning_disagreement: float = Field(
        0.02, ge=0, le=1, description="With --think-first --fit-decision: the fitted rule is stored only if the share "
        "of its labels that the rule their reasoning ends on gives is at most this far below argmax's; otherwise "
        "argmax is stored, so a judgment is never served with reasoning that argues for another label.")
    max_model_len: int = Field(4096, ge=256, description="Longest prompt + answer in tokens (at most the model's "
                               "context). An example longer fails the run: a report over the rest would not compare.")
    out_dir: Path = Field(Path("artifacts/eval"), description="Reports go to <out_dir>/<model>-<dataset>-<split>/.")


def run_eval(cfg: EvalConfig) -> tuple[dict, Path]:
    """Judge the examples, write the report files and a gold.eval_reports row; return both."""

    from pyspark.sql import functions as F

    from lore_ml.decision import fit_decision
    from lore_ml.inference import InferenceConfig, TransformersJudge
    from lore_ml.lakehouse import open_lakehouse, read_delta
    from lore_ml.modeling import save_decision

    if cfg.fit_decision and cfg.split == "test":
        raise ValueError("the decision rule is fitted on dev (or train), never on the test split it is reported on")

    examples = read_delta(
        cfg.lakehouse, "gold.sft_examples", columns=["example_id", "query", "item_id", "label", "prompt"],
        filters=[("ds", "=", cfg.ds_str), ("split", "=", cfg.split), ("kind", "=", "gold")],
    ).to_pandas().sort_values("example_id")
    examples = of_dataset(examples, cfg.dataset)
    examples = examples.head(cfg.max_examples) if cfg.max_examples else examples
    if examples.empty:
        raise InputsNotReady(f"no human-labelled examples in gold.sft_examples for ds={cfg.ds_str} split={cfg.split} "
                             f"dataset={cfg.dataset}: run `lore synth-cot --ds {cfg.ds_str}` first")
    labels = read_delta(cfg.lakehouse, "bronze.human_labels", columns=["query", "item_id", "rating"])
    labels = labels.to_pandas()
    ratings = labels.dropna().drop_duplicates(["query", "item_id"]).set_index(["query", "item_id"])["rating"]
    judge = TransformersJudge(InferenceConfig(model_path=cfg.model_path, think_first=cfg.think_first,
                                              max_model_len=cfg.max_model_len))
    texts, thoughts, probabilities = judge.read_labels(list(examples["prompt"]))
    too_long = examples["example_id"][np.isnan(probabilities).any(axis=1)].tolist()
    if too_long:
        raise ValueError(f"{len(too_long)} of {len(examples)} examples (e.g. {too_long[0]}) do not fit max_model_len="
                         f"{cfg.max_model_len} with their answer: raise it (up to the model's context)")
    model_version = judge.model_version
    refused = None
    if cfg.fit_decision:
        judge.decision = fit_decision(probabilities, np.array([LABELS.index(label_level(g)) for g in examples["label"]]))
        if cfg.think_first:
            refused = refuse_contradicting_rule(judge.decision, probabilities, thoughts, cfg.max_reasoning_disagreement)
        if refused:
            log.warning("the fitted rule's labels follow the reasoning in %.1f%% of pairs against argmax's %.1f%%: "
                        "storing argmax for think-first", 100 * refused["rule_follows_label"],
                        100 * refused["argmax_rule_follows_label"])
            judge.decision = None
        model_version = judge.model_version = save_decision(cfg.model_path, judge.answer_format, judge.decision)
    predictions = judge.finish(texts, thoughts, probabilities)
    reasonings = [p.reasoning or "" for p in predictions] if cfg.think_first else None
    metrics = evaluate(
        list(examples["label"]), [p.label for p in predictions], np.array([p.p for p in predictions]),
        ratings=[ratings.get((q, i)) for q, i in zip(examples["query"], examples["item_id"])] if cfg.dataset != "marketplace" else None,
        reasonings=reasonings,
    )
    record_decision(metrics, list(examples["label"]), probabilities, judge.decision, reasonings)
    if refused:
        metrics["refused_decision"] = refused
    mode = "-think-first" if cfg.think_first else ""
    out = write_report(metrics, cfg.out_dir / f"{Path(cfg.model_path).name}-{cfg.dataset}-{cfg.split}{mode}",
                       f"{model_version} on {cfg.dataset} {cfg.split} (n={metrics['n']})")
    lakehouse = open_lakehouse(cfg)
    row = [(f"{model_version}/{cfg.dataset}/{cfg.split}{mode.replace('-', '/', 1)}", model_version, cfg.dataset, cfg.split,
            json.dumps(metrics, sort_keys=True), str(out.resolve()))]
    new = lakehouse.spark.createDataFrame(row, "report_id string, model_version string, dataset string, split string, "
                                               "metrics_json string, report_path string")
    if lakehouse.exists("gold.eval_reports"):  # keep the day's other reports, replace this one
        kept = lakehouse.read_partition("gold.eval_reports", cfg.ds_str).where(F.col("report_id") != row[0][0]).drop("ds")
        new = kept.unionByName(new)
    lakehouse.write_partition(new, "gold.eval_reports", cfg.ds_str)
    return metrics, out


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = EvalConfig.from_cli(argv, prog="lore eval")
    metrics, out = run_eval(cfg)
    shown = {k: round(metrics[k], 3) for k in REPORTED_METRICS if metrics.get(k) is not None}
    print(f"eval {cfg.model_path} on {cfg.dataset}/{cfg.split} (n={metrics['n']}): {shown}; report {out / 'report.md'}")
    return 0
