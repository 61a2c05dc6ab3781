"""Label-conditioned reasoning from an LLM behind an OpenAI-compatible chat endpoint.

When ``synth_cot`` is given ``reasoning_endpoint`` (a vLLM server, or any OpenAI-compatible
API), each pair's reasoning is written by that model instead of the template engine: it sees
the rules digest, the KG facts, the query, the item and the gold label, and the template's own
path as a skeleton to follow. Its answer must be one ``<think>…</think>`` block that parses as a
well-formed judgment and whose deciding rule (the last id it cites) leads to the label; anything
else — or an HTTP failure after retries — falls back to the template's reasoning for that pair,
and the fallbacks are counted by reason.

Two checks keep a run from silently becoming a template run, or from spending hours on a dead
server: :meth:`LlmReasoner.check` asks the endpoint which models it serves before the first pair
(:class:`~lore_ml.config.InputsNotReady` when it is down or does not serve the model), and
:meth:`LlmReasoner.write` stops with :class:`ReasoningFailed`, sending nothing more, as soon as
more pairs fell back than ``max_fallback_share`` allows. Accepted answers are saved as they come
in a :class:`~lore_ml.checkpoint.RunCheckpoint`, so a run that stopped, failed or was killed resumes where it
was instead of asking the endpoint again.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import re
import threading
from collections import Counter
from typing import Mapping, Sequence

from lore_ml.checkpoint import RunCheckpoint
from lore_ml.config import InputsNotReady
from lore_ml.prompts import MalformedOutput, format_answer, format_item, parse_judgment
from lore_ml.rules import digest, rule

log = logging.getLogger("lore.cot_llm")
THINK = re.compile(r"<think>(.*?)</think>", re.S)
INSTRUCTIONS = (
    "You write the reasoning of an e-commerce relevance judgment whose correct label is given. Follow four "
    "steps: (1) the query's demands per dimension; (2) which item field answers each; (3) whether each matches; "
    "(4) the deciding rule, by its id (R-XXX-NN) from the rules below, and the label. Use the knowledge facts. "
    "Answer with exactly one <think>...</think> block and nothing else."
)


def chat_prompt(query: str, item: Mapping, facts: Sequence[str], label: str, skeleton: str) -> list[dict]:
    knowledge = "\n".join(f"- {fact}" for fact in facts) or "- (none)"
    user = (f"Rules:\n{digest('compact')}\n\nKnowledge:\n{knowledge}\n\nQuery: {query}\nItem:\n{format_item(item)}\n\n"
            f"Correct label: {label}\nA skeleton of the path (improve its wording, keep its facts):\n{skeleton}")
    return [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": user}]


def accept(text: str, label: str) -> str:
    """The reasoning inside the answer, if it is one well-formed think block whose deciding rule
    (the last rule id it cites) leads to the label's level, as a template path's does.

    >>> accept("<think>not R-BRD-02 (no sub-brand): the brand conflicts, R-BRD-01</think>", "L2:brand")
    'not R-BRD-02 (no sub-brand): the brand conflicts, R-BRD-01'
    >>> accept("It is L4.", "L4")
    Traceback (most recent call last):
    ...
    lore_ml.prompts.MalformedOutput: no <think>...</think> block
    >>> accept("<think>the brand conflicts: R-BRD-01</think>", "L4")
    Traceback (most recent call last):
    ...
    lore_ml.prompts.MalformedOutput: the deciding rule leads to another level than the label
    """
    blocks = THINK.findall(text)
    if len(blocks) != 1 or THINK.sub("", text).strip():
        raise MalformedOutput("no <think>...</think> block" if not blocks else "text outside one <think> block")
    judgment = parse_judgment(format_answer(label, blocks[0].strip()))
    deciding_id = judgment.deciding_rule_id
    if deciding_id is None:
        raise MalformedOutput("the reasoning cites no rule id")
    try:
        deciding = rule(deciding_id)
    except KeyError:
        raise MalformedOutput("the deciding rule id is not one of the rules") from None
    if deciding.level != judgment.label:
        raise MalformedOutput("the deciding rule leads to another level than the label")
    return judgment.reasoning


def request_key(model: str, messages: list[dict]) -> str:
    """What an answer is saved under: the model and everything it was shown.

    >>> request_key("m", [{"role": "user", "content": "q"}]) == request_key("m", [{"role": "user", "content": "q"}])
    True
    >>> request_key("m", [{"role": "user", "content": "q"}]) == request_key("n", [{"role": "user", "content": "q"}])
    False
    """
    return hashlib.sha1(json.dumps([model, messages], sort_keys=True).encode("utf-8")).hexdigest()


class ReasoningFailed(RuntimeError):
    """More pairs fell back to the template than allowed; the job writes nothing."""


def _fallback_reason(exc: Exception) -> str:
    """A short, countable name for why a pair kept the template's reasoning.

    >>> _fallback_reason(MalformedOutput("the reasoning cites no rule id"))
    'malformed: the reasoning cites no rule id'
    >>> _fallback_reason(KeyError("choices"))
    'unexpected answer: KeyError'
    """
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, httpx.HTTPError):
        return f"HTTP failure: {type(exc).__name__}"
    if isinstance(exc, MalformedOutput):
        return f"malformed: {exc}"
    return f"unexpected answer: {type(exc).__name__}"


class LlmReasoner:
    """Writes reasoning for many pairs concurrently; falls back per pair, within a budget.

    ``model`` None takes the endpoint's only model (see :meth:`check`).
    """

    def __init__(self, base_url: str, model: str | None, api_key: str | None = None, concurrency: int = 8,
                 timeout_s: float = 60.0, max_fallback_share: float = 1.0, client=None):
        import httpx

        self.base_url, self.model, self.concurrency = base_url, model, concurrency
        self.max_fallback_share = max_fallback_share
        self.client = client or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s,
                                             headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
        self.fallbacks = 0  # pairs that kept the template's reasoning in the last write()
        self.fallback_reasons: Counter = Counter()  # why, in the last write()
        self.resumed = 0  # answers of the last write() that a checkpoint already held

    @staticmethod
    def _retrying():
        import httpx
        from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

        return retry(retry=retry_if_exception_type(httpx.HTTPError), stop=stop_after_attempt(3),
                     wait=wait_exponential(multiplier=0.5, max=8), reraise=True)

    def check(self) -> str:
        """The model the endpoint will be asked for; raises InputsNotReady when the endpoint is down,
        answers ``/v1/models`` with an error, or does not serve ``model``."""
        import httpx

        @self._retrying()
        def served() -> list[str]:
            response = self.client.get("/v1/models")
            response.raise_for_status()
            return [str(entry["id"]) for entry in response.json()["data"]]

        try:
            models = served()
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise InputsNotReady(f"reasoning endpoint {self.base_url} did not list its models ({_fallback_reason(exc)}: "
                                 f"{exc}): start the server, or unset reasoning_endpoint for the template engine") from exc
        if self.model is None and len(models) == 1:
            self.model = models[0]
        if self.model not in models:
            raise InputsNotReady(f"reasoning endpoint {self.base_url} serves {models}, not "
                                 f"{self.model or 'one model'}: set reasoning_model to one of them")
        return self.model

    def _ask(self, messages: list[dict]) -> str:
        @self._retrying()
        def post() -> str:
            response = self.client.post("/v1/chat/completions", json={
                "model": self.model, "messages": messages, "temperature": 0.2, "max_tokens": 512})
            response.raise_for_status()
            return response.json()["choices"][0]["message"]["content"]

        return post()

    def _one(self, messages: list[dict], label: str) -> tuple[str | None, str | None]:
        """(reasoning, None), or (None, why it falls back)."""
        try:
            return accept(self._ask(messages), label), None
        except Exception as exc:  # HTTP failure after retries or an unusable answer: keep the template's
            log.debug("reasoning endpoint fell back on %r: %s", messages[-1]["content"][-200:], exc)
            return None, _fallback_reason(exc)

    def write(self, requests: Sequence[tuple], progress=None, checkpoint: RunCheckpoint | None = None) -> list[str]:
        """Reasoning per (query, item, facts, label, template reasoning), in order; ``progress``
        (a tqdm bar) advances per answer. Raises ReasoningFailed once the fallbacks exceed
        ``max_fallback_share`` of the requests; no request is sent after that. With a
        ``checkpoint``, answers it holds are not asked again and new ones are saved to it."""
        budget = int(self.max_fallback_share * len(requests))
        self.fallback_reasons, self.resumed = Counter(), 0
        saved = checkpoint.load() if checkpoint is not None else {}
        counting, stop = threading.Lock(), threading.Event()

        def one(request: tuple) -> str | None:
            if stop.is_set():
                return None
            query, item, facts, label, skeleton = request
            messages = chat_prompt(query, item, facts, label, skeleton)
            key = request_key(self.model, messages)
            if key in saved:
                text, reason = saved[key], None
            else:
                text, reason = self._one(messages, label)
                if text is not None and checkpoint is not None:
                    checkpoint.add(key, text)
            with counting:
                self.resumed += key in saved
                if reason is not None:
                    self.fallback_reasons[reason] += 1
                    if sum(self.fallback_reasons.values()) > budget:
                        stop.set()
                if progress is not None:
                    progress.update(1)
            return text

        try:
            with concurrent.futures.ThreadPoolExecutor(self.concurrency) as pool:
                written = list(pool.map(one, requests))
        finally:
            if checkpoint is not None:
                checkpoint.flush()
        self.fallbacks = sum(self.fallback_reasons.values())
        if stop.is_set():
            raise ReasoningFailed(
                f"{self.fallbacks:,} of {len(requests):,} pairs fell back to the template, more than max share "
                f"{self.max_fallback_share:g} allows; stopped. Why: "
                + ", ".join(f"{why} ({n:,})" for why, n in self.fallback_reasons.most_common(3)))
        return [text if text is not None else request[-1] for text, request in zip(written, requests)]
