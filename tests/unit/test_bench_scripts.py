"""The bench scripts are run by hand, not by the suite: check that every name they import from the
project still exists, so a renamed function fails here rather than in the next benchmark run."""

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
PROJECT_PACKAGES = ("jobs", "lore_ml", "online")


def project_imports(script: Path) -> list[tuple[str, str]]:
    """(module, name) of every ``from <project module> import name`` in ``script``, at any depth."""
    tree = ast.parse(script.read_text(), filename=str(script))
    return [(node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and node.module and node.module.split(".")[0] in PROJECT_PACKAGES for alias in node.names]


@pytest.mark.parametrize("script", sorted(BENCH.glob("*.py")), ids=lambda path: path.name)
def test_every_project_name_a_bench_script_imports_exists(script):
    missing = [f"{module}.{name}" for module, name in project_imports(script)
               if not hasattr(importlib.import_module(module), name)
               and importlib.util.find_spec(f"{module}.{name}") is None]
    assert not missing, f"{script.name} imports names the project no longer has: {missing}"


def test_the_check_sees_imports_inside_functions(tmp_path):
    script = tmp_path / "bench.py"
    script.write_text("import time\n\ndef main():\n    from jobs.fill_cache import SpilledBatches\n")
    assert project_imports(script) == [("jobs.fill_cache", "SpilledBatches")]
