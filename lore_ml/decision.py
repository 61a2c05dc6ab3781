"""The decision rule of a student: how p(L1..L4) becomes a label, fitted on dev for macro-F1.

A model trained with cross-entropy on a skewed label mix (Home Depot: 69 % relevant) rarely
puts the rare classes on top, so its argmax labels score poorly on macro-F1 (Home Depot test:
0.28 for a cross-encoder whose ranking is good). Two rules move the boundaries without
retraining, both fitted on the dev split (never test) by coordinate search:

* ``bias``: add ``b_k`` to ``log p(Lk)``, then argmax;
* ``thresholds``: three cut points on the expected level ``Σ_k p(Lk)·k`` (the scale is ordinal).

:func:`fit_decision` keeps whichever scores better on dev; the rule is stored in the student's
manifest and applied by :func:`decide` wherever the student labels (shim, reports). ``p`` itself
is left as the model produced it.
"""

from __future__ import annotations

import numpy as np

BIAS_GRID = np.round(np.arange(-2.0, 2.01, 0.1), 2)


def apply_class_bias(probabilities: np.ndarray, bias: np.ndarray | list[float]) -> np.ndarray:
    """``p(Lk) · exp(b_k)``, renormalised per row.

    >>> apply_class_bias(np.array([[0.5, 0.5, 0.0, 0.0]]), [np.log(3.0), 0, 0, 0]).round(2).tolist()
    [[0.75, 0.25, 0.0, 0.0]]
    """
    weighted = probabilities * np.exp(np.asarray(bias, dtype=float))
    return weighted / weighted.sum(axis=1, keepdims=True)


def macro_f1(gold_index: np.ndarray, predicted_index: np.ndarray, classes: int = 4) -> float:
    """Unweighted mean of per-class F1 over ``classes`` (absent classes count as 0).

    >>> macro_f1(np.array([0, 1, 2, 3]), np.array([0, 1, 2, 2]))
    0.6666666666666666
    """
    scores = []
    for k in range(classes):
        true_pos = np.sum((predicted_index == k) & (gold_index == k))
        denominator = np.sum(predicted_index == k) + np.sum(gold_index == k)
        scores.append(2 * true_pos / denominator if denominator else 0.0)
    return float(np.mean(scores))


def fit_class_bias(probabilities: np.ndarray, gold_index: np.ndarray, rounds: int = 3) -> list[float]:
    """Biases (L1 fixed at 0) that maximise dev macro-F1 of the argmax, by coordinate search.

    >>> p = np.array([[0.6, 0.4, 0, 0]] * 3 + [[0.7, 0.3, 0, 0]] * 3)
    >>> bias = fit_class_bias(p, np.array([1, 1, 1, 0, 0, 0]))
    >>> apply_class_bias(p, bias).argmax(axis=1).tolist()
    [1, 1, 1, 0, 0, 0]
    """
    log_p = np.log(np.clip(probabilities, 1e-9, 1.0))
    bias = np.zeros(probabilities.shape[1])
    best = macro_f1(gold_index, log_p.argmax(axis=1))
    for _ in range(rounds):
        improved = False
        for k in range(1, len(bias)):
            for value in BIAS_GRID:
                trial = bias.copy()
                trial[k] = value
                score = macro_f1(gold_index, (log_p + trial).argmax(axis=1))
                if score > best + 1e-9:
                    best, bias, improved = score, trial, True
        if not improved:
            break
    return [float(b) for b in bias]


def labels_from_thresholds(scores: np.ndarray, thresholds: list[float]) -> np.ndarray:
    """Level index per score: the number of (ascending) thresholds it reaches.

    >>> labels_from_thresholds(np.array([0.1, 0.5, 0.9]), [0.2, 0.5, 0.8]).tolist()
    [0, 2, 3]
    """
    return np.searchsorted(np.asarray(thresholds), scores, side="right")


def fit_score_thresholds(scores: np.ndarray, gold_index: np.ndarray, rounds: int = 3) -> list[float]:
    """Three ascending cut points on a one-dimensional score that maximise macro-F1, from score quantiles.

    Starts from the cut points that reproduce the gold label mix, then moves one at a time.

    >>> scores, gold = np.array([0.1, 0.5, 0.4, 0.2, 0.99, 0.7, 0.95, 0.8]), np.array([0, 1, 1, 0, 3, 2, 3, 2])
    >>> labels_from_thresholds(scores, fit_score_thresholds(scores, gold)).tolist() == gold.tolist()
    True
    """
    grid = np.unique(np.quantile(scores, np.linspace(0, 1, 101)))
    mix = np.cumsum(np.bincount(gold_index, minlength=4))[:-1] / len(gold_index)
    cuts = [float(grid[np.searchsorted(grid, np.quantile(scores, share))]) for share in mix]
    best = macro_f1(gold_index, labels_from_thresholds(scores, cuts))
    for _ in range(rounds):
        improved = False
        for k in range(3):
            low = cuts[k - 1] if k else -np.inf
            high = cuts[k + 1] if k < 2 else np.inf
            for value in grid[(grid >= low) & (grid <= high)]:
                trial = cuts[:k] + [float(value)] + cuts[k + 1:]
                score = macro_f1(gold_index, labels_from_thresholds(scores, trial))
                if score > best + 1e-9:
                    best, cuts, improved = score, trial, True
        if not improved:
            break
    return cuts


def expected_level(probabilities: np.ndarray) -> np.ndarray:
    """``Σ_k p(Lk)·k`` with L1..L4 as 0..3.

    >>> expected_level(np.array([[0.0, 0.0, 0.5, 0.5]])).tolist()
    [2.5]
    """
    return probabilities @ np.arange(probabilities.shape[1], dtype=float)


def decide(probabilities: np.ndarray, decision: dict | None) -> np.ndarray:
    """Level index (0..3) per row under ``decision`` (None: argmax).

    >>> p = np.array([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]])
    >>> decide(p, None).tolist(), decide(p, {"rule": "thresholds", "cuts": [0.5, 1.5, 1.9]}).tolist()
    ([3, 0], [3, 1])
    """
    if decision is None:
        return probabilities.argmax(axis=1)
    if decision["rule"] == "bias":
        return apply_class_bias(probabilities, decision["bias"]).argmax(axis=1)
    if decision["rule"] == "thresholds":
        return labels_from_thresholds(expected_level(probabilities), decision["cuts"])
    raise ValueError(f"unknown decision rule {decision['rule']!r}")


def fit_decision(probabilities: np.ndarray, gold_index: np.ndarray) -> dict:
    """The better on ``gold_index`` (dev) of fitted biases and fitted expected-level thresholds, with its macro-F1."""
    candidates = [{"rule": "bias", "bias": fit_class_bias(probabilities, gold_index)},
                  {"rule": "thresholds", "cuts": fit_score_thresholds(expected_level(probabilities), gold_index)}]
    for candidate in candidates:
        candidate["dev_macro_f1"] = macro_f1(gold_index, decide(probabilities, candidate))
    return max(candidates, key=lambda candidate: candidate["dev_macro_f1"])
