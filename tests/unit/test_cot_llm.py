"""Reasoning from an OpenAI-compatible endpoint: accepted when well-formed, template otherwise."""

import json

import httpx
import pytest

from lore_ml.config import InputsNotReady
from lore_ml.checkpoint import RunCheckpoint
from lore_ml.cot_llm import LlmReasoner, ReasoningFailed

ITEM = {"item_id": "m-1", "title": "Aeroline running shoes", "brand": "Aeroline"}


def test_good_answers_are_used_and_bad_ones_fall_back_to_the_template():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        prompt = body["messages"][1]["content"]
        seen.append(prompt)
        if "query one" in prompt:
            return httpx.Response(200, json={"choices": [{"message": {"content":
                "<think>(1) brand Stridex (2) brand field (3) Aeroline conflicts (4) R-BRD-01</think>"}}]})
        if "query two" in prompt:
            return httpx.Response(200, json={"choices": [{"message": {"content": "L2:brand, obviously"}}]})
        return httpx.Response(503)

    reasoner = LlmReasoner("http://llm", "teacher-xl", client=httpx.Client(base_url="http://llm",
                                                                           transport=httpx.MockTransport(handler)))
    requests = [(f"stridex shoes query {n}", ITEM, ["Aeroline competes with Stridex"], "L2:brand", f"template {n}")
                for n in ("one", "two", "three")]
    assert reasoner.write(requests) == ["(1) brand Stridex (2) brand field (3) Aeroline conflicts (4) R-BRD-01",
                                        "template two", "template three"]
    assert reasoner.fallbacks == 2 and reasoner.fallback_reasons == {"malformed: no <think>...</think> block": 1,
                                                                      "HTTP 503": 1}
    assert "Correct label: L2:brand" in seen[0] and "Aeroline competes with Stridex" in seen[0]
    assert sum("query three" in prompt for prompt in seen) == 3  # an HTTP error is retried, then falls back


@pytest.mark.parametrize("answer, reason", [
    ("<think>(3) every demand met (4) R-EXA-01</think>", "the deciding rule leads to another level than the label"),
    ("<think>(4) R-ZZZ-99</think>", "the deciding rule id is not one of the rules"),
    ("<think>(3) the brand conflicts</think>", "the reasoning cites no rule id"),
])
def test_an_answer_whose_deciding_rule_does_not_lead_to_the_label_keeps_the_template(answer, reason):
    reasoner = LlmReasoner("http://llm", "m", max_fallback_share=1.0, client=_endpoint(["m"], answer)[0])
    assert reasoner.write([("stridex shoes", ITEM, [], "L2:brand", "template")]) == ["template"]
    assert reasoner.fallback_reasons == {f"malformed: {reason}": 1}


def _endpoint(models, answer="<think>(4) R-BRD-01</think>"):
    """A scripted server: ``models`` is /v1/models' answer (an int: that HTTP status); every chat
    request gets ``answer`` and is recorded."""
    asked = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            if isinstance(models, int):
                return httpx.Response(models)
            return httpx.Response(200, json={"object": "list", "data": [{"id": m} for m in models]})
        asked.append(json.loads(request.content)["model"])
        return httpx.Response(200, json={"choices": [{"message": {"content": answer}}]})

    return httpx.Client(base_url="http://llm", transport=httpx.MockTransport(handler)), asked


def test_the_check_names_the_served_model_or_says_why_the_endpoint_cannot_be_used():
    client, asked = _endpoint(["qwen-72b"])
    reasoner = LlmReasoner("http://llm", None, client=client)
    assert reasoner.check() == "qwen-72b"  # unset: the endpoint's only model
    reasoner.write([("q", ITEM, [], "L2:brand", "template")])
    assert asked == ["qwen-72b"]
    with pytest.raises(InputsNotReady, match=r"serves \['qwen-72b'\], not teacher-xl: set reasoning_model"):
        LlmReasoner("http://llm", "teacher-xl", client=_endpoint(["qwen-72b"])[0]).check()
    with pytest.raises(InputsNotReady, match=r"serves \['a', 'b'\], not one model"):
        LlmReasoner("http://llm", None, client=_endpoint(["a", "b"])[0]).check()
    with pytest.raises(InputsNotReady, match="did not list its models .HTTP 404"):
        LlmReasoner("http://llm", "a", client=_endpoint(404)[0]).check()

    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    down = httpx.Client(base_url="http://llm", transport=httpx.MockTransport(refuse))
    with pytest.raises(InputsNotReady, match="HTTP failure: ConnectError.*start the server"):
        LlmReasoner("http://llm", "a", client=down).check()


