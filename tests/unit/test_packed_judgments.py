"""The packed judgment the cache stores: one definition (pack_many) for the fill and the write-back
worker, read back by unpack with the rounded p and their score."""

import numpy as np
import pytest

from lore_ml.online_store import pack, pack_many, score, unpack


def test_packing_many_is_packing_each_and_unpacks_to_the_rounded_p_and_their_score():
    rng = np.random.default_rng(7)
    p = np.vstack([rng.dirichlet([1, 1, 1, 1], 500), np.eye(4), np.zeros((1, 4))])
    labels = [["L1", "L2:brand", "L3", "L4", "L2:été"][i % 5] for i in range(len(p))]
    versions = [f"teacher@{i % 3}" for i in range(len(p))]
    packed = pack_many(labels, p, versions)
    assert packed == [pack(label, row, version) for label, row, version in zip(labels, p.tolist(), versions)]
    for text, label, row, version in zip(packed, labels, p, versions):
        judgment = unpack(text)
        assert (judgment.label, judgment.model_version) == (label, version)
        assert judgment.p == pytest.approx(np.round(row, 4).tolist(), abs=1e-12)
        assert judgment.score == pytest.approx(score(judgment.p), abs=1e-4 + 1e-12)


@pytest.mark.parametrize("labels, p, says", [
    (["L1"], [[float("nan"), 0, 0, 1]], "p must be finite"),
    (["L1"], [[0, 0, 1]], r"1 rows of 4 probabilities, got shape \(1, 3\)"),
    (["L1", "L2"], [[0, 0, 0, 1]], r"2 rows of 4 probabilities, got shape \(1, 4\)"),
])
def test_a_p_that_is_not_four_finite_numbers_per_judgment_is_refused(labels, p, says):
    with pytest.raises(ValueError, match=says):
        pack_many(labels, p, ["m"] * len(labels))


def test_packing_nothing_is_empty():
    assert pack_many([], [], []) == []


def test_an_hset_built_from_encoded_fields_is_the_one_hiredis_packs():
    """The fill sends HSETs whose fields its Spark workers encoded; Redis must read exactly what
    hiredis would have sent: byte lengths of UTF-8, empty and CR/LF-holding texts included."""
    import random

    import hiredis

    from lore_ml.online_store import hash_fields, hset_command

    rng = random.Random(7)
    alphabet = "ab1-_:é€😀 \r\n\"[],"
    for size in (1, 2, 37, 300):
        items = {"".join(rng.choices(alphabet, k=rng.randint(0, 12))) + str(i): "".join(rng.choices(alphabet, k=rng.randint(0, 90)))
                 for i in range(size)}
        key = f"lore:v:20260131-ab:q:{size:016x}é"
        flat = [text for pair in items.items() for text in pair]
        assert hset_command(key, hash_fields(items)) == hiredis.pack_command(("HSET", key, *flat))
