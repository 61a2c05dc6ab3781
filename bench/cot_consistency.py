"""Whether every SFT reasoning path leads to its label, and which weak labels synth-cot leaves out.

    .venv/bin/python bench/cot_consistency.py --ds 2026-01-31   # after `make demo` (or synth-cot)

First table, from ``gold.sft_examples`` for --ds, per dataset and kind of example: the paths that
state the rater's judgment where the findings disagree with a human label, and the paths that
contradict their label by the rules' table (:func:`lore_ml.cot.contradiction`: L4 with a verdict
other than "match", L3 with a conflict, L1/L2 without one; an LLM's reasoning, without the
template's steps, is not read). The template engine writes none of the latter.

Second table, from the marketplace's weak rows of ``silver.training_pairs`` (every one, not
synth-cot's sample), each synthesised as synth-cot does (``jobs.synth_cot.synthesize_pair``): per
source, the pairs whose findings disagree with their label and are left out, and how often the
left-out and the kept labels carry the generator's true level (from the drop's manifest under
--raw-root).
"""

from __future__ import annotations

from collections import Counter

from demo_lake import demo_lake_parser, read_demo_table


def main() -> None:
    parser = demo_lake_parser(__doc__)
    args = parser.parse_args()

    from lore_ml.cot import RATER, contradiction
    from lore_ml.labels import HOME_DEPOT_ITEM_PREFIX

    examples = read_demo_table(parser, args, "gold.sft_examples", ["item_id", "label", "completion", "kind"])
    examples["dataset"] = examples["item_id"].str.startswith(HOME_DEPOT_ITEM_PREFIX).map(
        {True: "home_depot", False: "marketplace"})
    examples["contradiction"] = [contradiction(c, label) for c, label in zip(examples["completion"], examples["label"])]
    examples["restated"] = examples["completion"].str.contains(RATER, regex=False)
    print(f"reasoning paths in gold.sft_examples, ds={args.ds} ({len(examples):,} examples)")
    print(f"{'dataset':<13}{'kind':<15}{'examples':>10}{'rater stated':>14}{'share':>8}{'contradict':>12}")
    for (dataset, kind), group in examples.groupby(["dataset", "kind"]):
        restated = int(group["restated"].sum())
        print(f"{dataset:<13}{kind:<15}{len(group):>10,}{restated:>14,}{restated / len(group):>8.1%}"
              f"{int(group['contradiction'].notna().sum()):>12,}")
    if (args.raw_root / "_manifest.json").exists():
        left_out_weak_labels(parser, args)


def left_out_weak_labels(parser, args) -> None:
    """The second table: each marketplace weak pair synthesised without restating, against the truth."""
    from jobs.synth_cot import SynthCotConfig, synthesize_pair
    from lore_ml.labels import HOME_DEPOT_ITEM_PREFIX
    from lore_ml.lakehouse import open_lakehouse
    from lore_ml.marketplace import MarketplaceTruth
    from lore_ml.pair_context import load_items, load_kg

    pairs = read_demo_table(parser, args, "silver.training_pairs", ["query", "item_id", "label", "dimension", "source"])
    pairs = pairs[(pairs["source"] != "gold") & ~pairs["item_id"].str.startswith(HOME_DEPOT_ITEM_PREFIX)]
    lakehouse = open_lakehouse(SynthCotConfig.load(overrides={"ds": args.ds, "lakehouse": {"root": args.lakehouse}}))
    items, kg = load_items(lakehouse, args.ds, pairs["item_id"]), load_kg(lakehouse, args.ds)
    truth = MarketplaceTruth(args.raw_root)
    counts: Counter = Counter()  # (source, left out?, true level?) -> pairs
    for pair in pairs.to_dict("records"):
        true = truth.label(pair["query"], pair["item_id"])
        if pair["item_id"] not in items or true is None:
            continue
        left_out = synthesize_pair(pair, items[pair["item_id"]], kg) is None
        counts[pair["source"], left_out, true[0] == pair["label"]] += 1
    print(f"\nmarketplace weak labels, synthesised without restating, ds={args.ds}: true level = the generator's")
    print(f"{'source':<15}{'pairs':>9}{'left out':>10}{'share':>8}{'true level, left out':>22}{'kept':>8}")
    for source in sorted({key[0] for key in counts}):
        n = {flag: counts[source, flag, True] + counts[source, flag, False] for flag in (True, False)}
        shares = [f"{counts[source, flag, True] / n[flag]:.0%}" if n[flag] else "-" for flag in (True, False)]
        print(f"{source:<15}{n[True] + n[False]:>9,}{n[True]:>10,}{n[True] / (n[True] + n[False]):>8.1%}"
              f"{shares[0]:>22}{shares[1]:>8}")


if __name__ == "__main__":
    main()
