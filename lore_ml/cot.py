"""Progressive chain-of-thought synthesis, conditioned on the gold label (template engine).

Given a (query, item) pair, its gold label and the knowledge graph, write the reasoning path
that leads to that label, in the four steps of DESIGN.md §5:

1. query understanding — the demands the query makes, per dimension (brand, category,
   attribute values, price limit, excluded/required parts, bundle);
2. path construction — which item field answers each demand;
3. path following — per demand: match, close, conflict or not stated;
4. rule → label — the rule (by id) that decides, chosen to agree with the gold label.

Demands come from the query text, the KG (brands, term→category, value synonyms) and the
item's own attribute vocabulary, so the same engine serves synthetic pairs, mined pairs and
Home Depot pairs. Where a finding disagrees with the gold label (the query or the item's fields
say less than the rater knew: an L4 whose colour is not stated, an L2 whose conflict the text does
not show), :func:`decide` restates it as the rater's judgment, so every path leads to its label
by the rules' table; a label no person gave gets no path then (``synthesize(restate=False)``).

:func:`hard_case` builds extra L2 examples by perturbing one demand of an exact (L4) pair.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from lore_ml.kg import KnowledgeGraph
from lore_ml.rules import Rule, rule_for
from lore_ml.text import normalize_query

PRICE_LIMIT = re.compile(r"\b(?:under|below|less than|max|up to)\s+\$?(\d+(?:\.\d+)?)")
EXCLUDED = re.compile(r"\b(?:without|no)\s+([a-z][a-z-]*(?:\s[a-z][a-z-]*)?)")
REQUIRED = re.compile(r"\bwith\s+([a-z][a-z-]*(?:\s[a-z][a-z-]*)?)")
# Demands on these come from their own rules (the KG, "with"/"without", "N-pack", "official store"),
# never from an attribute value or a KG value synonym that merely appears in the query.
DIMENSIONS_WITH_OWN_RULES = ("category", "brand", "store", "component", "bundle")


@dataclass
class Finding:
    dimension: str
    wanted: str
    field: str  # the item field that answers the demand
    have: str | None
    verdict: str  # match | close | conflict | not_stated
    relation: str | None = None  # the rule relation a close/conflict verdict triggers
    note: str = ""
    rater: bool = False  # the label's judgment restated (see decide), not what the item's fields show


@dataclass
class Path:
    demands: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


def _attributes(item: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v).lower() for k, v in (item.get("attributes") or {}).items() if v not in (None, "")}


def extract_demands(query: str, item: Mapping[str, Any], kg: KnowledgeGraph) -> dict[str, str]:
    """Demands per dimension found in the query text (step 1)."""
    norm = normalize_query(query)
    words = norm.split()
    demands: dict[str, str] = {}
    brand = kg.query_brand(words)
    if brand:
        demands["brand"] = brand
    best = max(((kg.term_categories[w][0], w) for w in words if kg.term_categories.get(w)),
               key=lambda pair: pair[0][1], default=None)
    category = str(item.get("category") or "").lower()
    if category and f" {category} " in f" {norm} ":  # whole words: "tee" is not in "steel"
        demands["category"] = category
    elif best is not None:
        demands["category"] = best[0][0]
    # Words of the brand or category the query names are not attribute values ("kids" in
    # "stridex kids sneakers", "red" in "red wing boots"): each name becomes a gap no value spans.
    text = f" {norm} "
    for name in (brand, demands.get("category")):
        if name:
            text = text.replace(f" {name} ", " | ")
    free_words = text.split()
    for dimension, value in _attributes(item).items():
        if dimension not in DIMENSIONS_WITH_OWN_RULES and f" {value} " in text:
            demands[dimension] = value
    for dimension, value in kg.query_values(free_words).items():  # another value than the item's: a conflict
        if dimension not in DIMENSIONS_WITH_OWN_RULES:
            demands.setdefault(dimension, value)
    for word in free_words:
        for target, _ in kg.value_synonyms.get(word, [])[:1]:
            dimension, _, value = target.partition("=")
            if dimension not in DIMENSIONS_WITH_OWN_RULES:
                demands.setdefault(dimension, value)
    if (match := PRICE_LIMIT.search(norm)) is not None:
        demands["price"] = match.group(1)
    if (match := EXCLUDED.search(norm)) is not None:
        demands["component"] = f"without {match.group(1)}"
    elif (match := REQUIRED.search(norm)) is not None:
        demands["component"] = f"with {match.group(1)}"
    if (match := re.search(r"\b(\d+-pack|set of \d+)\b", norm)) is not None:
        demands["bundle"] = match.group(1)
    if "official store" in norm:
        demands["store"] = "official"
    return demands


def follow_path(demands: Mapping[str, str], item: Mapping[str, Any], kg: KnowledgeGraph) -> list[Finding]:
    """Steps 2 and 3: the item field for each demand and whether it matches."""
    attributes = _attributes(item)
    title = f" {normalize_query(str(item.get('title') or ''))} "
    findings = []
    for dimension, wanted in demands.items():
        if dimension == "brand":
            have = str(item.get("brand") or "").lower() or None
            findings.append(_brand_finding(wanted, have, kg))
        elif dimension == "category":
            have = str(item.get("category") or "").lower() or None
            verdict = "match" if have == wanted else ("not_stated" if have is None else "conflict")
            findings.append(Finding("category", wanted, "category", have, verdict,
                                    None if verdict == "match" else "unrelated_category"))
        elif dimension == "price":
            have = item.get("price")
            findings.append(_price_finding(float(wanted), None if have is None else float(have)))
        elif dimension == "component":
            parts = attributes.get("component", "")
            present = wanted.split(" ", 1)[1] in parts
            wants_part = wanted.startswith("with ")
            verdict = "match" if present == wants_part else "conflict"
            relation = None if verdict == "match" else ("required_component_missing" if wants_part
                                                         else "excluded_component_present")
            findings.append(Finding("component", wanted, "attributes.component", parts or None, verdict, relation))
        else:
            have = attributes.get(dimension)
            if have is None and f" {wanted} " in title:
                findings.append(Finding(dimension, wanted, "title", wanted, "match"))  # the title states it
            elif have is None:
                findings.append(Finding(dimension, wanted, f"attributes.{dimension}", None, "not_stated", "not_stated"))
            else:
                verdict = "match" if have == wanted else "conflict"
                findings.append(Finding(dimension, wanted, f"attributes.{dimension}", have, verdict,
                                        None if verdict == "match" else _conflict_relation(dimension)))
    return findings


def _brand_finding(asked: str, have: str | None, kg: KnowledgeGraph) -> Finding:
    if have is None:
        return Finding("brand", asked, "brand", None, "not_stated", "not_stated")
    if have == asked:
        return Finding("brand", asked, "brand", have, "match")
    if kg.parent_brand.get(have) == asked:
        return Finding("brand", asked, "brand", have, "close", "sub_brand_of_asked", f"{have} is a sub-brand of {asked}")
    if kg.parent_brand.get(asked) == have:
        return Finding("brand", asked, "brand", have, "conflict", "parent_for_sub_brand",
                       f"{asked} is a line of {have}; the item is not from it")
    note = f"{have} competes with {asked}" if kg.parent_brand.get(have, have) in kg.competitors.get(
        kg.parent_brand.get(asked, asked), ()) else f"{have} is another brand"
    return Finding("brand", asked, "brand", have, "conflict", "competitor_brand", note)


def _price_finding(limit: float, price: float | None) -> Finding:
    if price is None:
        return Finding("price", f"<= {limit:g}", "price", None, "not_stated", "not_stated")
    have = f"{price:.2f}"
    if price <= limit:
        return Finding("price", f"<= {limit:g}", "price", have, "match")
    if price <= limit * 1.1:
        return Finding("price", f"<= {limit:g}", "price", have, "close", "near_price", "within 10% above the limit")
    return Finding("price", f"<= {limit:g}", "price", have, "conflict", "over_price", "more than 10% above the limit")


def _conflict_relation(dimension: str) -> str:
    return {
        "color": "other_color", "material": "other_material", "audience": "audience_gap", "season": "season_conflict",
        "specification": "wrong_model", "ip": "other_ip", "year": "other_year", "bundle": "bundle_mismatch",
        "store": "not_official_store",
    }.get(dimension, "other_value")


RATER = "as the rater judged"


def disagreement(verdicts: set[str], level: str) -> str | None:
    """How path-following verdicts disagree with a label's level by the rules' table, or None:
    L4 needs every demand matched, L3 no conflict (a close or unstated demand), L1 and L2 a conflict.

    >>> disagreement({"match", "not_stated"}, "L4"), disagreement({"close"}, "L3"), disagreement(set(), "L1")
    ('L4 with not stated', None, 'L1 without conflict')
    """
    if level == "L4" and verdicts - {"match"}:
        return "L4 with " + "/".join(sorted(v.replace("_", " ") for v in verdicts - {"match"}))
    if level == "L3" and "conflict" in verdicts:
        return "L3 with conflict"
    if level in ("L1", "L2") and "conflict" not in verdicts:
        return f"{level} without conflict"
    return None


def _as_rater_judged(f: Finding, verdict: str, relation: str | None, judged: str) -> Finding:
    return Finding(f.dimension, f.wanted, f.field, f.have, verdict, relation, f"{RATER}: {judged}", rater=True)


def decide(findings: list[Finding], gold: str) -> tuple[Rule, str, list[Finding]]:
    """Step 4, conditioned on ``gold`` (``L3``, ``L2:brand`` or bare ``L2``): the deciding rule,
    the full label, and the findings, where each one that disagrees with the label is restated as
    the rater's judgment (``rater=True``) so that the path leads to the label (DESIGN.md §5): for
    L4 every demand is met, for L3 a conflict is a near match (R-NEA-01), for L1 the category
    conflicts and for L2 the named dimension does (a conflict the text did not show is added)."""
    level, _, dimension = gold.partition(":")
    if level == "L4":
        return rule_for("all_demands_met"), "L4", [
            f if f.verdict == "match" else _as_rater_judged(f, "match", None, "the item meets it") for f in findings]
    if level == "L3":
        findings = [f if f.verdict != "conflict" else
                    _as_rater_judged(f, "close", "near_match", "close enough") for f in findings]
        close = next((f for f in findings if f.verdict in ("close", "not_stated") and f.relation), None)
        return rule_for(close.relation if close else "not_stated"), "L3", findings
    findings = list(findings)
    if level == "L1":
        if not any(f.verdict == "conflict" for f in findings):  # the category finding, if any, becomes the rater's
            category = next((f for f in findings if f.dimension == "category"), None)
            findings = [f for f in findings if f is not category] + [Finding(
                "category", f"({RATER})", "category", category and category.have, "conflict", "unrelated_category",
                "the item is unrelated to what the query asks for", rater=True)]
        return rule_for("unrelated_category"), "L1", findings
    conflicts = [f for f in findings if f.verdict == "conflict" and (not dimension or f.dimension == dimension)]
    if not conflicts:
        dimension = dimension or "attributes"
        stated = Finding(dimension, f"({RATER})", dimension, None, "conflict", _conflict_relation(dimension),
                         f"the item conflicts with the query's {dimension} demand", rater=True)
        findings.append(stated)
        conflicts = [stated]
    chosen = conflicts[0]
    if chosen.dimension == "category":
        return rule_for("accessory_for_main"), "L2:category", findings
    return rule_for(chosen.relation or "other_value"), f"L2:{chosen.dimension}", findings


def _describe(f: Finding) -> str:
    have = f.have if f.have is not None else "not stated"
    detail = f" ({f.note})" if f.note else ""
    return f"{f.dimension}: wanted {f.wanted}, item {have} -> {f.verdict.replace('_', ' ')}{detail}"


def synthesize(
    query: str, item: Mapping[str, Any], gold: str, kg: KnowledgeGraph, demands: Mapping[str, str] | None = None,
    *, restate: bool = True,
) -> tuple[str, str] | None:
    """(full label, reasoning) for a pair whose gold label is ``gold``; ``demands`` default to
    :func:`extract_demands` (hard cases pass the demands read against the unperturbed item).

    ``restate=False`` is for labels no person gave (behaviour, perturbation): a path whose findings
    disagree with such a label gets no reasoning (None) rather than the rater's judgment.
    """
    demands = dict(extract_demands(query, item, kg) if demands is None else demands)
    deciding_rule, label, findings = decide(follow_path(demands, item, kg), gold)
    if not restate and any(f.rater for f in findings):
        return None
    understanding = "; ".join(f"{d}={v}" for d, v in demands.items()) or "no explicit demand beyond the words"
    construction = "; ".join(f"{f.dimension} -> item {f.field}" for f in findings) or "title only"
    following = "; ".join(_describe(f) for f in findings) or "nothing to compare"
    reasoning = (
        f"1. Query understanding: {understanding}.\n2. Path construction: {construction}.\n"
        f"3. Path following: {following}.\n4. Rule: {deciding_rule.id} ({label}): {deciding_rule.principle}"
    )
    return label, reasoning


PATH_FOLLOWING = re.compile(r"3\. Path following:(?P<steps>.*?)\n4\. Rule:", re.S)
VERDICT = re.compile(r"-> (match|close|conflict|not stated)\b")


def contradiction(reasoning: str, label: str) -> str | None:
    """How the verdicts of a :func:`synthesize` path (step 3) disagree with its label's level
    (:func:`disagreement`), or None; ``bench/cot_consistency.py`` counts them in the SFT data.

    >>> contradiction("3. Path following: color: wanted red, item blue -> conflict.\\n4. Rule: R-EXA-01 (L4)", "L4")
    'L4 with conflict'
    >>> contradiction("3. Path following: color: wanted red, item red -> match.\\n4. Rule: R-EXA-01 (L4)", "L4")
    >>> contradiction("3. Path following: nothing to compare.\\n4. Rule: R-CAT-01 (L1)", "L1")
    'L1 without conflict'
    >>> contradiction("The item is a shoe, not a coffee maker.", "L1")  # no template steps
    """
    steps = PATH_FOLLOWING.search(reasoning)
    if steps is None:  # not the template's steps (an LLM's reasoning): nothing to read
        return None
    verdicts = {verdict.replace(" ", "_") for verdict in VERDICT.findall(steps.group("steps"))}
    return disagreement(verdicts, label.partition(":")[0])


PERTURBABLE = ("brand", "color", "material", "audience", "season", "specification")


def hard_case(item: Mapping[str, Any], dimension: str, replacement: str) -> tuple[dict, str]:
    """A copy of ``item`` with one demanded value replaced, and its gold label (``L2:<dimension>``).

    >>> item, label = hard_case({"item_id": "i1", "title": "Stridex Red shoes", "attributes": {"color": "red"}},
    ...                         "color", "blue")
    >>> item["item_id"], item["attributes"]["color"], item["title"], label
    ('i1~color', 'blue', 'Stridex blue shoes', 'L2:color')
    """
    changed = {**item, "item_id": f"{item['item_id']}~{dimension}", "attributes": dict(item.get("attributes") or {})}
    old = item.get("brand") if dimension == "brand" else changed["attributes"].get(dimension)
    if dimension == "brand":
        changed["brand"] = replacement
    changed["attributes"][dimension] = replacement
    if old and changed.get("title"):
        changed["title"] = re.sub(rf"\b{re.escape(str(old))}\b", replacement, changed["title"], flags=re.I)
    return changed, f"L2:{dimension}"
