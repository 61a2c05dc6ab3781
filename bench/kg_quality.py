"""How many of the knowledge graph's mined term edges the generator's own queries bear out.

    .venv/bin/python bench/kg_quality.py --ds 2026-01-31   # after `make demo` (or the jobs)

Reads the ``term_category`` and ``value_synonym`` edges of silver.kg_edges for --ds and rebuilds
the generator's queries from the drop's manifest under --raw-root. An edge term → category or
term → dimension=value holds when most of the generated queries with the term as a word demand
that category or value (``MarketplaceTruth.edge_demand_share``). Prints, per edge type, the edges,
the share that hold, their mean confidence (the share of the term's voting queries that vote for
the target) and the mean share of the term's generated queries that demand it, then every
value-synonym edge, failing ones first. A term → category edge is one of a term's distribution
over categories (``term_category_min_confidence``, 0.3), so an ambiguous term's edges are meant to
be below a majority: for those, compare the two means.
"""

from __future__ import annotations

from demo_lake import demo_lake_parser, read_demo_table


def main() -> None:
    parser = demo_lake_parser(__doc__)
    args = parser.parse_args()

    from lore_ml.marketplace import MarketplaceTruth

    edges = read_demo_table(parser, args, "silver.kg_edges", ["src", "dst", "edge_type", "confidence", "support"])
    edges = edges[edges["edge_type"].isin(["term_category", "value_synonym"])].copy()
    truth = MarketplaceTruth(args.raw_root)
    rows = []
    for edge in edges.itertuples():
        queries, share = truth.edge_demand_share(edge.src, edge.dst)
        term, target = edge.src.split(":", 1)[1], edge.dst.split(":", 1)[1]
        target = target if edge.edge_type == "value_synonym" else f"category={target}"
        rows.append((edge.edge_type, term, target, edge.confidence, edge.support, queries, share))
    print(f"mined term edges vs the generator's query demands, ds={args.ds}")
    print(f"{'edge type':<15}{'edges':>7}{'hold':>7}{'share':>8}{'mean confidence':>17}{'mean demand share':>19}")
    for edge_type in ("term_category", "value_synonym"):
        mine = [row for row in rows if row[0] == edge_type]
        n = max(len(mine), 1)
        held = sum(row[-1] > 0.5 for row in mine)
        print(f"{edge_type:<15}{len(mine):>7}{held:>7}{held / n:>8.1%}{sum(row[3] for row in mine) / n:>17.2f}"
              f"{sum(row[-1] for row in mine) / n:>19.2f}")
    print(f"\n{'value synonym':<34}{'conf':>6}{'support':>9}{'queries':>9}{'demand it':>11}")
    for _, term, target, confidence, support, queries, share in sorted(
            (row for row in rows if row[0] == "value_synonym"), key=lambda row: (row[-1], row[1])):
        print(f"{term + ' -> ' + target:<34}{confidence:>6.2f}{support:>9,}{queries:>9,}{share:>11.0%}")


if __name__ == "__main__":
    main()
