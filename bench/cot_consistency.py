"""How many SFT reasoning paths contradict the rule they cite, per dataset and kind of example.

    .venv/bin/python bench/cot_consistency.py --ds 2026-01-31   # after `make demo` (or synth-cot)

Reads ``gold.sft_examples`` for --ds and classifies each example's path with
:func:`lore_ml.cot.contradiction` (L4 with a verdict other than "match", L3 with a conflict, L1/L2
without one; an LLM's reasoning, without the template's steps, is not read). For marketplace
examples whose path contradicts their label it also shows how often that label's level is the
generator's truth (from the drop's manifest under --raw-root, when it is there): a gold label
always is, so there the path is what is wrong.
"""

from __future__ import annotations

from collections import Counter

from demo_lake import demo_lake_parser, read_demo_table


def main() -> None:
    parser = demo_lake_parser(__doc__)
    args = parser.parse_args()

    from lore_ml.cot import contradiction
    from lore_ml.labels import HOME_DEPOT_ITEM_PREFIX
    from lore_ml.marketplace import MarketplaceTruth

    examples = read_demo_table(parser, args, "gold.sft_examples", ["query", "item_id", "label", "completion", "kind"])
    examples["dataset"] = examples["item_id"].str.startswith(HOME_DEPOT_ITEM_PREFIX).map(
        {True: "home_depot", False: "marketplace"})
    examples["contradiction"] = [contradiction(c, label) for c, label in zip(examples["completion"], examples["label"])]
    contradicting = examples[examples["contradiction"].notna()]
    # MarketplaceTruth.agreement per kind, on the label's level: its exact-label count is the true-level count.
    true_level = {}
    if (args.raw_root / "_manifest.json").exists():
        marketplace = contradicting[contradicting["dataset"] == "marketplace"]
        agreement = MarketplaceTruth(args.raw_root).agreement(marketplace.assign(
            label=marketplace["label"].str.partition(":")[0], source=marketplace["kind"]))
        true_level = {row["source"]: f"{round(row['label_accuracy'] * row['pairs']):,}" for row in agreement}

    print(f"reasoning paths that contradict their label, ds={args.ds} ({len(examples):,} examples)")
    print(f"{'dataset':<13}{'kind':<15}{'examples':>10}{'contradict':>12}{'share':>8}{'true level':>12}")
    bad = Counter(zip(contradicting["dataset"], contradicting["kind"]))
    for (dataset, kind), group in examples.groupby(["dataset", "kind"]):
        agree = true_level.get(kind, "-") if dataset == "marketplace" else "-"
        n = bad[dataset, kind]
        print(f"{dataset:<13}{kind:<15}{len(group):>10,}{n:>12,}{n / len(group):>8.1%}{agree:>12}")
    print(f"\n{'dataset':<13}{'contradiction':<32}{'examples':>10}")
    counts = Counter(zip(contradicting["dataset"], contradicting["contradiction"]))
    for (dataset, kind), n in sorted(counts.items()):
        print(f"{dataset:<13}{kind:<32}{n:>10,}")


if __name__ == "__main__":
    main()
