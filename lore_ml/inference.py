"""Judging with a causal LM through transformers: p(L1..L4) from the label-first format.

For each prompt (label-first) the four continuations ``<label>L1`` .. ``<label>L4`` are scored
by the model's log-probabilities and normalised into p(L1..L4); for an L2 the dimension is
then decoded greedily up to ``</label>``. No sampling, so results are reproducible. The vLLM
backend (batch judging, issue 6) will share this interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from lore_ml.labels import LABELS
from lore_ml.prompts import MalformedOutput, as_label_first, parse_label


@dataclass
class Prediction:
    label: str  # L1..L4, with :<dimension> for an L2 whose dimension decoded cleanly
    p: list[float]  # p(L1..L4)


class TransformersJudge:
    """Score prompts with a model loaded by path (the tiny default or a real checkpoint)."""

    def __init__(self, model_path: str | Path, batch_size: int = 8, max_dimension_tokens: int = 8):
        import torch

        from lore_ml.modeling import load_causal_lm

        self.model, self.tokenizer = load_causal_lm(model_path)
        self.model.eval()
        self.torch = torch
        self.batch_size = batch_size
        self.max_dimension_tokens = max_dimension_tokens
        self.candidates = [self.tokenizer(f"<label>{label}", add_special_tokens=False).input_ids for label in LABELS]

    def _sequence_logprob(self, prefixes: list[list[int]], continuations: list[list[int]]) -> np.ndarray:
        torch, pad = self.torch, self.tokenizer.pad_token_id
        sequences = [p + c for p, c in zip(prefixes, continuations)]
        width = max(map(len, sequences))
        ids = torch.full((len(sequences), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, seq in enumerate(sequences):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        with torch.no_grad():
            logprobs = torch.log_softmax(self.model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
        totals = []
        for row, (prefix, cont) in enumerate(zip(prefixes, continuations)):
            positions = range(len(prefix) - 1, len(prefix) + len(cont) - 1)
            totals.append(sum(logprobs[row, pos, tok].item() for pos, tok in zip(positions, cont)))
        return np.array(totals)

    def label_probabilities(self, prompts: Sequence[str]) -> np.ndarray:
        """p(L1..L4) per prompt, shape (n, 4)."""
        rows = []
        for start in range(0, len(prompts), self.batch_size):
            batch = [self.tokenizer(as_label_first(p), add_special_tokens=False).input_ids
                     for p in prompts[start : start + self.batch_size]]
            prefixes = [ids for ids in batch for _ in LABELS]
            continuations = [cand for _ in batch for cand in self.candidates]
            scores = self._sequence_logprob(prefixes, continuations).reshape(len(batch), len(LABELS))
            scores = np.exp(scores - scores.max(axis=1, keepdims=True))
            rows.append(scores / scores.sum(axis=1, keepdims=True))
        return np.vstack(rows)

    def _dimension(self, prompt: str) -> str | None:
        ids = self.tokenizer(as_label_first(prompt) + "<label>L2:", return_tensors="pt", add_special_tokens=False)
        with self.torch.no_grad():
            out = self.model.generate(**ids, max_new_tokens=self.max_dimension_tokens, do_sample=False,
                                      pad_token_id=self.tokenizer.pad_token_id)
        text = self.tokenizer.decode(out[0, ids.input_ids.shape[1]:], skip_special_tokens=False)
        try:
            return parse_label("L2:" + text.split("</label>", 1)[0])[1]
        except MalformedOutput:
            return None

    def judge(self, prompts: Sequence[str]) -> list[Prediction]:
        probabilities = self.label_probabilities(prompts)
        predictions = []
        for prompt, p in zip(prompts, probabilities):
            label = LABELS[int(p.argmax())]
            if label == "L2" and (dimension := self._dimension(prompt)):
                label = f"L2:{dimension}"
            predictions.append(Prediction(label, [float(x) for x in p]))
        return predictions
