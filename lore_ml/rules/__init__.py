"""LORE's relevance rules: data in ``rules.yaml``, loaded and checked here.

Each rule has a stable id (``R-BRD-01``) that a judgment cites, the level it leads to, the
demand dimension it judges and the *relation* found while following the reasoning path
(``competitor_brand``, ``near_size`` ...). CoT synthesis picks the rule by relation; the prompt
carries :func:`digest`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Literal, get_args

import yaml

from lore_ml.labels import LABELS, MISMATCH_DIMENSIONS


@dataclass(frozen=True)
class Rule:
    id: str
    level: str
    dimension: str
    relation: str
    principle: str
    example: dict

    def label(self, dimension: str | None = None) -> str:
        """The label this rule gives; L2 names the dimension (``dimension`` overrides the rule's own)."""
        return f"L2:{dimension or self.dimension}" if self.level == "L2" else self.level


class RuleError(ValueError):
    """rules.yaml is inconsistent."""


@lru_cache(maxsize=1)
def rules() -> tuple[Rule, ...]:
    """All rules, validated: unique ids and relations, known levels and dimensions."""
    raw = yaml.safe_load(resources.files(__name__).joinpath("rules.yaml").read_text(encoding="utf-8"))
    loaded = tuple(Rule(**entry) for entry in raw)
    problems = []
    for field in ("id", "relation"):
        values = [getattr(r, field) for r in loaded]
        problems += [f"duplicate {field} {v}" for v in sorted({v for v in values if values.count(v) > 1})]
    for r in loaded:
        if r.level not in LABELS:
            problems.append(f"{r.id}: level {r.level} is not one of {LABELS}")
        if r.dimension not in MISMATCH_DIMENSIONS:
            problems.append(f"{r.id}: unknown dimension {r.dimension}")
        if not {"query", "item", "label"} <= set(r.example):
            problems.append(f"{r.id}: example needs query, item and label")
    if problems:
        raise RuleError("; ".join(problems))
    return loaded


def rule(rule_id: str) -> Rule:
    """The rule with this id.

    >>> rule("R-BRD-01").label()
    'L2:brand'
    """
    for r in rules():
        if r.id == rule_id:
            return r
    raise KeyError(f"no rule {rule_id!r}")


def rule_for(relation: str) -> Rule:
    """The rule a path-following finding triggers.

    >>> rule_for("sub_brand_of_asked").id, rule_for("sub_brand_of_asked").level
    ('R-BRD-02', 'L3')
    """
    for r in rules():
        if r.relation == relation:
            return r
    raise KeyError(f"no rule for relation {relation!r}")


def leads_to(rule_id: str | None, level: str) -> bool:
    """Whether ``rule_id`` is one of the rules and gives ``level`` (``L1``..``L4``): a judgment's
    deciding rule must, or its reasoning argues for another label than it gives.

    >>> leads_to("R-BRD-01", "L2"), leads_to("R-BRD-01", "L4"), leads_to("R-XXX-99", "L2"), leads_to(None, "L4")
    (True, False, False, False)
    """
    return any(r.id == rule_id and r.level == level for r in rules())


RulesDigest = Literal["full", "compact", "ids"]
DIGEST_STYLES: tuple[str, ...] = get_args(RulesDigest)


@lru_cache(maxsize=4)
def digest(style: RulesDigest = "compact") -> str:
    """The rules as prompt text, one line per rule.

    ``full``: id, label, principle and an example; ``compact``: without the example; ``ids``: id,
    label and the triggering relation only (~300 tokens instead of ~900: what a small model trained
    from scratch gets, since it learns the principles from the reasoning paths that cite them).

    >>> digest("ids").splitlines()[0]
    'R-CAT-01 -> L1: unrelated_category'
    """
    if style not in DIGEST_STYLES:
        raise ValueError(f"rules digest style must be one of {DIGEST_STYLES}, got {style!r}")
    lines = []
    for r in rules():
        if style == "ids":
            lines.append(f"{r.id} -> {r.label()}: {r.relation}")
            continue
        line = f"{r.id} -> {r.label()}: {r.principle}"
        if style == "full":
            line += f' (e.g. "{r.example["query"]}" vs "{r.example["item"]}" -> {r.example["label"]})'
        lines.append(line)
    return "\n".join(lines)