def test_past_the_fallback_budget_the_run_stops_and_sends_nothing_more():
    client, asked = _endpoint(["m"], answer="L2:brand, obviously")  # never a <think> block
    reasoner = LlmReasoner("http://llm", "m", concurrency=1, max_fallback_share=0.1, client=client)
    requests = [(f"q{n}", ITEM, [], "L2:brand", f"template {n}") for n in range(100)]
    with pytest.raises(ReasoningFailed, match=r"11 of 100 pairs fell back .* malformed: no <think>...</think> block \(11\)"):
        reasoner.write(requests)
    assert len(asked) == 11  # one request in flight at a time: none after the one over budget
    good, _ = _endpoint(["m"])
    within = LlmReasoner("http://llm", "m", max_fallback_share=0.1, client=good)
    assert within.write(requests) == ["(4) R-BRD-01"] * 100 and within.fallbacks == 0


def test_a_run_that_stopped_resumes_from_its_checkpoint_and_asks_only_the_rest(tmp_path):
    """The first run saves what it accepted before it stopped; the second asks only for the rest,
    and clearing the checkpoint (the day is written) removes every part."""
    broken_after = {"n": 30}

    def handler(request: httpx.Request) -> httpx.Response:
        prompt = json.loads(request.content)["messages"][1]["content"]
        asked.append(prompt)
        number = int(prompt.split("Query: q", 1)[1].split("\n", 1)[0])
        if number >= broken_after["n"]:
            return httpx.Response(200, json={"choices": [{"message": {"content": "no idea"}}]})
        return httpx.Response(200, json={"choices": [{"message": {"content": f"<think>q{number}: R-BRD-01</think>"}}]})

    asked = []
    client = httpx.Client(base_url="http://llm", transport=httpx.MockTransport(handler))
    requests = [(f"q{n}", ITEM, [], "L2:brand", f"template {n}") for n in range(100)]
    checkpoint = RunCheckpoint(str(tmp_path / "ckpt"), flush_every=7)
    with pytest.raises(ReasoningFailed):
        LlmReasoner("http://llm", "m", concurrency=1, max_fallback_share=0.05, client=client).write(
            requests, checkpoint=checkpoint)
    assert len(RunCheckpoint(str(tmp_path / "ckpt")).load()) == 30  # the last, short part is saved too

    asked.clear()
    broken_after["n"] = 100
    again = LlmReasoner("http://llm", "m", concurrency=4, client=client)
    assert again.write(requests, checkpoint=RunCheckpoint(str(tmp_path / "ckpt"))) == [
        f"q{n}: R-BRD-01" for n in range(100)]
    assert len(asked) == 70 and again.resumed == 30
    other_model = LlmReasoner("http://llm", "m2", client=client)
    asked.clear()
    other_model.write(requests[:5], checkpoint=RunCheckpoint(str(tmp_path / "ckpt")))
    assert len(asked) == 5  # what another model wrote is not reused
    RunCheckpoint(str(tmp_path / "ckpt")).clear()
    assert not (tmp_path / "ckpt").exists() and RunCheckpoint(str(tmp_path / "ckpt")).load() == {}



SIGTERMED_RUN = """
import os, signal, sys, time
import httpx
from lore_ml.checkpoint import RunCheckpoint
from lore_ml.cli import run_entry_point
from lore_ml.cot_llm import LlmReasoner

asked = []

def handler(request):
    asked.append(request)
    if len(asked) == 10:
        os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.01)
    return httpx.Response(200, json={"choices": [{"message": {"content": "<think>(4) R-BRD-01</think>"}}]})

def main(argv):
    client = httpx.Client(base_url="http://llm", transport=httpx.MockTransport(handler))
    requests = [(f"q{n}", {"item_id": "m-1", "title": "shoes"}, [], "L2:brand", "template") for n in range(500)]
    try:
        LlmReasoner("http://llm", "m", concurrency=2, client=client).write(
            requests, checkpoint=RunCheckpoint(sys.argv[1], flush_every=1000))
    finally:
        print(len(asked))
    return 0

sys.exit(run_entry_point(main))
"""


def test_sigterm_stops_the_run_at_once_and_saves_the_answers_that_came(tmp_path):
    """What Airflow sends a task past its timeout: the queued requests are dropped, the ones in
    flight end, their answers are saved for the retry, and the command exits with 143."""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", SIGTERMED_RUN, str(tmp_path / "ckpt")], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 143, run.stderr[-2000:]
    asked = int(run.stdout)
    assert 10 <= asked < 50
    assert len(RunCheckpoint(str(tmp_path / "ckpt")).load()) == asked
