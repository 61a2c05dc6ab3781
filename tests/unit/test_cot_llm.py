"""Reasoning from an OpenAI-compatible endpoint: accepted when well-formed, template otherwise."""

import json

import httpx

from lore_ml.cot_llm import LlmReasoner

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
    assert reasoner.fallbacks == 2
    assert "Correct label: L2:brand" in seen[0] and "Aeroline competes with Stridex" in seen[0]
    assert sum("query three" in prompt for prompt in seen) == 3  # an HTTP error is retried, then falls back
