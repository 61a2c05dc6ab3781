"""Teacher quality on held-out human labels: majority-class baseline vs SFT vs SFT+RL.

    .venv/bin/python bench/teacher_quality.py --ds 2026-01-31 \
        --model artifacts/teacher-sft --model artifacts/teacher-rl --dataset marketplace --split test

Each --model first gets its decision rule fitted on --fit-on (dev; `lore eval --fit-decision`,
stored in its manifest), then is evaluated on --split with `lore eval` (report files under
artifacts/eval/, a row in gold.eval_reports); both the argmax labels and the fitted rule's are
shown. The majority baseline predicts, for every example, the most frequent label of the same
dataset's *train* split. Prints Acc@2, Acc@4, macro-F1, ECE and Spearman (where ratings exist).
--think-first evaluates in the reasoning-first format (rule fitted in that format too, and refused
when its labels follow the reasoning less often than argmax's: see ``max_reasoning_disagreement``) and adds
how often the reasoning's deciding rule (the last rule id it cites) gives the label shown
(rule→label) and the gold level (rule→gold).
"""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ds", default="2026-01-31")
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--dataset", default="marketplace", choices=["marketplace", "home_depot"])
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-examples", type=int, default=2000)
    parser.add_argument("--fit-on", default="dev", help="Split the decision rule is fitted on ('' keeps the stored one).")
    parser.add_argument("--think-first", action="store_true")
    args = parser.parse_args()

    from collections import Counter

    from deltalake import DeltaTable

    from lore_ml.config import LakehouseConfig
    from lore_ml.evaluation import RULE_METRICS, EvalConfig, evaluate, run_eval
    from lore_ml.labels import label_level, of_dataset

    examples = DeltaTable(LakehouseConfig().table_uri("gold.sft_examples")).to_pandas(
        columns=["example_id", "item_id", "label", "split"], filters=[("ds", "=", args.ds), ("kind", "=", "gold")])
    examples = of_dataset(examples, args.dataset)
    majority = Counter(label_level(label) for label in examples[examples["split"] == "train"]["label"]).most_common(1)[0][0]
    held_out = examples[examples["split"] == args.split].sort_values("example_id").head(args.max_examples)
    rows = [(f"majority class ({majority})", evaluate(list(held_out["label"]), [majority] * len(held_out)))]
    mode = " think-first" if args.think_first else ""
    for model in args.model:
        common = {"ds": args.ds, "model_path": model, "dataset": args.dataset, "max_examples": args.max_examples,
                  "think_first": args.think_first}
        if args.fit_on:
            fitted, _ = run_eval(EvalConfig.load(overrides={**common, "split": args.fit_on, "fit_decision": True}))
            print(f"{model}: decision rule {fitted['decision']} fitted on {args.fit_on} (n={fitted['n']})")
            if fitted.get("refused_decision"):
                print(f"{model}: refused (its labels contradict the reasoning): {fitted['refused_decision']}")
        metrics, out = run_eval(EvalConfig.load(overrides={**common, "split": args.split}))
        if "argmax" in metrics:
            rows.append((f"{model}{mode} (argmax)", {**metrics["argmax"], "ece": metrics.get("ece")}))
        rule = f" ({metrics['decision']['rule']} from {args.fit_on or 'manifest'})" if metrics.get("decision") else ""
        rows.append((f"{model}{mode}{rule}", metrics))
        print(f"report: {out}/report.md")
    print(f"\n{args.dataset} {args.split}, ds={args.ds}, n={len(held_out)}")
    print(f"{'model':<52}{'Acc@2':>7}{'Acc@4':>7}{'macro-F1':>10}{'ECE':>7}{'Spearman':>10}{'rule→label':>12}"
          f"{'rule→gold':>11}")
    for name, m in rows:
        ece, rho, follows, gold = (f"{m[k]:.3f}" if m.get(k) is not None else "-"
                                   for k in ("ece", "spearman", *RULE_METRICS))
        print(f"{name:<52}{m['acc2']:>7.3f}{m['acc4']:>7.3f}{m['macro_f1']:>10.3f}{ece:>7}{rho:>10}{follows:>12}{gold:>11}")


if __name__ == "__main__":
    main()
