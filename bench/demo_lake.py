"""The command line of the bench scripts that read the demo's lakehouse and its generated drop."""

from __future__ import annotations

import argparse
from pathlib import Path


def demo_lake_parser(description: str) -> argparse.ArgumentParser:
    """--ds, --lakehouse (default ``lakehouse``, where `make demo` writes) and --raw-root (the drop,
    whose manifest rebuilds the generator's truth)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ds", default="2026-01-31")
    parser.add_argument("--lakehouse", default="lakehouse")
    parser.add_argument("--raw-root", type=Path, default=Path("data/raw"))
    return parser


def read_demo_table(parser: argparse.ArgumentParser, args: argparse.Namespace, table: str, columns: list[str]):
    """``columns`` of ``table``'s --ds rows in --lakehouse as a pandas frame (``lakehouse.read_delta``);
    without the table, the parser's error (exit 2) says what to run first."""
    from lore_ml.config import InputsNotReady, LakehouseConfig
    from lore_ml.lakehouse import read_delta

    try:
        return read_delta(LakehouseConfig(root=args.lakehouse), table, columns=columns,
                          filters=[("ds", "=", args.ds)]).to_pandas()
    except InputsNotReady as error:
        parser.error(f"{error} (or pass --lakehouse)")
