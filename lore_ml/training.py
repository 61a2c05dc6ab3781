"""Teacher training stages: SFT on synthesised reasoning, then RL (GRPO) with pure rewards.

    lore init-teacher --ds 2026-01-31                 # tiny Qwen2 + tokenizer -> artifacts/teacher-base
    lore train sft --ds 2026-01-31 --max-steps 200    # -> artifacts/teacher-sft
    lore train rl --ds 2026-01-31 --max-steps 50      # -> artifacts/teacher-rl

One typed config and one function per stage (TRL's layout). Both read ``gold.sft_examples``
for ``ds`` with delta-rs (no Spark session), load the model by path (the tiny default or a real
checkpoint), train on the CPU or GPU that is there, and save an HF model directory.

* SFT: TRL ``SFTTrainer`` on prompt/completion pairs, loss on the completion only; optional
  LoRA (peft) and DeepSpeed ZeRO (``--set deepspeed=configs/deepspeed/zero2.json``; a plain
  ``lore train sft`` runs it as one process, ``torchrun``/``deepspeed`` launch several).
* RL: TRL ``GRPOTrainer`` with :mod:`lore_ml.rewards` (label, format, mismatch dimension).
  On CPU it generates with transformers (vLLM colocated fails on CPU at the first weight sync).
* Both update float32 master weights when every weight trains (``master_weights``): a bf16
  checkpoint trained as pure bf16 loses most updates at small learning rates.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

from pydantic import Field, FilePath, model_validator

from lore_ml.config import InputsNotReady, JobConfig
from lore_ml.labels import DatasetName

log = logging.getLogger("lore.training")


class StageConfig(JobConfig):
    """Settings shared by the training stages; ``ds`` selects the gold.sft_examples partition."""

    @classmethod
    def add_arguments(cls, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--model", dest="model_path", help="HF model directory to start from.")
        parser.add_argument("--out", dest="output_dir", help="Where to save the trained model.")
        parser.add_argument("--max-steps", dest="max_steps", type=int)

    model_path: Path = Field(Path("artifacts/teacher-base"), description="HF model directory to start from.")
    output_dir: Path = Field(Path("artifacts/teacher-sft"), description="Where the trained model is saved.")
    split: str = Field("train", description="Which split of the examples to train on.")
    dataset: DatasetName = Field(
        "all", description="Whose examples: the marketplace's (generated labels, logs, KG), Home Depot's or both.")
    max_examples: int | None = Field(None, ge=1, description="Use at most this many examples (deterministic).")
    max_steps: int = Field(200, ge=1, description="Optimizer steps.")
    learning_rate: float = Field(5e-4, gt=0)
    batch_size: int = Field(8, ge=1, description="Per-device batch size.")
    seed: int = 0
    master_weights: Literal["auto", "checkpoint", "float32"] = Field(
        "auto", description="Dtype of the weights the optimizer updates. float32: mixed precision, saved back in the "
        "checkpoint's dtype (twice the weight and optimizer memory of a bf16 checkpoint). checkpoint: its own dtype; "
        "a bf16 checkpoint then trains in pure bf16, which loses updates smaller than bf16's step (most of them at "
        "lr 1e-5). auto: float32 when every weight trains; the checkpoint's with LoRA (peft keeps the adapters in "
        "float32) or DeepSpeed (which keeps float32 master weights of its own).")


class SftConfig(StageConfig):
    """Supervised fine-tuning on gold.sft_examples."""

    max_length: int = Field(2048, ge=16, description="Prompt + completion tokens; longer examples are left out "
                            "(cut, they would lose the end of their answer) and counted in a warning.")
    lora: bool = Field(False, description="Train LoRA adapters instead of all weights (merged on save).")
    lora_rank: int = Field(16, ge=1)
    deepspeed: FilePath | None = Field(None, description="DeepSpeed JSON config: configs/deepspeed/zero2.json or "
                                       "zero3.json, or your own.")

    @model_validator(mode="after")
    def _one_kind_of_master_weights(self):
        if self.deepspeed and self.master_weights == "float32":
            raise ValueError("master_weights=float32 is for training without DeepSpeed, which keeps float32 master "
                             "weights of its own")
        return self


class RlConfig(StageConfig):
    """GRPO on the prompts of gold.sft_examples with the label/format/dimension rewards."""

    model_path: Path = Path("artifacts/teacher-sft")
    output_dir: Path = Path("artifacts/teacher-rl")
    num_generations: int = Field(4, ge=2, description="Completions sampled per prompt (the GRPO group).")
    max_completion_length: int = Field(256, ge=8)
    beta: float = Field(0.0, ge=0, description="KL penalty towards the starting model.")
    learning_rate: float = 1e-5


def load_examples(cfg: StageConfig, columns: Sequence[str]):
    """The stage's examples as a ``datasets.Dataset``."""
    from datasets import Dataset
    from lore_ml.labels import of_dataset
    from lore_ml.lakehouse import read_delta

    table = read_delta(cfg.lakehouse, "gold.sft_examples",
                       columns=list(dict.fromkeys(["example_id", "item_id", *columns])),
                       filters=[("ds", "=", cfg.ds_str), ("split", "=", cfg.split)])
    frame = of_dataset(table.to_pandas(), cfg.dataset).sort_values("example_id").reset_index(drop=True)
    if cfg.max_examples is not None:
        frame = frame.head(cfg.max_examples)
    if frame.empty:
        raise InputsNotReady(f"no gold.sft_examples for ds={cfg.ds_str} split={cfg.split} dataset={cfg.dataset}: "
                             f"run `lore synth-cot --ds {cfg.ds_str}` first")
    return Dataset.from_pandas(frame[list(columns)], preserve_index=False)


