"""Label-conditioned reasoning from an LLM behind an OpenAI-compatible chat endpoint.

When ``synth_cot`` is given ``reasoning_endpoint`` (a vLLM server, or any OpenAI-compatible
API), each pair's reasoning is written by that model instead of the template engine: it sees
the rules digest, the KG facts, the query, the item and the gold label, and the template's own
path as a skeleton to follow. Its answer must be one ``<think>…</think>`` block that parses as a
well-formed judgment and cites a rule id; anything else — or an HTTP failure after retries —
falls back to the template's reasoning for that pair, and the fallbacks are counted.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
from typing import Mapping, Sequence

from lore_ml.prompts import RULE_ID, MalformedOutput, format_answer, format_item, parse_judgment
from lore_ml.rules import digest

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
    """The reasoning inside the answer, if it is one well-formed think block citing a rule.

    >>> accept("<think>brand conflicts: R-BRD-01</think>", "L2:brand")
    'brand conflicts: R-BRD-01'
    >>> accept("It is L4.", "L4")
    Traceback (most recent call last):
    ...
    lore_ml.prompts.MalformedOutput: no <think>...</think> block
    """
    blocks = THINK.findall(text)
    if len(blocks) != 1 or THINK.sub("", text).strip():
        raise MalformedOutput("no <think>...</think> block" if not blocks else "text outside one <think> block")
    judgment = parse_judgment(format_answer(label, blocks[0].strip()))
    if not RULE_ID.search(judgment.reasoning):
        raise MalformedOutput("the reasoning cites no rule id")
    return judgment.reasoning


class LlmReasoner:
    """Writes reasoning for many pairs concurrently; falls back per pair, never fails the job."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, concurrency: int = 8,
                 timeout_s: float = 60.0, client=None):
        import httpx

        self.model, self.concurrency = model, concurrency
        self.client = client or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s,
                                             headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
        self.fallbacks = 0  # pairs that kept the template's reasoning in the last write()

    def _ask(self, messages: list[dict]) -> str:
        import httpx
        from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

        @retry(retry=retry_if_exception_type(httpx.HTTPError), stop=stop_after_attempt(3),
               wait=wait_exponential(multiplier=0.5, max=8), reraise=True)
        def post() -> str:
            response = self.client.post("/v1/chat/completions", json={
                "model": self.model, "messages": messages, "temperature": 0.2, "max_tokens": 512})
            response.raise_for_status()
            return response.json()["choices"][0]["message"]["content"]

        return post()

    def _one(self, request: tuple) -> str | None:
        query, item, facts, label, skeleton = request
        try:
            return accept(self._ask(chat_prompt(query, item, facts, label, skeleton)), label)
        except Exception as exc:  # HTTP failure after retries or a malformed answer: keep the template's
            log.debug("reasoning endpoint fell back on %r: %s", query, exc)
            return None

    def write(self, requests: Sequence[tuple]) -> list[str]:
        """Reasoning per (query, item, facts, label, template reasoning), in order."""
        with concurrent.futures.ThreadPoolExecutor(self.concurrency) as pool:
            written = list(pool.map(self._one, requests))
        self.fallbacks = sum(text is None for text in written)
        return [text if text is not None else request[-1] for text, request in zip(written, requests)]
