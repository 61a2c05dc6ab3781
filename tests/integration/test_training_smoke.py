"""SFT and GRPO run a few steps on a tiny saved model: a loss is logged and the weights change."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lore_ml.modeling import TinyQwenSpec, init_teacher, load_causal_lm
from lore_ml.prompts import format_answer
from lore_ml.training import RlConfig, SftConfig, master_dtype, run_rl, run_sft

SPEC = TinyQwenSpec(vocab_size=400, hidden_size=32, layers=1, heads=2, kv_heads=1, intermediate_size=64)
PAIRS = [("stridex sneakers", "Stridex running shoes", "L4", "all met R-EXA-01"),
         ("stridex sneakers", "Aeroline running shoes", "L2:brand", "other brand R-BRD-01"),
         ("red dress", "blue dress", "L2:color", "other colour R-COL-01"),
         ("yoga mat", "coffee maker", "L1", "other category R-CAT-01")]


def prompt(query, title):
    return f"Query: {query}\nItem: {title}\nAnswer:"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    texts = [prompt(q, t) + format_answer(label, why) for q, t, label, why in PAIRS] * 20
    return init_teacher(texts, tmp_path_factory.mktemp("models") / "base", SPEC)


def weights(path):
    model, _ = load_causal_lm(path)
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def changed(before, after_path):
    after = weights(after_path)
    return any(not (before[name] == after[name]).all() for name in before)


def cfg(cls, base, out, **extra):
    return cls.load(overrides={"ds": "2026-01-31", "model_path": str(base), "output_dir": str(out),
                               "max_steps": 3, "batch_size": 4, **extra})


def test_sft_logs_a_loss_and_changes_weights(base, tmp_path):
    from datasets import Dataset

    data = Dataset.from_list([{"prompt": prompt(q, t), "completion": format_answer(l, w)} for q, t, l, w in PAIRS])
    history = run_sft(cfg(SftConfig, base, tmp_path / "sft", max_length=128), dataset=data)
    losses = [h["loss"] for h in history if "loss" in h]
    assert len(losses) == 3 and all(loss > 0 for loss in losses)
    assert changed(weights(base), tmp_path / "sft")


def test_float32_master_weights_keep_the_updates_a_bf16_checkpoint_loses(base, tmp_path):
    """20 steps at lr 1e-5 on a bf16 checkpoint: pure bf16 rounds most updates away (16% of the
    weights changed, loss 5.931 -> 5.930); float32 master weights accumulate them (88%, -> 5.925)
    and the model is saved back in bf16."""
    import torch
    from datasets import Dataset
    from safetensors.torch import load_file

    model, tokenizer = load_causal_lm(base)
    model.to(torch.bfloat16).save_pretrained(tmp_path / "bf16")
    tokenizer.save_pretrained(tmp_path / "bf16")
    data = Dataset.from_list([{"prompt": prompt(q, t), "completion": format_answer(l, w)} for q, t, l, w in PAIRS])
    start = load_file(tmp_path / "bf16" / "model.safetensors")
    changed = {}
    for master in ("checkpoint", "float32"):
        run_sft(cfg(SftConfig, tmp_path / "bf16", tmp_path / master, max_length=128, max_steps=20, learning_rate=1e-5,
                    master_weights=master), dataset=data)
        saved = load_file(tmp_path / master / "model.safetensors")
        assert {t.dtype for t in saved.values()} == {torch.bfloat16}
        changed[master] = sum(int((saved[n] != start[n]).sum()) for n in start) / sum(t.numel() for t in start.values())
    assert changed["float32"] > 2 * changed["checkpoint"], changed
    assert master_dtype(cfg(SftConfig, base, tmp_path / "x")) == "float32"  # auto, every weight trains
    assert master_dtype(cfg(SftConfig, base, tmp_path / "x", lora=True)) == "auto"  # the checkpoint's dtype
    with pytest.raises(ValueError, match="DeepSpeed, which keeps float32 master"):
        cfg(SftConfig, base, tmp_path / "x", master_weights="float32",
            deepspeed=str(Path(__file__).parents[2] / "configs" / "deepspeed" / "zero2.json"))


def test_sft_leaves_out_examples_that_would_lose_the_end_of_their_answer(base, tmp_path, caplog):
    from datasets import Dataset

    from lore_ml.training import drop_overlong

    rows = [{"prompt": prompt(q, t), "completion": format_answer(l, w)} for q, t, l, w in PAIRS]
    rows.append({"prompt": prompt("stridex sneakers " * 40, "Stridex running shoes"), "completion": format_answer("L4", "ok")})
    _, tokenizer = load_causal_lm(base)
    longest_kept = max(len(tokenizer(r["prompt"] + r["completion"]).input_ids) + 1 for r in rows[:-1])
    kept, dropped = drop_overlong(Dataset.from_list(rows), tokenizer, longest_kept, chunk=2)
    assert dropped == 1 and kept["prompt"] == [r["prompt"] for r in rows[:-1]]
    assert drop_overlong(Dataset.from_list(rows), tokenizer, longest_kept - 1)[1] >= 2  # the bound is inclusive
    run_sft(cfg(SftConfig, base, tmp_path / "sft", max_length=longest_kept), dataset=Dataset.from_list(rows))
    assert f"1 of 5 examples are longer than max_length={longest_kept} tokens" in caplog.text
    with pytest.raises(ValueError, match="every example is longer than max_length=16"):
        run_sft(cfg(SftConfig, base, tmp_path / "none", max_length=16), dataset=Dataset.from_list(rows))


def test_sft_with_lora_saves_a_merged_model(base, tmp_path):
    from datasets import Dataset

    data = Dataset.from_list([{"prompt": prompt(q, t), "completion": format_answer(l, w)} for q, t, l, w in PAIRS])
    run_sft(cfg(SftConfig, base, tmp_path / "lora", max_length=128, lora=True, lora_rank=4,
                learning_rate=0.05), dataset=data)
    model, _ = load_causal_lm(tmp_path / "lora")
    assert not any("lora" in name for name, _ in model.named_parameters())
    assert changed(weights(base), tmp_path / "lora")


@pytest.mark.parametrize("zero", ["zero2", "zero3"])
def test_sft_with_a_shipped_deepspeed_config_runs_without_a_launcher(base, tmp_path, zero):
    """`lore train sft --set deepspeed=configs/deepspeed/zeroN.json` as one plain process (no torchrun:
    no RANK in the environment). Its own process, as in production: DeepSpeed keeps its process group."""
    config = Path(__file__).parents[2] / "configs" / "deepspeed" / f"{zero}.json"
    script = f"""
