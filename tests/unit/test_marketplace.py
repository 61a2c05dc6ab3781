"""The generator's truth rules, worked out by hand, and its click model."""

import numpy as np
import pytest

from lore_ml.marketplace import Item, Marketplace, MarketplaceSpec, MarketplaceTruth, Query, World, true_relevance
from lore_ml.text import normalize_query


@pytest.fixture(scope="module")
def world():
    return World.load()


def item(leaf="running shoes", brand="Stridex", price=100.0, components=(), **attrs):
    attributes = {"category": leaf, "brand": brand, **attrs}
    return Item("it1", leaf, brand, attributes, frozenset(components), price, "s", "shop", "other", "t", "i.png")


def query(leaf="running shoes", price_max=None, with_component=None, without_component=None, **demands):
    return Query("q", "test", leaf, {"category": leaf, **demands}, price_max, with_component, without_component)


@pytest.mark.parametrize(
    "q, i, expected",
    [
        (query(brand="Stridex"), item(), ("L4", None)),
        (query(brand="Stridex"), item(brand="Aeroline"), ("L2", "brand")),  # competitor
        (query(brand="Stridex"), item(brand="Stridex Pro"), ("L3", "brand")),  # sub-brand of asked parent
        (query(brand="Stridex Pro"), item(brand="Stridex"), ("L2", "brand")),  # parent for a sub-brand
        (query(), item(leaf="shoe insoles"), ("L2", "category")),  # accessory for the main item
        (query(leaf="shoe insoles"), item(), ("L2", "category")),  # main item for an accessory
        (query(), item(leaf="walking shoes"), ("L3", "category")),  # near category
        (query(), item(leaf="sofa", brand="Oakridge"), ("L1", "category")),
        (query(audience="men"), item(audience="unisex"), ("L3", "audience")),
        (query(audience="men"), item(audience="women"), ("L2", "audience")),
        (query(season="winter"), item(season="summer"), ("L2", "season")),
        (query(leaf="jacket", material="leather"), item(leaf="jacket", material="faux leather"), ("L2", "material")),
        (query(material="leather"), item(material="suede"), ("L3", "material")),
        (query(color="blue"), item(color="navy"), ("L3", "color")),
        (query(color="blue"), item(color="red"), ("L2", "color")),
        (query(price_max=100.0), item(price=109.0), ("L3", "price")),
        (query(price_max=100.0), item(price=111.0), ("L2", "price")),
        (query(leaf="headphones", without_component="mic"), item(leaf="headphones", components=["mic"]),
         ("L2", "component")),
        (query(leaf="headphones", with_component="mic"), item(leaf="headphones"), ("L2", "component")),
        (query(bundle="3-pack"), item(bundle="single"), ("L2", "bundle")),
        (query(specification="size 9"), item(specification="size 10"), ("L3", "specification")),
        (query(specification="size 9"), item(specification="size 11"), ("L2", "specification")),
        (query(leaf="smartphone", brand="Voltara", specification="X2"),
         item(leaf="smartphone", brand="Voltara", specification="X1"), ("L2", "specification")),  # wrong model
        (query(color="red"), item(), ("L3", "color")),  # the item does not say: no explicit conflict
        (query(brand="Stridex", color="red"), item(brand="Aeroline", color="blue"), ("L2", "brand")),  # priority
    ],
)
def test_true_relevance(world, q, i, expected):
    assert true_relevance(q, i, world) == expected


def test_same_seed_same_marketplace():
    a, b = Marketplace(MarketplaceSpec(rows=3000, seed=3)), Marketplace(MarketplaceSpec(rows=3000, seed=3))
    assert [q.text for q in a.queries] == [q.text for q in b.queries]
    assert [i.title for i in a.items] == [i.title for i in b.items]
    assert np.array_equal(a.pools[0], b.pools[0])


def test_scale_knob_grows_the_world():
    small, large = MarketplaceSpec(rows=1_000), MarketplaceSpec(rows=10_000_000)
    assert small.n_items < large.n_items and small.n_queries < large.n_queries
    assert large.requests == 1_000_000


def test_click_model_is_position_biased_and_driven_by_relevance():
    market = Marketplace(MarketplaceSpec(rows=20_000, seed=5))
    imp = market.impressions(np.arange(20_000), np.random.default_rng(0))
    ctr_by_position = [imp["clicked"][imp["position"] == p].mean() for p in (1, 5, 10)]
    assert ctr_by_position[0] > ctr_by_position[1] > ctr_by_position[2]
    ctr_by_label = [imp["clicked"][imp["label"] == code].mean() for code in range(4)]
    assert ctr_by_label == sorted(ctr_by_label)
    assert not (imp["purchased"] & ~imp["carted"]).any() and not (imp["carted"] & ~imp["clicked"]).any()


def test_query_traffic_is_zipf_like():
    weights = Marketplace(MarketplaceSpec(rows=60_000)).query_weights()
    assert weights[0] > 10 * weights[100] and np.isclose(weights.sum(), 1.0)


def test_term_demand_share_counts_the_generated_queries_with_the_term(tmp_path):
    (tmp_path / "_manifest.json").write_text('{"spec": {"rows": 3000, "seed": 3, "ds": "2026-01-31"}}')
    truth = MarketplaceTruth(tmp_path)
    with_mens = [q for q in truth.market.queries if "mens" in normalize_query(q.text).split()]
    assert with_mens  # the generator writes audience=men as "mens"
    men = sum(q.demands.get("audience") == "men" for q in with_mens)
    assert truth.term_demand_share("mens", "audience", "men") == (len(with_mens), men / len(with_mens))
    assert men / len(with_mens) > 0.5  # "mens" -> audience=men holds
    assert truth.term_demand_share("no-such-term", "audience", "men") == (0, 0.0)
    assert truth.edge_demand_share("term:mens", "value:audience=men") == truth.term_demand_share("mens", "audience", "men")
    leaf = with_mens[0].leaf
    assert truth.edge_demand_share("term:mens", f"category:{leaf}") == truth.term_demand_share("mens", "category", leaf)
