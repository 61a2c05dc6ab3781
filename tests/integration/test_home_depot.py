"""The real, human-rated Home Depot pairs load into bronze with the fixed mapping and split."""

import hashlib

from pyspark.sql import functions as F

from jobs.load_home_depot import main, read_home_depot, to_raw_drop
from lore_ml.config import LakehouseConfig
from lore_ml.lakehouse import Lakehouse
from lore_ml.labels import rating_to_label, split_for_query


def test_raw_drop_maps_ratings_and_keeps_every_pair(home_depot_dir):
    rated = read_home_depot(home_depot_dir)
    catalog, labels = to_raw_drop(rated)
    assert len(rated) == 74_067 and len(labels) == 74_067 and len(catalog) == 54_667
    assert labels["label"].value_counts().to_dict() == rated["relevance"].map(rating_to_label).value_counts().to_dict()


def test_load_into_bronze_with_the_fixed_split(home_depot_dir, tmp_path, sail_spark):
    lakehouse_root = tmp_path / "lh"
    assert main(["--raw-root", str(tmp_path / "raw"), "--set", f"lakehouse.root={lakehouse_root}"]) == 0
    lakehouse = Lakehouse(sail_spark, LakehouseConfig(root=str(lakehouse_root)))
    labels = lakehouse.read("bronze.human_labels").where(F.col("source") == "home_depot")
    assert labels.count() == 74_067
    assert lakehouse.read("quarantine.human_labels").count() == 0
    per_query = {r["query"]: r["split"] for r in labels.select("query", "split").distinct().collect()}
    assert len(per_query) == labels.select("query").distinct().count()  # no query in two splits
    for query, split in per_query.items():
        last = hashlib.sha1(query.strip().lower().encode()).hexdigest()[-1]
        assert split == ("test" if last in "01" else "dev" if last == "2" else "train")
    test_share = sum(s == "test" for s in per_query.values()) / len(per_query)
    assert 0.11 < test_share < 0.14
    # Mined into training pairs, the held-out rows keep exactly their fixed split.
    from jobs.mine_pairs import MinePairsConfig, transform_gold_rows, transform_training_pairs

    gold = labels.withColumn("ds", F.lit("2026-01-31")).select("query", "item_id", "label", "dimension", "split", "ds")
    none = sail_spark.createDataFrame([], "query_norm string, item_id string, label string, dimension string, "
                                          "source string, confidence double")
    spellings = sail_spark.createDataFrame([], "query_norm string, query string")
    tiers = sail_spark.createDataFrame([], "query_norm string, tier string")
    cfg = MinePairsConfig.load(overrides={"ds": "2026-01-31"})
    pairs = transform_training_pairs(transform_gold_rows(gold), none, spellings, tiers, cfg).toPandas()
    assert pairs.groupby("query_norm")["split"].nunique().max() == 1
    assert (pairs["split"] == pairs["query"].map(split_for_query)).all()
    # the data README's split has 60,641 train / 4,732 dev / 8,694 test rows; 13 train rows of
    # "10 inch duct" are left out for "10 in duct" (test), 13 more are repeated (query, item) pairs
    assert pairs["split"].value_counts().to_dict() == {"train": 60_615, "test": 8_694, "dev": 4_732}
