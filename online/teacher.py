"""Teacher clients of the tail tier: judge (query, items) label-first within a deadline.

* :class:`OpenAITeacher` — an OpenAI-compatible completions server (``vllm serve <dir>
  --logprobs-mode processed_logprobs``): one request, the label digit restricted with vLLM's
  ``allowed_token_ids``, p(L1..L4) from the returned logprobs; the HTTP timeout is the deadline.
* :class:`InProcessTeacher` — the small default model in the shim's process. One judging
  thread; a request that finds it busy, or that runs past its deadline, gets ``TeacherTimeout``
  at once (the computation cannot be interrupted, so it is never queued behind another).

Both raise :class:`TeacherTimeout` or :class:`TeacherError`; the router then answers from the
student and queues the request for the write-back worker.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Mapping, Sequence

from pathlib import Path

import numpy as np
import orjson

from lore_ml.decision import decide
from lore_ml.inference import LABEL_OPEN, InferenceConfig, Prediction
from lore_ml.labels import LABELS
from lore_ml.prompts import DEFAULT_RULES_DIGEST, RulesDigest, as_label_first, build_prompt


class TeacherTimeout(TimeoutError):
    pass


class TeacherError(RuntimeError):
    pass


def tail_prompts(query_norm: str, items: Sequence[Mapping], rules: RulesDigest = DEFAULT_RULES_DIGEST) -> list[str]:
    """Label-first prompts for the request's items (no KG facts online: the tail has none mined)."""
    return [as_label_first(build_prompt(query_norm, item, rules=rules)) for item in items]


class InProcessTeacher:
    def __init__(self, cfg: InferenceConfig, rules: RulesDigest = DEFAULT_RULES_DIGEST):
        from lore_ml.inference import make_judge

        self.judge, self.rules = make_judge(cfg), rules
        self.model_version = self.judge.model_version
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="teacher")
        self._busy = threading.Lock()

    def _run(self, prompts: list[str]) -> list[Prediction]:
        try:
            return self.judge.judge(prompts)
        finally:
            self._busy.release()

    def judge_items(self, query_norm: str, items: Sequence[Mapping], timeout_s: float) -> list[Prediction]:
        if not self._busy.acquire(blocking=False):
            raise TeacherTimeout("teacher busy with another request")
        future = self._pool.submit(self._run, tail_prompts(query_norm, items, self.rules))
        try:
            return future.result(timeout=timeout_s)
        except concurrent.futures.TimeoutError:
            raise TeacherTimeout(f"teacher did not answer within {timeout_s * 1000:.0f} ms") from None
        except Exception as exc:  # the model failed: the router falls back to the student
            raise TeacherError(f"{type(exc).__name__}: {exc}") from exc


class OpenAITeacher:
    """Label-first judging through an OpenAI-compatible completions endpoint (vLLM's server)."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, client=None,
                 model_dir: Path | None = None, rules: RulesDigest = DEFAULT_RULES_DIGEST, max_in_flight: int = 16):
        import httpx

        from lore_ml.modeling import model_version, read_manifest

        self.model = self.model_version = model
        self.decision, self.rules = None, rules
        if model_dir is not None:  # the served checkpoint: label as the batch judge would
            self.model_version = model_version(model_dir)
            self.decision = read_manifest(model_dir).get("decision", {}).get("label_first")
        self.client = client or httpx.Client(base_url=base_url.rstrip("/"),
                                             headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
        self._digits: dict[str, int] | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="teacher-http")
        self._slots = threading.BoundedSemaphore(max_in_flight)

    def judge_items(self, query_norm: str, items: Sequence[Mapping], timeout_s: float) -> list[Prediction]:
        """p(L1..L4) per item, or :class:`TeacherTimeout` once ``timeout_s`` has passed in total.

        httpx's timeout bounds each phase (connect, write, read) on its own, so a slow server
        could take several times the budget; the request therefore runs on a pool thread and the
        caller stops waiting at the deadline (the abandoned request ends by httpx's own timeouts).
        With ``max_in_flight`` requests already out, the answer is a timeout at once."""
        started = time.perf_counter()
        if not self._slots.acquire(blocking=False):
            raise TeacherTimeout("every connection to the teacher server is busy")
        try:
            future = self._pool.submit(self._post, query_norm, items, timeout_s)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        try:
            response = future.result(timeout=max(timeout_s - (time.perf_counter() - started), 0.0))
        except concurrent.futures.TimeoutError:
            raise TeacherTimeout(f"teacher server did not answer within {timeout_s * 1000:.0f} ms") from None
        try:
            choices = sorted(response["choices"], key=lambda c: c["index"])
            logprobs = np.array([[choice["logprobs"]["top_logprobs"][0].get(label[1:], -np.inf) for label in LABELS]
                                 for choice in choices])
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise TeacherError(f"teacher server: unexpected completions answer ({type(exc).__name__}: {exc})") from exc
        if logprobs.shape != (len(items), len(LABELS)):
            raise TeacherError(f"teacher server: {len(logprobs)} choices for {len(items)} prompts")
        p = np.exp(logprobs - logprobs.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return [Prediction(LABELS[int(level)], [float(x) for x in row]) for row, level in zip(p, decide(p, self.decision))]

    def _post(self, query_norm: str, items: Sequence[Mapping], timeout_s: float) -> dict:
        import httpx

        prompts = [p + LABEL_OPEN + "L" for p in tail_prompts(query_norm, items, self.rules)]
        try:  # orjson: a hundred prompts are ~175 kB of JSON, which the json module takes 0.6 ms to write
            body = {"model": self.model, "prompt": prompts, "max_tokens": 1, "temperature": 0,
                    "logprobs": len(LABELS), "allowed_token_ids": self._label_token_ids(timeout_s)}
            response = self.client.post("/v1/completions", content=orjson.dumps(body), timeout=timeout_s,
                                        headers={"Content-Type": "application/json"})
            response.raise_for_status()
            return orjson.loads(response.content)
        except httpx.TimeoutException:
            raise TeacherTimeout(f"teacher server did not answer within {timeout_s * 1000:.0f} ms") from None
        except httpx.HTTPError as exc:
            raise TeacherError(f"teacher server: {exc}") from exc
        except orjson.JSONDecodeError as exc:
            raise TeacherError(f"teacher server: answer is not JSON ({exc})") from exc

    def _label_token_ids(self, timeout_s: float) -> list[int]:
        """The token that ends ``<label>L1`` .. ``<label>L4`` in the server's tokenizer (asked once,
        on the first request; until a server answers, each request asks again)."""
        if self._digits is None:
            digits = {}
            for label in LABELS:
                response = self.client.post("/tokenize", json={"model": self.model, "prompt": LABEL_OPEN + label,
                                                               "add_special_tokens": False}, timeout=timeout_s)
                response.raise_for_status()
                try:
                    digits[label[1:]] = int(response.json()["tokens"][-1])
                except (ValueError, KeyError, IndexError, TypeError) as exc:
                    raise TeacherError(f"teacher server: unexpected /tokenize answer ({type(exc).__name__}: {exc})"
                                       ) from exc
            self._digits = digits
        return list(self._digits.values())
