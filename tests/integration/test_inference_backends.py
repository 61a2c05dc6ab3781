"""Both inference backends load the same tiny saved teacher by path and agree under greedy decoding."""

import numpy as np
import pytest

from lore_ml.inference import InferenceConfig, TransformersJudge, VllmJudge, make_judge
from lore_ml.modeling import TinyQwenSpec, init_teacher, model_version
from lore_ml.prompts import build_prompt, format_answer

# head size 32: vLLM's CPU attention kernels do not take the smallest sizes
SPEC = TinyQwenSpec(vocab_size=600, hidden_size=64, layers=1, heads=2, kv_heads=1, intermediate_size=128)
ITEMS = [{"title": "Stridex running shoes", "brand": "Stridex", "category": "running shoes", "price": 79.0},
         {"title": "Aeroline trail runner", "brand": "Aeroline", "category": "running shoes"},
         {"title": "Glow yoga mat", "category": "yoga mats", "attributes": {"color": "red"}}]
QUERIES = ["stridex running shoes", "red yoga mat", "aeroline shoes men"]
PROMPTS = [build_prompt(q, item, [f"fact about {q}"]) for q in QUERIES for item in ITEMS]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    texts = [p + format_answer(label, "demands checked R-EXA-01")
             for p in PROMPTS for label in ("L4", "L3", "L2:brand", "L1")]
    return init_teacher(texts * 5, tmp_path_factory.mktemp("teacher") / "tiny", SPEC)


def test_transformers_backend_judges_every_prompt(teacher):
    judge = make_judge(InferenceConfig(model_path=teacher, batch_size=4))
    assert isinstance(judge, TransformersJudge) and judge.model_version == model_version(teacher)
    predictions = judge.judge(PROMPTS)
    assert len(predictions) == len(PROMPTS)
    for prediction in predictions:
        assert np.isclose(sum(prediction.p), 1.0) and prediction.label[:2] in ("L1", "L2", "L3", "L4")
        assert prediction.status == "ok" or prediction.error  # a failure always says why


def test_a_prompt_too_long_is_a_recorded_failure(teacher):
    judge = TransformersJudge(InferenceConfig(model_path=teacher, max_model_len=256))
    predictions = judge.judge(PROMPTS[:2])
    assert [p.status for p in predictions] == ["failed", "failed"]
    assert predictions[0].p is None and "max_model_len=256" in predictions[0].error


@pytest.mark.parametrize("backend", ["transformers", "vllm"])
def test_a_think_first_prompt_without_room_to_reason_fails_alone(teacher, backend):
    """vLLM refuses a whole batch when one prompt exceeds max_model_len: a think-first prompt with no
    room for its reasoning is never generated from, and fails with the reason; the others are judged."""
    judge = TransformersJudge(InferenceConfig(model_path=teacher))
    room = len(judge.tokenizer(PROMPTS[0], add_special_tokens=False).input_ids) + 80
    config = InferenceConfig(model_path=teacher, backend=backend, think_first=True, max_model_len=room,
                             max_reasoning_tokens=32, vllm_compile=False)
    predictions = make_judge(config).judge([PROMPTS[0], PROMPTS[1] + " and more words" * 100])
    assert [p.status for p in predictions] == ["ok", "failed"] and predictions[0].p is not None
    assert predictions[1].p is None and f"max_model_len={room}" in predictions[1].error


def test_batching_and_order_do_not_change_probabilities(teacher):
    one_by_one = TransformersJudge(teacher, batch_size=1).label_probabilities(PROMPTS)
    batched = TransformersJudge(teacher, batch_size=5).label_probabilities(PROMPTS[::-1])[::-1]
    assert np.allclose(one_by_one, batched, atol=1e-5)


def test_vllm_backend_gives_the_transformers_labels(teacher):
    config = InferenceConfig(model_path=teacher, max_model_len=3072, vllm_compile=False, max_dimension_tokens=4)
    expected = TransformersJudge(config).judge(PROMPTS)
    vllm_judge = make_judge(config.model_copy(update={"backend": "vllm"}))
    assert isinstance(vllm_judge, VllmJudge)
    got = vllm_judge.judge(PROMPTS)
    assert [p.label for p in got] == [p.label for p in expected]
    assert [p.status for p in got] == [p.status for p in expected]
    assert np.allclose([p.p for p in got], [p.p for p in expected], atol=2e-3)
