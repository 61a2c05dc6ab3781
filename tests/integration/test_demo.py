"""`lore demo`, the README's first command, end to end in a fresh process, with everything under
a temporary folder and its own Redis key prefix. The default suite runs a smaller marketplace
without Home Depot twice (the second run reuses what the first made and answers the same way);
`make test-slow` runs it at its own defaults, as `make demo` does."""

import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from lore_ml.config import DEFAULT_HOME_DEPOT_DIR

pytestmark = pytest.mark.redis

EXPECTED_SOURCES = {
    "head (cache)": "cache+student",
    "mid (student)": "student",
    "tail (teacher)": "teacher",
    "tail (deadline 1 ms)": "student_fallback",
    "same tail again (written back)": "cache",
}


def sources_by_request(stdout: str) -> dict[str, str]:
    """The demo's closing table: request name → the sources that answered it."""
    rows = re.findall(r"^\s{6}(\S.*?\S)\s{2,}(head|mid|tail)\s+(\S+)\s+[\d.]+\s", stdout, re.M)
    return {name: sources for name, _, sources in rows}


@pytest.fixture
def demo(tmp_path, redis_client):
    """Run ``lore demo`` with extra arguments under ``tmp_path``; its stdout once it passed."""
    prefix = f"test-demo-{uuid.uuid4().hex[:8]}"
    command = [str(Path(sys.executable).parent / "lore"), "demo",
               "--set", f"lakehouse.root={tmp_path / 'lakehouse'}", "--set", f"data.raw_root={tmp_path / 'raw'}",
               "--set", f"artifacts={tmp_path / 'artifacts'}", "--set", f"redis.key_prefix={prefix}"]

    def run(*extra: str, timeout_s: int) -> str:
        done = subprocess.run([*command, *extra], capture_output=True, text=True, timeout=timeout_s, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-4000:]
        assert sources_by_request(done.stdout) == EXPECTED_SOURCES, done.stdout[-3000:]
        return done.stdout

    yield run
    for key in redis_client.scan_iter(match=f"{prefix}:*"):
        redis_client.delete(key)


def test_the_demo_runs_end_to_end_and_a_rerun_reuses_it(demo, tmp_path):
    small = ("--rows", "50000", "--set", "home_depot=false")
    first = demo(*small, timeout_s=1200)
    assert "skipped: home_depot=false" in first and (tmp_path / "artifacts" / "champion").is_dir()
    # The teachers tie lm_head to the embeddings, as configured, though MiniLM was loaded by Sail's
    # threads earlier in the same process (lore_ml.students._LOADING).
    from safetensors import safe_open

    for model in ("teacher-base", "teacher-sft", "teacher-rl"):
        with safe_open(tmp_path / "artifacts" / model / "model.safetensors", "pt") as weights:
            assert "lm_head.weight" not in weights.keys(), model
    started = time.monotonic()
    second = demo(*small, timeout_s=600)
    assert second.count("(reused)") >= 8 and "already active" in second
    assert time.monotonic() - started < 300


@pytest.mark.slow
def test_the_demo_at_its_default_scale(demo):
    out = demo(timeout_s=2400)
    has_home_depot = (DEFAULT_HOME_DEPOT_DIR / "train.csv.zip").is_file()
    assert "200,000 log rows" in out and ("skipped: no train.csv.zip" in out) != has_home_depot
