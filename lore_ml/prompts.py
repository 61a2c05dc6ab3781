"""The teacher's prompt and the strict parser of its answers (DESIGN.md §5).

A prompt is: the task and the label scale, the rules digest, the knowledge-graph facts for
this (query, item), the query and the item's fields. Two output formats:

* think-first (offline judging, training): ``<think>reasoning</think><label>L2:brand</label>``
* label-first (real-time tier): ``<label>L2:brand</label><think>reasoning</think>`` — the label
  can be read from the first generated tokens.

:func:`parse_judgment` accepts exactly these shapes and raises :class:`MalformedOutput` with
the reason otherwise; nothing is guessed from free text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from lore_ml.labels import MISMATCH_DIMENSIONS
from lore_ml.rules import RulesDigest, digest

TASK = (
    "You judge how relevant an e-commerce item is to a shopper's search query.\n"
    "Labels: L4 exact (every demand met); L3 close (right category, close attributes, no explicit "
    "conflict); L2 mismatch (one explicit demand conflicts; write L2:<dimension>, e.g. L2:brand); "
    "L1 irrelevant (wrong category).\n"
    "Reason along the path: (1) the query's demands per dimension; (2) which item field answers "
    "each demand; (3) whether each matches; (4) the rule that decides, by id; then the label."
)
THINK_FIRST_INSTRUCTION = "Answer with your reasoning in <think>...</think>, then <label>...</label>."
LABEL_FIRST_INSTRUCTION = "Answer with <label>...</label> first, then your reasoning in <think>...</think>."
ITEM_FIELDS = {"title": "title", "shop_name": "shop", "brand": "brand", "category": "category", "price": "price"}
LABEL_PATTERN = re.compile(r"^L([1-4])(?::([a-z]+))?$")
_BODY = r"(?:(?!</?(?:think|label)>).)*"  # no nested or repeated tags inside a block
THINK_FIRST = re.compile(fr"^\s*<think>(?P<think>{_BODY})</think>\s*<label>(?P<label>{_BODY})</label>\s*$", re.S)
LABEL_FIRST = re.compile(fr"^\s*<label>(?P<label>{_BODY})</label>\s*<think>(?P<think>{_BODY})</think>\s*$", re.S)
RULE_ID = re.compile(r"\bR-[A-Z]{2,3}-\d{2}\b")
DEFAULT_RULES_DIGEST: RulesDigest = "ids"
"""The digest every prompt builder uses unless configured (``rules_in_prompt`` of synth-cot,
judge-head and the shim must agree: a teacher sees the prompts it was trained on). ``ids`` suits
the default teacher trained from scratch: it learns the principles from the reasoning paths
that cite the rules, and the compact digest would be 890 of a prompt's ~1,175 tokens (measured
with its tokenizer), doubling training and judging cost. A pretrained instruction-following
checkpoint can use ``compact`` or ``full``."""


def format_item(item: Mapping[str, Any]) -> str:
    """The item's fields as prompt lines; absent fields are left out."""
    lines = []
    for name, shown_as in ITEM_FIELDS.items():
        value = item.get(name)
        if value in (None, ""):
            continue
        lines.append(f"{shown_as}: {float(value):.2f}" if name == "price" else f"{shown_as}: {value}")
    attributes = item.get("attributes") or {}
    if attributes:
        lines.append("attributes: " + "; ".join(f"{k}={v}" for k, v in sorted(attributes.items())))
    visual = item.get("visual")
    if visual:
        lines.append(f"image: {visual}")
    return "\n".join(lines)


def build_prompt(
    query: str,
    item: Mapping[str, Any],
    facts: Sequence[str] = (),
    *,
    label_first: bool = False,
    rules: RulesDigest = DEFAULT_RULES_DIGEST,
) -> str:
    """The full prompt for one (query, item); ``facts`` come from :meth:`lore_ml.kg.KnowledgeGraph.facts`."""
    answer = LABEL_FIRST_INSTRUCTION if label_first else THINK_FIRST_INSTRUCTION
    knowledge = "\n".join(f"- {fact}" for fact in facts) if facts else "- (none)"
    return (
        f"{TASK}\n\nRules:\n{digest(rules)}\n\nKnowledge:\n{knowledge}\n\n"
        f"Query: {query}\nItem:\n{format_item(item)}\n\n{answer}\n"
    )