import json
from datasets import Dataset
from lore_ml.prompts import format_answer
from lore_ml.training import SftConfig, run_sft
pairs = {PAIRS!r}
data = Dataset.from_list([{{"prompt": f"Query: {{q}}\\nItem: {{t}}\\nAnswer:", "completion": format_answer(l, w)}}
                          for q, t, l, w in pairs])
cfg = SftConfig.load(overrides={{"ds": "2026-01-31", "model_path": {str(base)!r}, "output_dir": {str(tmp_path / zero)!r},
                                 "max_steps": 3, "batch_size": 4, "max_length": 128, "deepspeed": {str(config)!r}}})
print(json.dumps([h["loss"] for h in run_sft(cfg, dataset=data) if "loss" in h]))
"""
    launcher = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    env = {k: v for k, v in os.environ.items() if k not in launcher}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    losses = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(losses) == 3 and all(loss > 0 for loss in losses)
    assert changed(weights(base), tmp_path / zero)


def test_a_deepspeed_config_that_is_not_there_is_refused_at_load(base, tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="deepspeed"):
        cfg(SftConfig, base, tmp_path / "out", deepspeed=str(tmp_path / "zero2.json"))


def test_grpo_logs_rewards_and_changes_weights(base, tmp_path):
    from datasets import Dataset

    def length_reward(completions, **_):  # gives the random tiny model a reward with variance
        return [float(len(c)) / 100 for c in completions]

    data = Dataset.from_list([{"prompt": prompt(q, t), "label": l} for q, t, l, _ in PAIRS])
    history = run_rl(cfg(RlConfig, base, tmp_path / "rl", num_generations=2, max_completion_length=12,
                         learning_rate=0.01), dataset=data, extra_rewards=[length_reward])
    logged = [h for h in history if "loss" in h]
    assert len(logged) == 3 and all("reward" in h for h in logged)
    assert any("rewards/label_reward/mean" in h for h in logged)
    assert changed(weights(base), tmp_path / "rl")


def test_transformers_judge_gives_distributions_and_is_deterministic(base):
    from lore_ml.inference import TransformersJudge
    from lore_ml.prompts import build_prompt

    prompts = [build_prompt(q, {"title": t}) for q, t, _, _ in PAIRS[:3]]
    judge = TransformersJudge(base, batch_size=2)
    first, second = judge.judge(prompts), judge.judge(prompts)
    assert [p.label for p in first] == [p.label for p in second]
    for prediction in first:
        assert abs(sum(prediction.p) - 1) < 1e-6 and prediction.label.split(":")[0] in ("L1", "L2", "L3", "L4")
