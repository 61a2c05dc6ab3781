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
