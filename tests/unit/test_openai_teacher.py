"""The tail tier's client of an OpenAI-compatible teacher server, against a scripted transport."""

import json
import time

import httpx
import pytest

from lore_ml.modeling import save_decision
from online.teacher import OpenAITeacher, TeacherError, TeacherTimeout

ITEMS = [{"item_id": "a", "title": "Stridex running shoes"}, {"item_id": "b", "title": "Brewster kettle"}]
DIGITS = {"1": 11, "2": 12, "3": 13, "4": 14}


def server(top_logprobs, delay_s=0.0):
    """/tokenize gives each label its digit token; /v1/completions answers ``top_logprobs`` per prompt."""

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if request.url.path == "/tokenize":
            return httpx.Response(200, json={"tokens": [1, 2, DIGITS[body["prompt"][-1]]]})
        time.sleep(delay_s)
        assert body["allowed_token_ids"] == list(DIGITS.values()) and body["max_tokens"] == 1
        return httpx.Response(200, json={"choices": [{"index": i, "logprobs": {"top_logprobs": [top]}}
                                                     for i, top in enumerate(top_logprobs[: len(body["prompt"])])]})

    return httpx.Client(base_url="http://teacher", transport=httpx.MockTransport(handle))


def test_p_comes_from_the_label_logprobs_and_the_served_models_rule_labels(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    save_decision(tmp_path, "label_first", {"rule": "bias", "bias": [0.0, 3.0, 0.0, 0.0]})
    tops = [{"1": -3.0, "2": -2.0, "3": -1.0, "4": -0.2}, {"1": -0.1, "2": -3.0, "3": -3.0, "4": -3.0}]
    plain = OpenAITeacher("http://teacher", "m", client=server(tops)).judge_items("stridex shoes", ITEMS, 1.0)
    assert [p.label for p in plain] == ["L4", "L1"] and abs(sum(plain[0].p) - 1) < 1e-9
    ruled = OpenAITeacher("http://teacher", "m", client=server(tops), model_dir=tmp_path)
    judged = ruled.judge_items("stridex shoes", ITEMS, 1.0)
    assert [p.label for p in judged] == ["L2", "L2"] and judged[0].p == plain[0].p
    assert "+d" in ruled.model_version  # the served checkpoint's version, rule included


def test_a_slow_server_costs_the_deadline_in_total_not_per_phase():
    teacher = OpenAITeacher("http://teacher", "m", client=server([{"4": 0.0}] * 2, delay_s=0.5))
    teacher.judge_items("q", ITEMS, 2.0)  # the label token ids are asked once, outside the timed call
    started = time.perf_counter()
    with pytest.raises(TeacherTimeout):
        teacher.judge_items("q", ITEMS, 0.1)
    assert time.perf_counter() - started < 0.1 + 0.05


def test_a_malformed_answer_is_a_teacher_error_not_a_crash():
    with pytest.raises(TeacherError, match="2 prompts"):
        OpenAITeacher("http://teacher", "m", client=server([{"4": 0.0}])).judge_items("q", ITEMS, 1.0)



def test_a_server_down_before_its_first_answer_is_a_teacher_error_until_it_answers():
    """The label tokens are asked on the first request: a server that is down then, or that answers
    /tokenize with an error or an unexpected body, must give the router a TeacherError to fall back
    on, not an exception it does not handle (a 500 to the ad server, a dead write-back worker)."""
    answering = server([{"4": 0.0}] * 2)
    tokenize = {"answer": None}  # None: the server is down

    def handle(request: httpx.Request) -> httpx.Response:
        if tokenize["answer"] is None:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path == "/tokenize" and tokenize["answer"] != "ok":
            status, body = tokenize["answer"]
            return httpx.Response(status, json=body)
        return answering.send(request)

    teacher = OpenAITeacher("http://teacher", "m", client=httpx.Client(base_url="http://teacher",
                                                                         transport=httpx.MockTransport(handle)))
    with pytest.raises(TeacherError, match="connection refused"):
        teacher.judge_items("q", ITEMS, 1.0)
    for answer, error in [((503, {}), "503"), ((200, {"tokens": []}), "IndexError"),
                          ((200, {"detail": "no"}), "KeyError"), ((200, {"tokens": ["x"]}), "ValueError")]:
        tokenize["answer"] = answer
        with pytest.raises(TeacherError, match=error):
            teacher.judge_items("q", ITEMS, 1.0)
    tokenize["answer"] = "ok"
    assert [p.label for p in teacher.judge_items("q", ITEMS, 1.0)] == ["L4", "L4"]