def drop_overlong(dataset, tokenizer, max_length: int, chunk: int = 1000):
    """(the examples whose prompt + completion + EOS fit in ``max_length`` tokens, how many did not).

    TRL cuts a longer example at its end, which is the completion's end: a think-first answer
    would lose its label and teach reasoning that stops short.
    """
    keep = []
    for start in range(0, len(dataset), chunk):
        rows = dataset[start : start + chunk]
        ids = tokenizer([p + c for p, c in zip(rows["prompt"], rows["completion"])]).input_ids
        keep.extend(start + i for i, tokens in enumerate(ids) if len(tokens) + 1 <= max_length)
    return dataset.select(keep), len(dataset) - len(keep)


def _trainer_args(cfg: StageConfig) -> dict[str, Any]:
    """Arguments both TRL configs take the same way: steps, batch, logging, device."""
    import torch

    return {
        "output_dir": str(cfg.output_dir),
        "max_steps": cfg.max_steps,
        "per_device_train_batch_size": cfg.batch_size,
        "learning_rate": cfg.learning_rate,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "seed": cfg.seed,
        "use_cpu": not torch.cuda.is_available(),
        "bf16": torch.cuda.is_available(),
    }


def master_dtype(cfg: StageConfig) -> str:
    """The dtype the model is loaded in for training (``auto``: the checkpoint's); see ``master_weights``."""
    if cfg.master_weights == "auto":
        return "auto" if getattr(cfg, "lora", False) or getattr(cfg, "deepspeed", None) else "float32"
    return "float32" if cfg.master_weights == "float32" else "auto"


def one_process_rendezvous() -> None:
    """Let DeepSpeed start in a process no launcher started: rank 0 of 1 on a free local port.

    torchrun and the deepspeed launcher set RANK and its companions; without them DeepSpeed looks
    for MPI and fails with ``No module named 'mpi4py'``. A launcher's variables are left alone.
    """
    if "RANK" in os.environ:
        return
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))


def run_sft(cfg: SftConfig, dataset=None) -> list[dict]:
    """Train, save to ``cfg.output_dir`` and return the trainer's log history."""
    from trl import SFTConfig, SFTTrainer

    from lore_ml.modeling import load_causal_lm

    model, tokenizer = load_causal_lm(cfg.model_path, dtype=master_dtype(cfg))
    dataset = dataset if dataset is not None else load_examples(cfg, ("prompt", "completion"))
    dataset, dropped = drop_overlong(dataset, tokenizer, cfg.max_length)
    if dropped:
        log.warning("%d of %d examples are longer than max_length=%d tokens and are left out: raise max_length "
                    "(up to the model's context) to train on them", dropped, dropped + len(dataset), cfg.max_length)
    if len(dataset) == 0:
        raise ValueError(f"every example is longer than max_length={cfg.max_length} tokens: raise max_length")
    peft_config = None
    if cfg.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=cfg.lora_rank, lora_alpha=2 * cfg.lora_rank, target_modules="all-linear",
                                 task_type="CAUSAL_LM")
    if cfg.deepspeed:
        one_process_rendezvous()
    args = SFTConfig(
        max_length=cfg.max_length,
        completion_only_loss=True,
        deepspeed=str(cfg.deepspeed) if cfg.deepspeed else None,
        **_trainer_args(cfg),
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config)
    trainer.train()
    _save(trainer, tokenizer, cfg, "sft", merge=cfg.lora)
    return trainer.state.log_history


