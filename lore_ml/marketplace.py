"""The synthetic marketplace: a deterministic world of items, queries, traffic and labels.

It exists for scale tests and the demo; quality numbers come from real human labels. Every
query is built from structured *demands* (dimension → value), every item from attributes over
the same dimensions, and :func:`true_relevance` — a small rule engine — decides the true L1-L4
label and the deciding dimension of each (query, item) pair. Search logs follow a
position-biased click model driven by that truth, so weak labels mined from them can be
checked against it.

Usage: ``python -m jobs.generate_marketplace --rows 1000000 --ds 2026-01-31``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Iterator

import numpy as np
import yaml

from lore_ml.text import normalize_query

# Deciding-dimension priority: when several demands conflict, the first one names the L2.
PRIORITY = (
    "brand", "specification", "ip", "audience", "component", "bundle", "material", "price",
    "season", "style", "function", "special", "year", "store", "color", "attributes",
)
SIZE_LIKE = ("S", "M", "L", "XL")
OTHER_SHOPS = (
    "Bargain Bay", "Urban Outlet", "Daily Deals Mart", "Corner Goods", "Prime Picks",
    "Value Depot", "Metro Market", "Sunrise Traders", "Blue Door Store", "Peak Supply",
)
# Position-biased click model: P(click) = examination(position) * attractiveness(label).
EXAMINATION_EXPONENT = 0.8
ATTRACTIVENESS = {"L1": 0.02, "L2": 0.10, "L3": 0.35, "L4": 0.65}
CART_GIVEN_CLICK = {"L1": 0.01, "L2": 0.04, "L3": 0.15, "L4": 0.30}
PURCHASE_GIVEN_CART = 0.5
RANKER_GAIN = {"L1": 0.0, "L2": 1.0, "L3": 2.2, "L4": 3.0}  # the search engine's noisy ordering


@dataclass(frozen=True)
class Leaf:
    name: str
    industry: str
    synonyms: tuple[str, ...]
    close: tuple[str, ...]
    accessory_of: tuple[str, ...]
    price: tuple[float, float]
    dims: dict[str, tuple[str, ...]]
    components: tuple[str, ...]
    bundle_heavy: bool


@dataclass
class World:
    """The vocabularies of ``lore_ml/data/marketplace_world.yaml``."""

    leaves: dict[str, Leaf]
    brands: dict[str, list[str]]  # industry -> parent brands
    sub_brands: dict[str, str]  # sub-brand -> parent brand
    audiences: list[str]
    seasons: list[str]
    colors: dict[str, tuple[int, int, int]]
    color_family: dict[str, int]
    fake_material: dict[str, str]  # genuine -> fake
    similar_materials: set[frozenset[str]]
    bundles: list[str]

    @classmethod
    def load(cls, path: Path | None = None) -> "World":
        text = (
            Path(path).read_text()
            if path
            else resources.files("lore_ml").joinpath("data/marketplace_world.yaml").read_text()
        )
        spec = yaml.safe_load(text)
        leaves, brands, sub_brands = {}, {}, {}
        accessory_of: dict[str, list[str]] = defaultdict(list)
        for industry, ind in spec["industries"].items():
            brands[industry] = list(ind["brands"])
            for parent, subs in ind["brands"].items():
                sub_brands.update({sub: parent for sub in subs})
            for name, leaf in ind["leaves"].items():
                for main in leaf.get("accessory_of", []):
                    accessory_of[name].append(main)
                for acc in leaf.get("accessories", []):
                    accessory_of[acc].append(name)
                leaves[name] = Leaf(
                    name=name,
                    industry=industry,
                    synonyms=tuple(leaf.get("synonyms", [])),
                    close=tuple(leaf.get("close", [])),
                    accessory_of=(),
                    price=tuple(leaf["price"]),
                    dims={k: tuple(str(v) for v in vs) for k, vs in leaf.get("dims", {}).items()},
                    components=tuple(leaf.get("components", [])),
                    bundle_heavy=bool(leaf.get("bundle_heavy", False)),
                )
        leaves = {
            name: dataclasses.replace(leaf, accessory_of=tuple(sorted(set(accessory_of[name]))))
            for name, leaf in leaves.items()
        }
        return cls(
            leaves=leaves,
            brands=brands,
            sub_brands=sub_brands,
            audiences=list(spec["audiences"]),
            seasons=list(spec["seasons"]),
            colors={k: tuple(v) for k, v in spec["colors"].items()},
            color_family={c: i for i, fam in enumerate(spec["color_families"]) for c in fam},
            fake_material=dict(spec["materials_fake"]),
            similar_materials={frozenset(pair) for pair in spec["materials_similar"]},
            bundles=list(spec["bundles"]),
        )

    def parent_brand(self, brand: str) -> str:
        return self.sub_brands.get(brand, brand)


@dataclass(frozen=True)
class Item:
    item_id: str
    leaf: str
    brand: str
    attributes: dict[str, str]  # demand dimension -> value (category, brand, color, ...)
    components: frozenset[str]
    price: float
    shop_id: str
    shop_name: str
    shop_type: str
    title: str
    image_path: str

    def catalog_record(self, world: World) -> dict:
        leaf = world.leaves[self.leaf]
        attrs = dict(self.attributes)
        attrs["component"] = ", ".join(sorted(self.components)) if self.components else "none"
        return {
            "item_id": self.item_id,
            "title": self.title,
            "shop_id": self.shop_id,
            "shop_name": self.shop_name,
            "shop_type": self.shop_type,
            "brand": self.brand,
            "category": self.leaf,
            "category_path": f"{leaf.industry} > {self.leaf}",
            "price": self.price,
            "attributes": attrs,
            "image_path": self.image_path,
        }


@dataclass(frozen=True)
class Query:
    text: str
    pattern: str
    leaf: str
    demands: dict[str, str]  # dimension -> demanded value (category and brand included)
    price_max: float | None = None
    with_component: str | None = None
    without_component: str | None = None

    def record(self) -> dict:
        return dataclasses.asdict(self)


def true_relevance(query: Query, item: Item, world: World) -> tuple[str, str | None]:
    """The rule engine behind the generator's truth: (label, deciding dimension or None).

    L1 for a wrong category; L2 when an explicit demand conflicts (the first conflicting
    dimension in :data:`PRIORITY` decides, an accessory for a main item or the reverse is
    ``category``); L3 when the item is close (near category, sub-brand of the asked brand,
    near size or colour, similar material, unisex, all-season, price within +10%, or a demand
    the item does not state); otherwise L4.
    """
    close: list[str] = []
    q_leaf, i_leaf = world.leaves[query.leaf], world.leaves[item.leaf]
    if item.leaf != query.leaf:
        if query.leaf in i_leaf.accessory_of or item.leaf in q_leaf.accessory_of:
            return "L2", "category"
        if item.leaf not in q_leaf.close:
            return "L1", "category"
        close.append("category")
    conflicts: list[str] = []
    for dim in PRIORITY:
        verdict = _judge_dimension(dim, query, item, world)
        if verdict == "L2":
            conflicts.append(dim)
        elif verdict == "L3":
            close.append(dim)
    if conflicts:
        return "L2", conflicts[0]
    if close:
        return "L3", close[0]
    return "L4", None


def _judge_dimension(dim: str, query: Query, item: Item, world: World) -> str | None:
    """'L2' for a conflict, 'L3' for close, None for a match or no demand."""
    if dim == "price":
        if query.price_max is None or item.price <= query.price_max:
            return None
        return "L3" if item.price <= query.price_max * 1.1 else "L2"
    if dim == "component":
        if query.without_component and query.without_component in item.components:
            return "L2"
        if query.with_component and query.with_component not in item.components:
            return "L2"
        return None
    wanted = query.demands.get(dim)
    if wanted is None:
        return None
    have = item.attributes.get(dim)
    if have is None:
        return "L3"  # the item does not say: no explicit conflict
    if have == wanted:
        return None
    if dim == "brand":
        return "L3" if world.parent_brand(have) == wanted else "L2"
    if dim == "audience":
        return "L3" if have == "unisex" and wanted in ("men", "women") else "L2"
    if dim == "season":
        return "L3" if have == "all-season" else "L2"
    if dim == "color":
        family = world.color_family.get(have)
        return "L3" if family is not None and family == world.color_family.get(wanted) else "L2"
    if dim == "material":
        if world.fake_material.get(wanted) == have:
            return "L2"
        return "L3" if frozenset((have, wanted)) in world.similar_materials else "L2"
    if dim == "specification" and _near_size(have, wanted, world.leaves[item.leaf]):
        return "L3"
    return "L2"


def _near_size(have: str, wanted: str, leaf: Leaf) -> bool:
    values = leaf.dims.get("specification", ())
    size_like = all(v in SIZE_LIKE or v.startswith("size ") for v in values)
    if not size_like or have not in values or wanted not in values:
        return False
    return abs(values.index(have) - values.index(wanted)) == 1


@dataclass
class MarketplaceSpec:
    """How big a marketplace to generate; everything scales from ``rows`` (log impressions)."""

    rows: int
    days: int = 7
    seed: int = 7
    impressions_per_request: int = 10
    pool_size: int = 24
    zipf_exponent: float = 1.05
    label_pairs: int | None = None
    bad_row_rate: float = 0.0005

    @property
    def requests(self) -> int:
        return max(1, self.rows // self.impressions_per_request)

    @property
    def n_items(self) -> int:
        return int(min(200_000, max(600, self.rows // 40)))

    @property
    def n_queries(self) -> int:
        return int(min(150_000, max(300, self.rows // 60)))

    @property
    def n_users(self) -> int:
        return int(max(200, self.requests // 15))

    @property
    def n_label_pairs(self) -> int:
        return self.label_pairs if self.label_pairs is not None else int(min(40_000, max(400, self.rows // 50)))


class Marketplace:
    """Builds items, queries, candidate pools and their true labels for one spec."""

    def __init__(self, spec: MarketplaceSpec, world: World | None = None):
        self.spec = spec
        self.world = world or World.load()
        self.rng = random.Random(spec.seed)
        self.np_rng = np.random.default_rng(spec.seed)

    # -- catalog -------------------------------------------------------------------------
    @cached_property
    def shops(self) -> list[tuple[str, str, str]]:
        """(shop_id, shop_name, shop_type): one official store per parent brand + generic shops."""
        official = [
            (f"shop-{i:03d}", f"{brand} Official Store", "official")
            for i, brand in enumerate(b for brands in self.world.brands.values() for b in brands)
        ]
        others = [(f"shop-{100 + i:03d}", name, "other") for i, name in enumerate(OTHER_SHOPS)]
        return official + others

    @cached_property
    def items(self) -> list[Item]:
        leaves = sorted(self.world.leaves)
        official = {shop[1].removesuffix(" Official Store"): shop for shop in self.shops if shop[2] == "official"}
        others = [s for s in self.shops if s[2] == "other"]
        return [
            self._make_item(i, self.world.leaves[leaves[i % len(leaves)]], official, others)
            for i in range(self.spec.n_items)
        ]

    def _make_item(self, index: int, leaf: Leaf, official: dict, others: list) -> Item:
        rng, world = self.rng, self.world
        parent = rng.choice(world.brands[leaf.industry])
        subs = [s for s, p in world.sub_brands.items() if p == parent]
        brand = rng.choice(subs) if subs and rng.random() < 0.3 else parent
        attrs = {"category": leaf.name, "brand": brand}
        for dim, values in leaf.dims.items():
            if rng.random() < 0.9:
                attrs[dim] = rng.choice(values)
        if leaf.industry == "apparel":
            attrs["audience"] = rng.choice(world.audiences)
            attrs["season"] = rng.choice(world.seasons)
        elif leaf.industry == "toys":
            attrs["audience"] = "kids"
        if leaf.industry in ("apparel", "electronics", "home", "sports") and rng.random() < 0.85:
            attrs["color"] = rng.choice(sorted(world.colors))
        bundle = "single"
        if leaf.bundle_heavy or rng.random() < 0.08:
            bundle = rng.choice(world.bundles)
        attrs["bundle"] = bundle
        components = frozenset(c for c in leaf.components if rng.random() < 0.6)
        low, high = leaf.price
        price = math.exp(rng.uniform(math.log(low), math.log(high)))
        price *= {"single": 1.0, "2-pack": 1.8, "3-pack": 2.5, "set of 4": 3.2}[bundle]
        shop = official[parent] if rng.random() < 0.4 else rng.choice(others)
        attrs["store"] = shop[2]
        item_id = f"it{index:07d}"
        color = attrs.get("color", "grey")
        return Item(
            item_id=item_id,
            leaf=leaf.name,
            brand=brand,
            attributes=attrs,
            components=components,
            price=round(price, 2),
            shop_id=shop[0],
            shop_name=shop[1],
            shop_type=shop[2],
            title=self._title(leaf, attrs, components),
            image_path=f"images/{leaf.name.replace(' ', '_')}_{color}.png",
        )

    def _title(self, leaf: Leaf, attrs: dict[str, str], components: frozenset[str]) -> str:
        rng = self.rng
        words = [attrs["brand"]]
        for dim in ("year", "style", "material", "color", "ip", "function", "special"):
            if dim in attrs and rng.random() < 0.75:
                words.append(attrs[dim])
        words.append(leaf.name)
        for dim in ("specification", "attributes"):
            if dim in attrs and rng.random() < 0.8:
                words.append(attrs[dim])
        if attrs.get("audience") and rng.random() < 0.7:
            words.append({"kids": "for kids", "unisex": "unisex"}.get(attrs["audience"], f"for {attrs['audience']}"))
        if components and rng.random() < 0.6:
            words.append("with " + " and ".join(sorted(components)))
        if attrs["bundle"] != "single":
            words.append(attrs["bundle"])
        return " ".join(words)

    @cached_property
    def items_by_leaf(self) -> dict[str, np.ndarray]:
        by_leaf: dict[str, list[int]] = defaultdict(list)
        for i, item in enumerate(self.items):
            by_leaf[item.leaf].append(i)
        return {leaf: np.array(ix) for leaf, ix in by_leaf.items()}

    # -- queries -------------------------------------------------------------------------
    @cached_property
    def queries(self) -> list[Query]:
        """Distinct queries, in traffic rank order (index 0 is the most frequent)."""
        seen: dict[str, Query] = {}
        attempts = 0
        while len(seen) < self.spec.n_queries and attempts < self.spec.n_queries * 20:
            attempts += 1
            query = self._make_query(self.items[self.rng.randrange(len(self.items))])
            seen.setdefault(query.text, query)
        queries = list(seen.values())
        self.rng.shuffle(queries)
        return queries

    def _make_query(self, anchor: Item) -> Query:
        rng, leaf = self.rng, self.world.leaves[anchor.leaf]
        attrs = anchor.attributes
        patterns = ["brand_category", "category_attrs", "price", "category_attrs"]
        if "specification" in attrs and leaf.industry == "electronics":
            patterns.append("model")
        for dim, name in (("audience", "audience"), ("season", "season"), ("ip", "ip"), ("year", "year")):
            if dim in attrs and attrs[dim] not in ("unisex", "all-season"):
                patterns.append(name)
        if attrs["bundle"] != "single":
            patterns.append("bundle")
        if leaf.components:
            patterns.append("negation")
        if anchor.shop_type == "official":
            patterns.append("store")
        pattern = rng.choice(patterns)
        noun = rng.choice(leaf.synonyms) if leaf.synonyms and rng.random() < 0.25 else leaf.name
        demands = {"category": leaf.name}
        price_max = with_c = without_c = None
        brand = attrs["brand"] if rng.random() < 0.5 else self.world.parent_brand(attrs["brand"])
        if pattern == "brand_category":
            demands["brand"] = brand
            words = [brand.lower(), noun]
        elif pattern == "category_attrs":
            options = [d for d in ("color", "material", "style", "function", "special", "attributes") if d in attrs]
            chosen = rng.sample(options, k=min(len(options), rng.choice((1, 2))))
            words = [attrs[d] for d in chosen] + [noun]
            demands.update({d: attrs[d] for d in chosen})
        elif pattern == "model":
            demands.update(brand=brand, specification=attrs["specification"])
            words = [brand.lower(), attrs["specification"].lower()] + ([noun] if rng.random() < 0.5 else [])
        elif pattern == "price":
            price_max = float(max(5, round(anchor.price * rng.uniform(0.9, 1.6), -1)))
            words = [noun, rng.choice(("under", "below", "less than")), f"{price_max:g}"]
        elif pattern in ("audience", "season", "ip", "year"):
            demands[pattern] = attrs[pattern]
            prefix = {"men": "mens", "women": "womens"}.get(attrs[pattern], attrs[pattern])
            words = [prefix, noun]
        elif pattern == "bundle":
            demands["bundle"] = attrs["bundle"]
            words = [noun, attrs["bundle"]]
        elif pattern == "negation":
            component = rng.choice(leaf.components)
            if component in anchor.components:
                with_c, words = component, [noun, "with", component]
            else:
                without_c, words = component, [noun, rng.choice(("without", "no")), component]
        else:  # store
            parent = self.world.parent_brand(attrs["brand"])
            demands.update(brand=parent, store="official")
            words = [parent.lower(), "official store", noun]
        text = " ".join(words).lower()
        text = self._surface_noise(text)
        return Query(text, pattern, leaf.name, demands, price_max, with_c, without_c)

    def _surface_noise(self, text: str) -> str:
        """Misspellings, stray case/spaces and Unicode variants, as real shoppers type."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.04:
            words = text.split()
            long_words = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
            if long_words:
                i = rng.choice(long_words)
                w, j = words[i], rng.randrange(1, len(words[i]) - 1)
                words[i] = w[:j] + w[j + 1 :] if rng.random() < 0.5 else w[:j] + w[j + 1] + w[j] + w[j + 2 :]
                text = " ".join(words)
        elif roll < 0.06:
            text = text.title()
        elif roll < 0.07:
            text = "  " + text.replace(" ", "  ") + " "
        elif roll < 0.08:
            text = text.replace("-", "\u2011").replace(" ", "\u00a0", 1)  # non-breaking hyphen/space
        return text

    # -- candidate pools and truth ------------------------------------------------------
    @cached_property
    def pools(self) -> tuple[np.ndarray, np.ndarray, list[list[str | None]]]:
        """Per query: candidate item indices [Q, P], label codes [Q, P] (0..3 = L1..L4), dims."""
        n_q, size = len(self.queries), self.spec.pool_size
        items = np.zeros((n_q, size), dtype=np.int64)
        labels = np.zeros((n_q, size), dtype=np.int8)
        dims: list[list[str | None]] = []
        n_items = len(self.items)
        for qi, query in enumerate(self.queries):
            leaf = self.world.leaves[query.leaf]
            same = self.items_by_leaf[query.leaf]
            near = [self.items_by_leaf[name] for name in leaf.close + leaf.accessory_of if name in self.items_by_leaf]
            accessories = [
                self.items_by_leaf[name]
                for name, other in self.world.leaves.items()
                if query.leaf in other.accessory_of and name in self.items_by_leaf
            ]
            picks = list(self.np_rng.choice(same, size=min(len(same), size * 2 // 3), replace=False))
            for group in near + accessories:
                picks.extend(self.np_rng.choice(group, size=min(len(group), 3), replace=False))
            while len(picks) < size:
                picks.append(int(self.np_rng.integers(n_items)))
            chosen = self._dedupe(picks, size, n_items)
            items[qi] = chosen
            row_dims = []
            for pi, item_index in enumerate(chosen):
                label, dim = true_relevance(query, self.items[item_index], self.world)
                labels[qi, pi] = int(label[1]) - 1
                row_dims.append(dim)
            dims.append(row_dims)
        return items, labels, dims

    def _dedupe(self, picks: list[int], size: int, n_items: int) -> list[int]:
        out, seen = [], set()
        for p in picks:
            if int(p) not in seen:
                seen.add(int(p))
                out.append(int(p))
        while len(out) < size:
            p = int(self.np_rng.integers(n_items))
            if p not in seen:
                seen.add(p)
                out.append(p)
        return out[:size]

    def query_weights(self) -> np.ndarray:
        ranks = np.arange(1, len(self.queries) + 1, dtype=np.float64)
        weights = ranks ** -self.spec.zipf_exponent
        return weights / weights.sum()

    # -- traffic ---------------------------------------------------------------------------
    def impressions(self, request_ids: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Impressions of the given requests: query index, item index, position, true label, events."""
        pool_items, pool_labels, _ = self.pools
        k = min(self.spec.impressions_per_request, self.spec.pool_size)
        n = len(request_ids)
        q = rng.choice(len(self.queries), size=n, p=self.query_weights())
        gains = np.array([RANKER_GAIN[f"L{i + 1}"] for i in range(4)])
        scores = gains[pool_labels[q]] + rng.normal(0.0, 1.2, size=(n, self.spec.pool_size))
        order = np.argsort(-scores, axis=1)[:, :k]  # slot indices by rank
        items = np.take_along_axis(pool_items[q], order, axis=1)
        labels = np.take_along_axis(pool_labels[q], order, axis=1)
        positions = np.broadcast_to(np.arange(1, k + 1), (n, k))
        attract = np.array([ATTRACTIVENESS[f"L{i + 1}"] for i in range(4)])[labels]
        cart_p = np.array([CART_GIVEN_CLICK[f"L{i + 1}"] for i in range(4)])[labels]
        examined = positions.astype(np.float64) ** -EXAMINATION_EXPONENT
        clicked = rng.random((n, k)) < examined * attract
        carted = clicked & (rng.random((n, k)) < cart_p)
        purchased = carted & (rng.random((n, k)) < PURCHASE_GIVEN_CART)
        return {
            "request": np.repeat(request_ids, k),
            "query": np.repeat(q, k),
            "item": items.ravel(),
            "position": positions.ravel().astype(np.int32),
            "label": labels.ravel(),
            "clicked": clicked.ravel(),
            "carted": carted.ravel(),
            "purchased": purchased.ravel(),
        }

    def label_sample(self) -> Iterator[tuple[Query, Item, str, str | None]]:
        """Human-label sample: pool pairs, drawn so that every label level is represented."""
        pool_items, pool_labels, pool_dims = self.pools
        n = self.spec.n_label_pairs
        weights = self.query_weights() ** 0.5  # labelled queries lean to the head, not only
        weights /= weights.sum()
        qs = self.np_rng.choice(len(self.queries), size=n, p=weights)
        slots = self.np_rng.integers(self.spec.pool_size, size=n)
        seen = set()
        for qi, slot in zip(qs.tolist(), slots.tolist()):
            if (qi, slot) in seen:
                continue
            seen.add((qi, slot))
            label = f"L{int(pool_labels[qi, slot]) + 1}"
            yield self.queries[qi], self.items[int(pool_items[qi, slot])], label, pool_dims[qi][slot]


class MarketplaceTruth:
    """The generator's true label of any (query text, item id) of a generated drop.

    Rebuilds the marketplace from the drop's ``_manifest.json`` (generation is deterministic),
    so weak labels and models can be checked against the truth, never only against each other.
    """

    def __init__(self, raw_root: Path):
        manifest = json.loads((Path(raw_root) / "_manifest.json").read_text())
        spec = {k: v for k, v in manifest["spec"].items() if k != "ds"}
        self.market = Marketplace(MarketplaceSpec(**spec))
        self.queries = {q.text: q for q in self.market.queries}
        self.items = {item.item_id: item for item in self.market.items}

    def label(self, query: str, item_id: str) -> tuple[str, str | None] | None:
        """(label, deciding dimension), or None when the query or item is not the generator's."""
        q, item = self.queries.get(query), self.items.get(item_id)
        if q is None or item is None:
            return None
        return true_relevance(q, item, self.market.world)

    def term_demand_share(self, term: str, dimension: str, value: str) -> tuple[int, float]:
        """(the generator's queries with ``term`` as a word of their normalised text, the share of
        them that demand ``dimension`` = ``value``): how far a mined term edge (term → category or
        attribute value) holds. Values compare lower-cased, as the KG stores them."""
        queries = self._queries_by_term.get(term, [])
        if not queries:
            return 0, 0.0
        demanding = sum(str(q.demands.get(dimension, "")).lower() == value for q in queries)
        return len(queries), demanding / len(queries)

    def edge_demand_share(self, src: str, dst: str) -> tuple[int, float]:
        """:meth:`term_demand_share` of a mined KG edge given by its node ids: ``term:<t>`` →
        ``category:<c>`` or ``value:<dimension>=<v>``."""
        kind, target = dst.split(":", 1)
        dimension, value = ("category", target) if kind == "category" else target.split("=", 1)
        return self.term_demand_share(src.split(":", 1)[1], dimension, value)

    @cached_property
    def _queries_by_term(self) -> dict[str, list[Query]]:
        by_term: dict[str, list[Query]] = defaultdict(list)
        for query in self.market.queries:
            for term in set(normalize_query(query.text).split()):
                by_term[term].append(query)
        return by_term

    def agreement(self, pairs) -> list[dict]:
        """Per source of mined pairs (a pandas DataFrame with query, item_id, label, source):
        rows with a known truth, binary accuracy (L3/L4 vs L1/L2) and exact-label accuracy."""
        per_source: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for query, item_id, label, source in zip(pairs["query"], pairs["item_id"], pairs["label"], pairs["source"]):
            truth = self.label(query, item_id)
            if truth is None:
                continue
            counts = per_source[source]
            counts[0] += 1
            counts[1] += (label in ("L3", "L4")) == (truth[0] in ("L3", "L4"))
            counts[2] += label == truth[0]
        return [
            {"source": source, "pairs": n, "binary_accuracy": binary / n, "label_accuracy": exact / n}
            for source, (n, binary, exact) in sorted(per_source.items())
        ]
