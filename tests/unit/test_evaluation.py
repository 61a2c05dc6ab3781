"""Evaluation metrics worked out by hand, and the report files."""

import json

import numpy as np
import pytest

from lore_ml.evaluation import evaluate, record_decision, write_report

GOLD = ["L4", "L4", "L3", "L2:brand", "L2:color", "L1"]
PRED = ["L4", "L3", "L2:brand", "L2:brand", "L2:brand", "L1"]


def test_metrics_by_hand():
    m = evaluate(GOLD, PRED)
    assert m["acc4"] == pytest.approx(4 / 6)  # L4, L2, L2, L1 right
    assert m["acc2"] == pytest.approx(5 / 6)  # only the L3 -> L2 flips the binary side
    # per class: L1 1.0; L2 P=2/3 R=1 -> 0.8; L3 P=0 R=0 -> 0; L4 P=1 R=1/2 -> 2/3
    assert m["f1"] == pytest.approx({"L1": 1.0, "L2": 0.8, "L3": 0.0, "L4": 2 / 3})
    assert m["macro_f1"] == pytest.approx((1.0 + 0.8 + 0.0 + 2 / 3) / 4)
    assert m["confusion"] == [[1, 0, 0, 0], [0, 2, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1]]
    assert m["dimensions"] == {"brand": {"n": 1, "level_right": 1, "dimension_right": 1},
                               "color": {"n": 1, "level_right": 1, "dimension_right": 0}}


def test_calibration_and_spearman_from_probabilities():
    probabilities = np.array([[0, 0, 0, 1.0], [0, 0, 0.4, 0.6], [0, 0.5, 0.5, 0], [0, 1.0, 0, 0],
                              [0, 1.0, 0, 0], [1.0, 0, 0, 0]])
    m = evaluate(GOLD, PRED, probabilities, ratings=[3.0, 2.67, 2.33, 1.67, 2.0, 1.0])
    assert 0 <= m["ece"] <= 1 and sum(b["n"] for b in m["reliability"]) == 6
    assert m["spearman"] > 0.8


def test_reasoning_is_scored_on_the_rule_it_ends_on(tmp_path):
    reasonings = [
        "all demands met: R-EXA-01",  # L4 rule, predicted L4, gold L4
        "the brand conflicts R-BRD-01, yet close: R-BRD-02",  # ends on an L3 rule; predicted L3, gold L4
        "the brand conflicts: R-BRD-01",  # L2 rule, predicted L2, gold L3
        "R-EXA-01",  # an L4 rule for a predicted L2 (gold L2)
        "no rule cited",
        "R-XXX-99",  # no such rule
    ]
    m = evaluate(GOLD, PRED, reasonings=reasonings)
    assert m["rule_follows_label"] == pytest.approx(3 / 6)
    assert m["rule_gives_gold"] == pytest.approx(1 / 6)
    assert "| rule_follows_label | 0.500 |" in (write_report(m, tmp_path / "report", "unit test") / "report.md").read_text()
    assert "rule_follows_label" not in evaluate(GOLD, PRED)
    argmax_levels = np.eye(4)[[3, 3, 1, 1, 1, 0]]  # argmax L4 L4 L2 L2 L2 L1: only rows 1 and 3 follow their rule
    argmax = record_decision(m, GOLD, argmax_levels, {"rule": "bias", "bias": [0.0] * 4}, reasonings)["argmax"]
    assert argmax["rule_follows_label"] == pytest.approx(2 / 6)


def test_mismatched_lengths_fail():
    with pytest.raises(ValueError):
        evaluate(["L4"], [])


def test_report_files(tmp_path):
    m = evaluate(GOLD, PRED, np.full((6, 4), 0.25), ratings=[3, 2, 2, 1, 1, 1])
    out = write_report(m, tmp_path / "report", "unit test")
    assert json.loads((out / "metrics.json").read_text())["n"] == 6
    text = (out / "report.md").read_text()
    assert "| acc2 |" in text and "| brand | 1 | 1 | 1 |" in text
    for png in ("confusion.png", "reliability.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_fitted_rule_is_named_in_the_report_next_to_what_argmax_would_score(tmp_path):
    gold = ["L4", "L3", "L1", "L1"]
    p = np.array([[0, 0, 0.4, 0.6], [0, 0, 0.6, 0.4], [0.4, 0.6, 0, 0], [0.45, 0.55, 0, 0]])
    rule = {"rule": "bias", "bias": [0.3, 0.0, 0.0, 0.0]}  # lifts L1 over L2 on the last two rows
    m = record_decision(evaluate(gold, ["L4", "L3", "L1", "L1"], p), gold, p, rule)
    assert m["decision"] == rule and m["macro_f1"] == pytest.approx(3 / 4)  # no L2 at all
    assert m["argmax"] == {"acc2": 1.0, "acc4": 0.5, "macro_f1": pytest.approx((0 + 0 + 1 + 1) / 4)}
    assert "argmax after class biases [0.3, 0.0, 0.0, 0.0] (fitted on dev)" in (
        write_report(m, tmp_path / "report", "unit test") / "report.md").read_text()
    assert "argmax" not in record_decision(evaluate(gold, gold, p), gold, p, None)