def as_label_first(prompt: str) -> str:
    """The same prompt asking for the label-first format (what the real-time tier and eval decode)."""
    if LABEL_FIRST_INSTRUCTION in prompt:
        return prompt
    if THINK_FIRST_INSTRUCTION not in prompt:
        raise ValueError("not a LORE prompt: no answer instruction found")
    return prompt.replace(THINK_FIRST_INSTRUCTION, LABEL_FIRST_INSTRUCTION)


def format_answer(label: str, reasoning: str, *, label_first: bool = False) -> str:
    """A well-formed completion (what CoT synthesis writes and the parser accepts)."""
    think, tag = f"<think>{reasoning}</think>", f"<label>{label}</label>"
    return f"{tag}{think}" if label_first else f"{think}{tag}"


@dataclass(frozen=True)
class Judgment:
    label: str  # L1..L4
    dimension: str | None  # the conflicting dimension of an L2
    reasoning: str

    @property
    def full_label(self) -> str:
        return f"{self.label}:{self.dimension}" if self.dimension else self.label

    @property
    def deciding_rule_id(self) -> str | None:
        """The rule the reasoning ends on (:func:`deciding_rule_id`)."""
        return deciding_rule_id(self.reasoning)


class MalformedOutput(ValueError):
    """A generation that is not a well-formed judgment; the message says why."""


def parse_label(text: str) -> tuple[str, str | None]:
    """``"L2:brand"`` → ``("L2", "brand")``; strict about case, dimension and level.

    >>> parse_label("L2:brand"), parse_label(" L4 ")
    (('L2', 'brand'), ('L4', None))
    >>> parse_label("L2")
    Traceback (most recent call last):
    ...
    lore_ml.prompts.MalformedOutput: L2 must name the conflicting dimension, e.g. L2:brand
    """
    match = LABEL_PATTERN.match(text.strip())
    if not match:
        raise MalformedOutput(f"label {text.strip()[:40]!r} is not L1-L4 (with :<dimension> for L2)")
    level, dimension = f"L{match.group(1)}", match.group(2)
    if level == "L2" and dimension is None:
        raise MalformedOutput("L2 must name the conflicting dimension, e.g. L2:brand")
    if level != "L2" and dimension is not None:
        raise MalformedOutput(f"only L2 names a dimension, got {text.strip()!r}")
    if dimension is not None and dimension not in MISMATCH_DIMENSIONS:
        raise MalformedOutput(f"unknown dimension {dimension!r}")
    return level, dimension


def parse_judgment(text: str, *, label_first: bool = False) -> Judgment:
    """Parse a completion in the given format, or raise :class:`MalformedOutput` with the reason."""
    shape = LABEL_FIRST if label_first else THINK_FIRST
    match = shape.match(text)
    if not match:
        for tag in ("think", "label"):
            count = len(re.findall(fr"<{tag}>", text))
            if count != 1 or len(re.findall(fr"</{tag}>", text)) != 1:
                raise MalformedOutput(f"expected exactly one <{tag}>...</{tag}> block, found {count}")
        order = "<label> then <think>" if label_first else "<think> then <label>"
        raise MalformedOutput(f"blocks out of order or text outside them: expected {order}")
    reasoning = match.group("think").strip()
    if not reasoning:
        raise MalformedOutput("empty <think> block")
    level, dimension = parse_label(match.group("label"))
    return Judgment(level, dimension, reasoning)


def deciding_rule_id(reasoning: str) -> str | None:
    """The rule a reasoning ends on (the last id it cites; step 4 of the path), if it cites one.

    >>> deciding_rule_id("not R-BRD-02 (no sub-brand): the brand conflicts, R-BRD-01"), deciding_rule_id("ok")
    ('R-BRD-01', None)
    """
    cited = RULE_ID.findall(reasoning)
    return cited[-1] if cited else None
