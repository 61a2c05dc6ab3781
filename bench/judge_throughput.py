"""Judging throughput: vLLM vs transformers on the same model and the same prompts, one run.

    .venv/bin/python bench/judge_throughput.py --model artifacts/teacher-base --pairs 256

Prompts are the first --pairs prompts of gold.sft_examples for --ds (run `make demo` first).
Each backend runs in its own process (vLLM pins the CPU threads of the process it runs in) and
judges the same prompts label-first: p(L1..L4) plus the dimension of every L2. Engine start is
reported apart from judging; the table shows pairs/s and vLLM's speed-up, and whether both
backends gave the same labels.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def judge_in_this_process(backend: str, model: str, prompts_file: str, compile_model: bool) -> None:
    """Child mode: judge the prompts, print one JSON line with timings and labels."""
    from lore_ml.inference import InferenceConfig, make_judge

    prompts = json.loads(open(prompts_file).read())
    started = time.perf_counter()
    judge = make_judge(InferenceConfig(backend=backend, model_path=model, vllm_compile=compile_model))
    judge.judge(prompts[:4])  # warm-up (compiled graphs, allocator)
    loaded = time.perf_counter()
    predictions = judge.judge(prompts)
    done = time.perf_counter()
    print("RESULT " + json.dumps({"start_s": loaded - started, "judge_s": done - loaded,
                                  "labels": [p.label for p in predictions]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="artifacts/teacher-base")
    parser.add_argument("--ds", default="2026-01-31")
    parser.add_argument("--lakehouse", default="lakehouse")
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--no-compile", action="store_true", help="vLLM eager mode (faster start, slower judging).")
    parser.add_argument("--child", nargs=2, metavar=("BACKEND", "PROMPTS_JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        judge_in_this_process(args.child[0], args.model, args.child[1], not args.no_compile)
        return

    import tempfile

    from deltalake import DeltaTable

    from lore_ml.config import LakehouseConfig

    examples = DeltaTable(LakehouseConfig(root=args.lakehouse).table_uri("gold.sft_examples")).to_pandas(
        columns=["example_id", "prompt"], filters=[("ds", "=", args.ds)])
    prompts = list(examples.sort_values("example_id")["prompt"].head(args.pairs))
    results = {}
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        json.dump(prompts, handle)
        handle.flush()
        for backend in ("transformers", "vllm"):
            command = [sys.executable, __file__, "--model", args.model, "--child", backend, handle.name]
            command += ["--no-compile"] if args.no_compile else []
            env = {"VLLM_LOGGING_LEVEL": "WARNING", **os.environ}
            out = subprocess.run(command, capture_output=True, text=True, env=env)
            line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"{backend} run failed:\n{out.stderr[-3000:]}")
            results[backend] = json.loads(line[len("RESULT "):])
    print(f"judging {len(prompts)} prompts with {args.model} (label-first: p(L1..L4) + L2 dimension)")
    print(f"{'backend':<14}{'start s':>9}{'judge s':>9}{'pairs/s':>10}")
    for backend, r in results.items():
        print(f"{backend:<14}{r['start_s']:>9.1f}{r['judge_s']:>9.1f}{len(prompts) / r['judge_s']:>10.1f}")
    speedup = results["transformers"]["judge_s"] / results["vllm"]["judge_s"]
    same = sum(a == b for a, b in zip(results["transformers"]["labels"], results["vllm"]["labels"]))
    print(f"vLLM / transformers throughput: {speedup:.2f}x; same label on {same}/{len(prompts)} prompts")


if __name__ == "__main__":
    main()
