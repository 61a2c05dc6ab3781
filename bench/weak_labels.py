"""Agreement of mined weak labels with the synthetic marketplace's true labels, per source.

    .venv/bin/python bench/weak_labels.py --ds 2026-01-31   # after `make demo` (or the jobs)

Reads silver.training_pairs for --ds and rebuilds the generator's truth from the drop's
manifest under --raw-root; prints pairs, binary accuracy and exact-label accuracy per source.
"""

from __future__ import annotations

from demo_lake import demo_lake_parser, read_demo_table


def main() -> None:
    parser = demo_lake_parser(__doc__)
    args = parser.parse_args()

    from lore_ml.marketplace import MarketplaceTruth

    pairs = read_demo_table(parser, args, "silver.training_pairs", ["query", "item_id", "label", "source"])
    rows = MarketplaceTruth(args.raw_root).agreement(pairs)
    print(f"weak labels vs generator truth, ds={args.ds} ({len(pairs):,} training pairs)")
    print(f"{'source':<15}{'pairs':>9}{'binary acc':>12}{'label acc':>11}")
    for row in rows:
        print(f"{row['source']:<15}{row['pairs']:>9,}{row['binary_accuracy']:>12.3f}{row['label_accuracy']:>11.3f}")


if __name__ == "__main__":
    main()
