"""Tower vectors: the newest item text, head/mid queries only, reuse of unchanged vectors, on both runtimes."""

import hashlib

import numpy as np
from pyspark.testing import assertDataFrameEqual

from jobs.embed_vectors import EmbedVectorsConfig, transform_item_texts, transform_query_texts, transform_vectors

CATALOG = "item_id string, title string, brand string, category string, ds string"
SENTINEL = [9.0] * 384  # a vector no encoder writes: seeing it proves the row was copied


def text_hash(text):
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def test_item_texts_come_from_each_items_newest_snapshot(spark):
    catalog = spark.createDataFrame([
        ("a", "Old drill", "Dewalt", "drills", "2026-01-01"),
        ("a", "20V drill", "Dewalt", "drills", "2026-01-31"),  # newer snapshot wins
        ("b", "Brass lamp", None, None, "2016-01-18"),  # only in an old drop: still an item
    ], CATALOG)
    expected = spark.createDataFrame([("a", "20V drill | Dewalt | drills", text_hash("20V drill | Dewalt | drills")),
                                      ("b", "Brass lamp", text_hash("Brass lamp"))], "key string, text string, text_hash string")
    assertDataFrameEqual(transform_item_texts(catalog), expected)


def test_query_texts_are_the_head_and_mid_queries(spark):
    tiers = spark.createDataFrame([("red shoes", "head"), ("blue hat", "mid"), ("green sock", "tail")],
                                  "query_norm string, tier string")
    cfg = EmbedVectorsConfig.load(overrides={"ds": "2026-01-31"})
    expected = spark.createDataFrame([(q, q, text_hash(q)) for q in ("red shoes", "blue hat")],
                                     "key string, text string, text_hash string")
    assertDataFrameEqual(transform_query_texts(tiers, cfg), expected)


def test_unchanged_texts_reuse_their_vector_and_the_rest_are_encoded(spark):
    from lore_ml.students import encode

    texts = spark.createDataFrame([("a", "20V drill", text_hash("20V drill")), ("b", "brass lamp", text_hash("brass lamp")),
                                   ("c", "wool scarf", text_hash("wool scarf"))], "key string, text string, text_hash string")
    previous = spark.createDataFrame([
        ("a", text_hash("20V drill"), "m@1", SENTINEL),  # same text, same model: copied
        ("b", text_hash("old lamp"), "m@1", SENTINEL),  # text changed: encoded again
        ("c", text_hash("wool scarf"), "m@0", SENTINEL),  # other encoder: encoded again
    ], "key string, text_hash string, model string, vector array<float>")
    rows = {r["key"]: r for r in transform_vectors(texts, previous, "m@1", batch_size=8).collect()}
    assert sorted(rows) == ["a", "b", "c"] and {r["model"] for r in rows.values()} == {"m@1"}
    assert rows["a"]["vector"] == SENTINEL
    fresh = encode(["brass lamp", "wool scarf"])
    for key, text, vector in zip("bc", ("brass lamp", "wool scarf"), fresh):
        assert rows[key]["text_hash"] == text_hash(text)
        assert np.allclose(rows[key]["vector"], vector, atol=1e-5)


def test_without_a_previous_partition_everything_is_encoded(spark):
    texts = spark.createDataFrame([("a", "20V drill", text_hash("20V drill"))], "key string, text string, text_hash string")
    (row,) = transform_vectors(texts, None, "m@1", batch_size=8).collect()
    assert row["key"] == "a" and len(row["vector"]) == 384 and abs(np.linalg.norm(row["vector"]) - 1) < 1e-4


def test_minilm_asked_for_by_several_threads_at_once_loads_once_and_leaves_weight_tying_on():
    # Sail runs the encoding batches in threads of one process. Four concurrent loads used to leave
    # transformers' tie_weights patched out, so a model built afterwards (the demo's tiny teacher)
    # kept an lm_head of its own: 5 of 5 tries on 2026-12-05.
    import threading

    from transformers import PreTrainedModel

    from lore_ml import students
    from lore_ml.modeling import TinyQwenSpec, build_tiny_qwen2, train_tokenizer

    tie_weights = PreTrainedModel.tie_weights
    students._load_encoder.cache_clear()
    start, loaded = threading.Barrier(4), []
    threads = [threading.Thread(target=lambda: (start.wait(), loaded.append(students._encoder("cpu"))))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loaded) == 4 and all(model is loaded[0] for model in loaded)
    assert PreTrainedModel.tie_weights is tie_weights
    model = build_tiny_qwen2(train_tokenizer(["red shoes", "blue socks"] * 20, 300), TinyQwenSpec())
    assert model.lm_head.weight is model.model.embed_tokens.weight