def run_rl(cfg: RlConfig, dataset=None, extra_rewards: Sequence[Callable] = ()) -> list[dict]:
    """GRPO from ``cfg.model_path``; saves to ``cfg.output_dir``; returns the log history."""
    from trl import GRPOConfig, GRPOTrainer

    from lore_ml.modeling import load_causal_lm
    from lore_ml.rewards import dimension_reward, format_reward, label_reward

    model, tokenizer = load_causal_lm(cfg.model_path, dtype=master_dtype(cfg))
    dataset = dataset if dataset is not None else load_examples(cfg, ("prompt", "label"))
    args = GRPOConfig(
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        beta=cfg.beta,
        **_trainer_args(cfg),
    )
    trainer = GRPOTrainer(model=model, reward_funcs=[label_reward, format_reward, dimension_reward, *extra_rewards],
                          args=args, train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    _save(trainer, tokenizer, cfg, "rl", merge=False)
    return trainer.state.log_history


def _save(trainer, tokenizer, cfg: StageConfig, stage: str, merge: bool) -> None:
    """Save the HF directory and its manifest (content version, where it came from)."""
    from lore_ml.modeling import model_version, write_manifest

    model = trainer.model
    if merge:
        model = model.merge_and_unload()
    if master_dtype(cfg) == "float32":  # save in the dtype the checkpoint came in, as serving expects
        from transformers import AutoConfig

        model = model.to(AutoConfig.from_pretrained(cfg.model_path).dtype or model.dtype)
    cfg.output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(cfg.output_dir)
    tokenizer.save_pretrained(cfg.output_dir)
    version = write_manifest(cfg.output_dir, stage=stage, trained_from=model_version(cfg.model_path), ds=cfg.ds_str,
                             steps=trainer.state.global_step)
    log.info("saved %s (%s)", cfg.output_dir, version)


class InitTeacherConfig(JobConfig):
    """Build the default tiny teacher with a tokenizer trained on this day's SFT examples."""

    output_dir: Path = Field(Path("artifacts/teacher-base"), description="Where the HF model directory goes.")
    vocab_size: int = Field(4096, ge=300)
    max_texts: int = Field(20_000, ge=1, description="Examples the tokenizer is trained on.")
    dataset: DatasetName = Field("all", description="Whose examples (as for SFT).")

    @classmethod
    def add_arguments(cls, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--out", dest="output_dir")


def run_init_teacher(cfg: InitTeacherConfig) -> Path:
    from lore_ml.modeling import TinyQwenSpec, init_teacher

    stage = StageConfig.load(overrides={**cfg.model_dump(include={"lakehouse", "ds", "dataset"}),
                                        "max_examples": cfg.max_texts})
    examples = load_examples(stage, ("prompt", "completion"))
    texts = (p + c for p, c in zip(examples["prompt"], examples["completion"]))
    return init_teacher(texts, cfg.output_dir, TinyQwenSpec(vocab_size=cfg.vocab_size))


def main(argv: list[str] | None = None) -> int:
    """``lore init-teacher``, ``lore train sft`` and ``lore train rl``."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stages = {"sft": (SftConfig, run_sft), "rl": (RlConfig, run_rl)}
    if not argv or argv[0] not in stages:
        usage = "usage: lore train {sft,rl} --ds YYYY-MM-DD [options]  (lore train sft --help lists the settings)"
        asked = argv[:1] in (["-h"], ["--help"])
        print(usage + ("\n\n  sft  " + SftConfig.__doc__ + "\n  rl   " + RlConfig.__doc__ if asked else ""),
              file=sys.stdout if asked else sys.stderr)
        return 0 if asked else 2
    config_class, stage = stages[argv[0]]
    cfg = config_class.from_cli(argv[1:], prog=f"lore train {argv[0]}")
    history = stage(cfg)
    losses = [h["loss"] for h in history if "loss" in h]
    print(f"{argv[0]}: {len(losses)} logged steps, first loss {losses[0]:.4f}, last {losses[-1]:.4f}; "
          f"model saved to {cfg.output_dir}")
    return 0


def init_teacher_main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = InitTeacherConfig.from_cli(argv, prog="lore init-teacher")
    print(f"teacher base model saved to {run_init_teacher(cfg)}")
    return 0

