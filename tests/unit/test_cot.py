"""Label-conditioned CoT synthesis: the reasoning follows the path and ends at the gold label."""

import pytest

from lore_ml.cot import contradiction, extract_demands, hard_case, synthesize
from lore_ml.kg import KnowledgeGraph
from lore_ml.prompts import RULE_ID, format_answer, parse_judgment

KG = KnowledgeGraph.from_edges(
    [
        ("brand:stridex", "brand:stridex pro", "sub_brand", 1.0),
        ("brand:aeroline", "brand:stridex", "competitor", 0.5),
        ("term:sneakers", "category:running shoes", "term_category", 0.9),
        ("term:mens", "value:audience=men", "value_synonym", 0.9),
        ("term:shade", "value:component=shade", "value_synonym", 0.8),  # components have their own rule
    ],
    brands=["stridex", "aeroline", "stridex pro"],
)
SHOE = {"item_id": "i1", "title": "Stridex red mesh running shoes", "brand": "Stridex", "category": "running shoes",
        "price": 95.0, "attributes": {"color": "red", "material": "mesh", "audience": "men", "component": "none"}}


def test_demands_from_text_kg_and_item_vocabulary():
    demands = extract_demands("Stridex red sneakers mens under 100 without laces", SHOE, KG)
    assert demands == {"brand": "stridex", "category": "running shoes", "color": "red", "audience": "men",
                       "price": "100", "component": "without laces"}


def test_a_value_synonym_never_makes_a_component_demand():
    # "with"/"without" decide component demands; a mined synonym of a component value does not
    assert "component" not in extract_demands("lamp shade", SHOE, KG)
    assert extract_demands("lamp with shade", SHOE, KG)["component"] == "with shade"


@pytest.mark.parametrize(
    "query, item, gold, expected_label, rule_id",
    [
        ("stridex red sneakers", SHOE, "L4", "L4", "R-EXA-01"),
        ("stridex sneakers", {**SHOE, "brand": "Stridex Pro"}, "L3", "L3", "R-BRD-02"),
        ("stridex sneakers", {**SHOE, "brand": "Aeroline"}, "L2:brand", "L2:brand", "R-BRD-01"),
        ("stridex pro sneakers", SHOE, "L2:brand", "L2:brand", "R-BRD-03"),
        ("blue sneakers", {**SHOE, "attributes": {"color": "red"}}, "L2", "L2:attributes", "R-ATT-01"),  # bare L2
        ("sneakers under 90", SHOE, "L3", "L3", "R-PRC-02"),  # 95 is within 10% of 90
        ("sneakers under 80", SHOE, "L2:price", "L2:price", "R-PRC-01"),
        ("coffee maker", SHOE, "L1", "L1", "R-CAT-01"),
        ("mens sneakers", {**SHOE, "attributes": {"audience": "women"}}, "L2:audience", "L2:audience", "R-AUD-01"),
    ],
)
def test_synthesis_reaches_the_gold_label_and_parses(query, item, gold, expected_label, rule_id):
    label, reasoning = synthesize(query, item, gold, KG)
    assert label == expected_label
    for step in ("1. Query understanding", "2. Path construction", "3. Path following", "4. Rule"):
        assert step in reasoning
    judgment = parse_judgment(format_answer(label, reasoning))
    assert judgment.full_label == expected_label and judgment.deciding_rule_id == rule_id
    assert set(RULE_ID.findall(reasoning)) == {rule_id}  # the path cites no other rule


def test_a_conflict_the_text_does_not_show_is_stated_from_the_gold_label():
    label, reasoning = synthesize("stridex sneakers", SHOE, "L2:season", KG)
    assert label == "L2:season" and "R-SEA-01" in reasoning and "as the rater judged" in reasoning


def test_a_catalog_value_the_item_does_not_have_is_a_conflict_and_a_title_can_state_one():
    # The KG's value nodes name every attribute value of the catalog: "beige" is a colour even though
    # no click mined it as a synonym, so the red item conflicts on its fields alone.
    kg = KnowledgeGraph.from_edges(
        [("term:sneakers", "category:running shoes", "term_category", 0.9)], brands=["stridex"],
        values=["color=red", "color=beige", "material=mesh"])
    assert extract_demands("beige sneakers", SHOE, kg)["color"] == "beige"
    label, reasoning = synthesize("beige sneakers", SHOE, "L2", kg)
    assert label == "L2:color" and "color: wanted beige, item red -> conflict" in reasoning
    assert "as the rater judged" not in reasoning
    # An item without the attribute whose title says it meets the demand.
    label, reasoning = synthesize("red sneakers", {**SHOE, "attributes": {}}, "L4", kg)
    assert label == "L4" and "color -> item title" in reasoning and "as the rater judged" not in reasoning


