"""The backend-independent judging logic: label from the label distribution, strict continuation
parsing, one sampled retry, failures recorded with their reason."""

import re
from types import SimpleNamespace

import numpy as np
import pytest

from lore_ml.inference import InferenceConfig, Judge, label_token_ids
from lore_ml.prompts import build_prompt

PROMPTS = [build_prompt(f"query {i}", {"title": f"item {i}"}) for i in range(3)]


class WordTokenizer:
    """Splits '<label>L3' into ['<label>', 'L', '3'] like the LORE tokenizer does."""

    vocab = {"<label>": 0, "L": 1, "1": 2, "2": 3, "3": 4, "4": 5}

    def __call__(self, text, add_special_tokens=False):
        return SimpleNamespace(input_ids=[self.vocab.get(t, 9) for t in re.findall(r"<label>|.", text, re.S)])


class ScriptedJudge(Judge):
    """Fixed label logits per prompt and scripted continuations per attempt."""

    def __init__(self, logits, greedy, sampled, reasoning=False, decision=None):
        self.logits, self.outputs, self.calls = np.array(logits, dtype=float), {False: greedy, True: sampled}, []
        self.decision = decision
        self.cfg = InferenceConfig(reasoning=reasoning, max_model_len=20_000)  # one token per character
        self.tokenizer, self.model_version = WordTokenizer(), "scripted@0"
        self.shared_ids, self.label_ids = label_token_ids(self.tokenizer)

    def _label_logprobs(self, token_ids):
        # prompts arrive sorted; map back through their text length, unique per prompt here
        order = sorted(range(len(PROMPTS)), key=lambda i: PROMPTS[i])
        return self.logits[order]

    def _generate(self, texts, max_tokens, stop, sample):
        self.calls.append((len(texts), stop, sample))
        return [self.outputs[sample].pop(0) for _ in texts]


def test_label_tokens_are_the_shared_prefix_and_the_digit():
    assert label_token_ids(WordTokenizer()) == ([0, 1], [2, 3, 4, 5])


def test_a_tokenizer_that_merges_labels_differently_is_refused():
    class Odd(WordTokenizer):
        def __call__(self, text, add_special_tokens=False):  # "<label>L1" as one token
            return SimpleNamespace(input_ids=[len(text)])

    with pytest.raises(ValueError, match="differ in exactly their last token"):
        label_token_ids(Odd())


def test_a_decision_rule_relabels_and_its_l2s_get_their_dimension_decoded():
    # argmax would say L1, L4, L4; biases of +3 on L2 turn the first and last into L2s
    judge = ScriptedJudge([[2, 1, 0, 0], [0, 0, 0, 5], [0, 0, 0, 1]], greedy=["color</label>", "brand</label>"],
                          sampled=[], decision={"rule": "bias", "bias": [0.0, 3.0, 0.0, 0.0]})
    predictions = judge.judge(PROMPTS)
    assert [p.label for p in predictions] == ["L2:color", "L4", "L2:brand"]
    assert np.allclose(predictions[0].p, np.exp([2, 1, 0, 0]) / np.exp([2, 1, 0, 0]).sum())  # p is the model's


def test_labels_come_from_the_distribution_and_only_l2_is_continued():
    judge = ScriptedJudge([[5, 0, 0, 0], [0, 0, 0, 5], [0, 5, 0, 0]], greedy=["brand</label>"], sampled=[])
    predictions = judge.judge(PROMPTS)
    assert [p.label for p in predictions] == ["L1", "L4", "L2:brand"]
    assert all(p.status == "ok" for p in predictions)
    assert np.allclose([sum(p.p) for p in predictions], 1.0) and predictions[0].p[0] > 0.9
    assert judge.calls == [(1, "</label>", False)]


def test_a_malformed_continuation_is_retried_once_with_sampling_then_the_level_stands():
    judge = ScriptedJudge([[0, 5, 0, 0]] * 3, greedy=["brnad</label>", "color</label>", "xx"],
                          sampled=["brand</label>", "L2</label>"])
    predictions = judge.judge(PROMPTS)
    assert [p.status for p in predictions] == ["ok", "ok", "ok"]
    assert [p.label for p in predictions] == ["L2:brand", "L2:color", "L2"]
    assert predictions[0].error is None and predictions[2].p[1] > 0.9
    assert predictions[2].error.startswith("L2 dimension not read (sampled retry: ")
    assert judge.calls == [(3, "</label>", False), (2, "</label>", True)]


def test_reasoning_mode_parses_the_think_block():
    judge = ScriptedJudge([[0, 0, 0, 5], [0, 0, 0, 5], [5, 0, 0, 0]],
                          greedy=["<think>all demands met R-EXA-01</think>", "no think", "<think>other category</think>"],
                          sampled=["<think></think>"], reasoning=True)
    predictions = judge.judge(PROMPTS)
    assert predictions[0].reasoning == "all demands met R-EXA-01" and predictions[0].status == "ok"
    assert predictions[1].status == "failed" and "empty <think>" in predictions[1].error
    assert predictions[2].label == "L1" and predictions[2].reasoning == "other category"
    assert judge.calls[0][1] == "</think>"


def test_think_first_reasons_before_reading_the_label():
    judge = ScriptedJudge([[0, 5, 0, 0], [0, 0, 0, 5], [0, 0, 0, 5]],
                          greedy=["brand differs R-BRD-01</think>", "all met R-EXA-01</think>", "all met</think>",
                                  "brand</label>"], sampled=[])
    judge.cfg = InferenceConfig(think_first=True, max_model_len=20_000)
    predictions = judge.judge(PROMPTS)
    assert [p.label for p in predictions] == ["L2:brand", "L4", "L4"]
    assert predictions[0].reasoning == "brand differs R-BRD-01" and predictions[1].reasoning == "all met R-EXA-01"
    assert judge.calls == [(3, "</think>", False), (1, "</label>", False)]
