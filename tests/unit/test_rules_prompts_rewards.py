"""Rules data, prompt building, the strict parser and the RL reward functions."""

import pytest

from lore_ml.labels import DIMENSIONS
from lore_ml.prompts import MalformedOutput, build_prompt, format_answer, parse_judgment
from lore_ml.rewards import dimension_reward, format_reward, label_reward
from lore_ml.rules import digest, rule, rule_for, rules

REQUIRED_RELATIONS = {
    "competitor_brand", "sub_brand_of_asked", "parent_for_sub_brand", "wrong_model", "accessory_for_main",
    "main_for_accessory", "audience_gap", "season_conflict", "fake_material", "similar_material", "over_price",
    "near_price", "bundle_mismatch", "derived_product", "excluded_component_present",
}


def test_rules_cover_the_required_cases_with_examples():
    relations = {r.relation for r in rules()}
    assert REQUIRED_RELATIONS <= relations
    assert {r.level for r in rules()} == {"L1", "L2", "L3", "L4"}
    for r in rules():
        example_level = r.example["label"].split(":")[0]
        assert example_level == r.level, r.id
    assert rule_for("fake_material").label() == "L2:material"
    assert rule("R-ATT-01").label("function") == "L2:function"
    with pytest.raises(KeyError):
        rule("R-XXX-99")


def test_prompt_has_task_rules_facts_and_item_fields():
    item = {"title": "Stridex Pro running shoes", "shop_name": "Bargain Bay", "brand": "Stridex Pro", "price": 89.5,
            "category": "running shoes", "attributes": {"color": "red", "audience": "men"}, "visual": "dominant colour red"}
    prompt = build_prompt("stridex sneakers", item, ["brand: stridex pro is a sub-brand of the asked brand stridex"])
    for expected in ("L2:<dimension>", "R-BRD-02", "- brand: stridex pro is a sub-brand", "Query: stridex sneakers",
                     "shop: Bargain Bay", "price: 89.50", "attributes: audience=men; color=red",
                     "image: dominant colour red", "<think>...</think>, then <label>"):
        assert expected in prompt, expected
    label_first = build_prompt("q", {"title": "t"}, label_first=True, rules="compact")
    assert "<label>...</label> first" in label_first and "- (none)" in label_first
    assert len(digest("ids")) < len(digest("compact")) < len(digest("full"))


@pytest.mark.parametrize("label_first", [False, True])
def test_parser_round_trips_both_formats(label_first):
    text = format_answer("L2:brand", "query asks stridex; item is aeroline R-BRD-01", label_first=label_first)
    judgment = parse_judgment(text, label_first=label_first)
    assert (judgment.label, judgment.dimension, judgment.full_label) == ("L2", "brand", "L2:brand")
    assert judgment.deciding_rule_id == "R-BRD-01"


@pytest.mark.parametrize(
    "text, reason",
    [
        ("L4", "exactly one <think>"),
        ("<think>a</think><think>b</think><label>L4</label>", "exactly one <think>"),
        ("<think>a</think>", "exactly one <label>"),
        ("<label>L4</label><think>a</think>", "out of order"),
        ("<think>a</think><label>L4</label> trailing words", "text outside"),
        ("<think>  </think><label>L4</label>", "empty <think>"),
        ("<think>a</think><label>L5</label>", "not L1-L4"),
        ("<think>a</think><label>l4</label>", "not L1-L4"),
        ("<think>a</think><label>L2</label>", "must name the conflicting dimension"),
        ("<think>a</think><label>L4:brand</label>", "only L2 names a dimension"),
        ("<think>a</think><label>L2:smell</label>", "unknown dimension"),
    ],
)
def test_parser_rejects_malformed_output_with_a_reason(text, reason):
    with pytest.raises(MalformedOutput, match=reason):
        parse_judgment(text)


def test_every_dimension_parses():
    for dimension in DIMENSIONS + ("price",):
        assert parse_judgment(format_answer(f"L2:{dimension}", "x")).dimension == dimension


def test_rewards_accept_conversational_completions_and_score_malformed_zero():
    good = [{"role": "assistant", "content": format_answer("L3", "close R-BRD-02")}]
    bad = [{"role": "assistant", "content": "it is L3"}]
    assert label_reward([good, bad], label=["L4", "L4"]) == [pytest.approx(2 / 3), 0.0]
    assert format_reward([good, bad]) == [1.0, 0.0]
    argues_for_l2 = format_answer("L4", "the brand conflicts: R-BRD-01")
    assert format_reward([argues_for_l2, format_answer("L2:brand", "the brand conflicts: R-BRD-01")]) == [0.5, 1.0]
    assert dimension_reward([good, bad], label=["L2:brand", "L2:brand"]) == [0.0, 0.0]
    label_first = format_answer("L4", "all met R-EXA-01", label_first=True)
    assert label_reward([label_first], label=["L4"], label_first=True) == [1.0]
    assert label_reward([label_first], label=["L4"]) == [0.0]  # wrong format for a think-first stage