def test_words_of_a_brand_or_category_name_are_not_attribute_demands():
    kg = KnowledgeGraph.from_edges(
        [("term:sneakers", "category:running shoes", "term_category", 0.9),
         ("term:mens", "value:audience=men", "value_synonym", 0.9)], brands=["stridex", "stridex kids", "red wing"],
        values=["color=red", "audience=kids", "material=wood"])
    assert extract_demands("stridex kids sneakers", SHOE, kg) == {"brand": "stridex kids", "category": "running shoes"}
    assert "color" not in extract_demands("red wing boots", SHOE, kg)
    screw = {"title": "steel wood screws", "category": "wood screws", "attributes": {"material": "steel"}}
    assert extract_demands("wood screws", screw, kg) == {"category": "wood screws"}
    tee = {"title": "cotton tee", "category": "tee", "attributes": {}}
    assert extract_demands("stainless steel bottle", tee, kg) == {}  # a category is named by whole words
    # Outside the names the same words are demands, and no phrase spans the gap a name leaves.
    assert extract_demands("red stridex kids sneakers mens", SHOE, kg) == {
        "brand": "stridex kids", "category": "running shoes", "color": "red", "audience": "men"}


def test_hard_case_turns_an_exact_pair_into_a_brand_mismatch():
    item, gold = hard_case(SHOE, "brand", "Aeroline")
    label, reasoning = synthesize("stridex red sneakers", item, gold, KG)
    assert (label, item["item_id"]) == ("L2:brand", "i1~brand") and "aeroline competes with stridex" in reasoning
    assert item["title"] == "Aeroline red mesh running shoes"


def test_hard_case_keeps_the_demands_of_the_original_pair():
    query = "mens red sneakers"
    demands = extract_demands(query, SHOE, KG)
    item, gold = hard_case(SHOE, "audience", "women")
    label, reasoning = synthesize(query, item, gold, KG, demands)
    assert label == "L2:audience" and "audience: wanted men, item women -> conflict" in reasoning
    assert "as the rater judged" not in reasoning


DISAGREEING = [  # (query, item, gold, rule the path cites, what the item's fields alone would contradict)
    ("mens sneakers", {**SHOE, "attributes": {"audience": "women"}}, "L4", "R-EXA-01", "L4 with conflict"),
    ("stridex sneakers", {**SHOE, "brand": None}, "L4", "R-EXA-01", "L4 with not stated"),
    ("stridex sneakers", {**SHOE, "brand": "Aeroline"}, "L3", "R-NEA-01", "L3 with conflict"),
    ("mens sneakers", {**SHOE, "attributes": {"audience": "women"}}, "L3", "R-NEA-01", "L3 with conflict"),
    ("coffee maker", SHOE, "L1", "R-CAT-01", "L1 without conflict"),
    ("stridex sneakers", SHOE, "L1", "R-CAT-01", "L1 without conflict"),  # the category finding is restated
]


@pytest.mark.parametrize("query, item, gold, rule_id, _", DISAGREEING)
def test_a_human_label_the_findings_disagree_with_is_restated_as_the_raters_judgment(query, item, gold, rule_id, _):
    label, reasoning = synthesize(query, item, gold, KG)
    assert label == gold and f"4. Rule: {rule_id} ({gold})" in reasoning and "as the rater judged" in reasoning
    assert contradiction(reasoning, label) is None


@pytest.mark.parametrize("query, item, gold, rule_id, _", DISAGREEING)
def test_a_label_no_person_gave_gets_no_path_the_findings_disagree_with(query, item, gold, rule_id, _):
    assert synthesize(query, item, gold, KG, restate=False) is None


@pytest.mark.parametrize(
    "query, item, gold",
    [
        ("stridex red sneakers", SHOE, "L4"),
        ("stridex sneakers", {**SHOE, "brand": "Aeroline"}, "L2:brand"),
        ("sneakers under 90", SHOE, "L3"),  # close
        ("stridex sneakers", {**SHOE, "brand": "Stridex Pro"}, "L3"),  # a sub-brand
    ],
)
def test_an_agreeing_path_is_the_same_whoever_gave_the_label(query, item, gold):
    path = synthesize(query, item, gold, KG)
    assert path == synthesize(query, item, gold, KG, restate=False) and "as the rater judged" not in path[1]
    assert contradiction(path[1], path[0]) is None


@pytest.mark.parametrize("query, item, gold, _, expected", DISAGREEING)
def test_contradiction_reads_the_verdicts_of_a_synthesised_path(query, item, gold, _, expected):
    """A path written for the label its findings support, read against the label ``gold``."""
    supported = {"L4 with conflict": "L2", "L4 with not stated": "L3", "L3 with conflict": "L2",
                 "L1 without conflict": "L4"}[expected]
    label, reasoning = synthesize(query, item, supported, KG, restate=False)
    assert label.partition(":")[0] == supported and contradiction(reasoning, gold) == expected
