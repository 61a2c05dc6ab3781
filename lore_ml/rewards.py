"""Reward functions for RL (TRL ``GRPOTrainer``): pure, deterministic, doctested.

Each takes the batch's ``completions`` (strings, or chat messages whose last ``content`` is
the answer) and the dataset's gold ``label`` column (``"L4"``, ``"L2:brand"`` ...) and returns
one float per completion, as TRL expects. A malformed completion scores 0 on every reward.
"""

from __future__ import annotations

from typing import Any, Sequence

from lore_ml.labels import RELEVANT_LABELS, label_level
from lore_ml.prompts import MalformedOutput, parse_judgment
from lore_ml.rules import leads_to


def _text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    return str(completion)


def _parse(completion: Any, label_first: bool):
    try:
        return parse_judgment(_text(completion), label_first=label_first)
    except MalformedOutput:
        return None


def label_score(predicted: str, gold: str) -> float:
    """1 for the gold level; less by a third per step of distance; half off for the wrong binary side.

    >>> [round(label_score(p, "L4"), 3) for p in ("L4", "L3", "L2", "L1")]
    [1.0, 0.667, 0.0, 0.0]
    >>> round(label_score("L2", "L3"), 3), round(label_score("L3", "L2"), 3)
    (0.167, 0.167)
    """
    distance = abs(int(predicted[1]) - int(gold[1]))
    score = 1.0 - distance / 3
    if (predicted in RELEVANT_LABELS) != (gold in RELEVANT_LABELS):
        score -= 0.5
    return max(0.0, score)


def label_reward(completions: Sequence[Any], label: Sequence[str], label_first: bool = False, **_: Any) -> list[float]:
    """Graded label reward (see :func:`label_score`).

    >>> label_reward(["<think>brand differs R-BRD-01</think><label>L2:brand</label>", "<label>L2</label>"],
    ...              ["L2:brand", "L2:brand"])
    [1.0, 0.0]
    """
    scores = []
    for completion, gold in zip(completions, label):
        judgment = _parse(completion, label_first)
        scores.append(0.0 if judgment is None else label_score(judgment.label, label_level(gold)))
    return scores


def format_reward(completions: Sequence[Any], label_first: bool = False, **_: Any) -> list[float]:
    """1 for a well-formed judgment whose deciding rule (the last rule id it cites) gives its label's
    level, 0.5 for one that ends on another level's rule, an unknown id or none, 0 when malformed.

    Asking only for *a* rule id would reward reasoning that argues for one label and then gives
    another; this asks the path's step 4 (rule → label) to hold, as synthesised paths do.

    >>> format_reward(["<think>all met R-EXA-01</think><label>L4</label>",
    ...                "<think>the brand conflicts R-BRD-01</think><label>L4</label>",
    ...                "<think>ok</think><label>L4</label>", "L4 because"])
    [1.0, 0.5, 0.5, 0.0]
    """
    scores = []
    for completion in completions:
        judgment = _parse(completion, label_first)
        if judgment is None:
            scores.append(0.0)
        else:
            scores.append(1.0 if leads_to(judgment.deciding_rule_id, judgment.label) else 0.5)
    return scores


def dimension_reward(completions: Sequence[Any], label: Sequence[str], label_first: bool = False, **_: Any) -> list[float]:
    """For gold L2 pairs: 1 for the right mismatch dimension, 0.5 for L2 with another one, else 0.
    Pairs whose gold label is not L2 score 0 for every completion (no signal either way).

    >>> dimension_reward(["<think>x</think><label>L2:brand</label>", "<think>x</think><label>L2:color</label>",
    ...                   "<think>x</think><label>L4</label>", "<think>x</think><label>L4</label>"],
    ...                  ["L2:brand", "L2:brand", "L2:brand", "L4"])
    [1.0, 0.5, 0.0, 0.0]
    """
    scores = []
    for completion, gold in zip(completions, label):
        judgment = _parse(completion, label_first)
        gold_level, _, gold_dimension = gold.partition(":")
        if judgment is None or gold_level != "L2" or judgment.label != "L2":
            scores.append(0.0)
        else:
            scores.append(1.0 if judgment.dimension == gold_dimension else 0.5)
    return scores
