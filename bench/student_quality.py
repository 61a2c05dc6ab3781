"""The students against what a user would reach for, on the Home Depot **test** split.

    .venv/bin/lore distill --ds 2026-01-31 --dataset home_depot --set out_dir=artifacts/students-hd
    .venv/bin/lore distill --ds 2026-01-31 --dataset home_depot --student cross --epochs 1 \
        --set out_dir=artifacts/students-hd
    .venv/bin/python bench/student_quality.py

Reads ``train.csv.zip`` from ``--home-depot-dir`` (default: the config's ``data.home_depot_dir``)
with the fixed L1-L4 mapping and split, and evaluates on the test split:

* BM25 threshold baseline (``rank_bm25`` over normalised titles) and MiniLM zero-shot cosine:
  three cut points on the score, fitted on dev for macro-F1;
* the plain sentence-transformers ``CrossEncoder`` two ways a user would fine-tune it on the train
  split, each with the same epochs, batch size, learning rate and length as our cross-encoder's
  manifest: as a classifier (4 labels, ``CrossEntropyLoss`` on the hard labels; shown with argmax
  labels and with a decision rule fitted on dev exactly as our students fit theirs,
  :func:`lore_ml.decision.fit_decision`) and as a regressor of the rating (1 label,
  ``BinaryCrossEntropyLoss`` on (rating − 1) / 2, the library's default for one label; shown with
  the fixed rating → label mapping and with cut points fitted on dev). Cached under ``--work-dir``
  by their settings;
* our students, loaded from their artefacts, scored and labelled exactly as the shim would, and
  a blend of their p(L1..L4) whose weight and decision rule are fitted on dev (does the
  representation student add anything the cross-encoder lacks?).

Spearman is between each model's score (expected gain, or the raw score) and the raw rating.
Prints one table and writes it as JSON next to the cache.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def load_splits(folder: Path):
    """HD pairs with normalised query, title, level index, raw rating and fixed split."""
    from jobs.load_home_depot import read_home_depot
    from lore_ml.labels import LABELS, rating_to_label, split_for_query
    from lore_ml.text import normalize_query

    rated = read_home_depot(folder)
    rated["query_norm"] = rated["search_term"].map(normalize_query)
    rated["level"] = rated["relevance"].map(lambda r: LABELS.index(rating_to_label(r)))
    rated["split"] = rated["search_term"].map(split_for_query)
    rated["item_id"] = "hd-" + rated["product_uid"].astype(str)
    return {name: rated[rated["split"] == name].reset_index(drop=True) for name in ("train", "dev", "test")}


def metrics_row(frame, levels_pred: np.ndarray, score: np.ndarray) -> dict:
    from scipy.stats import spearmanr

    from lore_ml.decision import macro_f1

    gold = frame["level"].to_numpy()
    return {"acc2": float(np.mean((gold >= 2) == (levels_pred >= 2))), "acc4": float(np.mean(gold == levels_pred)),
            "macro_f1": macro_f1(gold, levels_pred), "spearman": float(spearmanr(score, frame["relevance"])[0])}


def thresholded(dev, test, dev_score, test_score) -> dict:
    from lore_ml.decision import fit_score_thresholds, labels_from_thresholds

    cuts = fit_score_thresholds(dev_score, dev["level"].to_numpy())
    return metrics_row(test, labels_from_thresholds(test_score, cuts), test_score)


def bm25_scores(frame, index) -> np.ndarray:
    bm25, row_of = index
    scores = np.zeros(len(frame))
    for query, rows in frame.groupby("query_norm").groups.items():
        all_scores = bm25.get_scores(query.split())
        scores[list(rows)] = all_scores[[row_of[i] for i in frame.loc[rows, "item_id"]]]
    return scores


def plain_targets(frame, head: str) -> list:
    """What the plain model learns per pair: the level index (``classes``) or the rating scaled to [0, 1]."""
    return frame["level"].tolist() if head == "classes" else ((frame["relevance"] - 1) / 2).tolist()


def plain_cross_encoder(splits, settings: dict, work_dir: Path, head: str):
    """The sentence-transformers CrossEncoder a user would fine-tune on the train split: a 4-way
    classifier on the hard labels (``classes``) or a one-score regressor of the rating (``rating``)."""
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss, CrossEntropyLoss

    from lore_ml import cross_encoder

    key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    path = work_dir / f"plain-cross-encoder-{head}-{key}"
    if (path / "config.json").is_file():
        print(f"plain CrossEncoder ({head}): reusing {path}", file=sys.stderr)
        return CrossEncoder(str(path), device="cpu", max_length=settings["max_length"])
    num_labels = cross_encoder.LEVELS if head == "classes" else 1
    model = cross_encoder.new_cross_encoder(settings["max_length"], seed=0, num_labels=num_labels)
    loss = CrossEntropyLoss(model) if head == "classes" else BinaryCrossEntropyLoss(model)
    train = splits["train"]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lore-plain-cross-") as trainer_dir:
        cross_encoder.fit(model, train["query_norm"], train["product_title"], plain_targets(train, head), loss,
                          epochs=settings["epochs"], batch_size=settings["batch_size"],
                          learning_rate=settings["learning_rate"], seed=0, work_dir=Path(trainer_dir))
    print(f"plain CrossEncoder ({head}) trained in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    model.save(str(path))
    return model


def plain_rows(splits, settings: dict, work_dir: Path) -> dict:
    """Test metrics of both plain CrossEncoders, as a user would label with them and under dev-fitted rules."""
    from lore_ml import cross_encoder
    from lore_ml.decision import decide, fit_decision
    from lore_ml.evaluation import scores_from
    from lore_ml.labels import LABELS, rating_to_label

    dev, test = splits["dev"], splits["test"]
    classifier = plain_cross_encoder(splits, settings, work_dir, "classes")
    p_dev, p_test = (cross_encoder.predict_probabilities(classifier, f["query_norm"], f["product_title"])
                     for f in (dev, test))
    decision = fit_decision(p_dev, dev["level"].to_numpy())
    regressor = plain_cross_encoder(splits, settings, work_dir, "rating")
    dev_score, test_score = (regressor.predict(list(zip(f["query_norm"], f["product_title"])), batch_size=64)
                             for f in (dev, test))
    mapped = np.array([LABELS.index(rating_to_label(1 + 2 * score)) for score in test_score])
    return {"plain CrossEncoder, 4 classes (argmax)": metrics_row(test, p_test.argmax(axis=1), scores_from(p_test)),
            f"plain CrossEncoder, 4 classes + dev-fitted {decision['rule']}": metrics_row(
                test, decide(p_test, decision), scores_from(p_test)),
            "plain CrossEncoder, rating regression (fixed mapping)": metrics_row(test, mapped, test_score),
            "plain CrossEncoder, rating regression + dev thresholds": thresholded(dev, test, dev_score, test_score)}


def blend(p_of_student: dict, weight: float) -> np.ndarray:
    """``weight`` · the cross-encoder's p(L1..L4) + (1 − ``weight``) · the representation student's."""
    return weight * p_of_student["cross-encoder"] + (1 - weight) * p_of_student["representation"]


def blend_of_students(dev_p: dict, dev_levels: np.ndarray) -> tuple[float, dict]:
    """The mix weight of :func:`blend` and its decision rule, whichever pair gives the best dev
    macro-F1 (weights 0.1..0.9)."""
    from lore_ml.decision import fit_decision

    weights = np.round(np.arange(0.1, 0.95, 0.1), 1)
    fits = {weight: fit_decision(blend(dev_p, weight), dev_levels) for weight in weights}
    best = max(fits, key=lambda weight: fits[weight]["dev_macro_f1"])
    return float(best), fits[best]


def student_probabilities(student, frame) -> np.ndarray:
    """p(L1..L4) per row, one ``score`` call per query as the shim makes them."""
    p = np.zeros((len(frame), 4))
    for query, rows in frame.groupby("query_norm").groups.items():
        items = [{"item_id": i, "title": t} for i, t in zip(frame.loc[rows, "item_id"], frame.loc[rows, "product_title"])]
        p[list(rows)] = student.score(query, items)
    return p


def main() -> None:
    from lore_ml.config import DataConfig

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home-depot-dir", type=Path, default=DataConfig().home_depot_dir)
    parser.add_argument("--cross", type=Path, default=Path("artifacts/students-hd/current-cross"))
    parser.add_argument("--representation", type=Path, default=Path("artifacts/students-hd/current"))
    parser.add_argument("--work-dir", type=Path, default=Path("artifacts/bench"))
    args = parser.parse_args()

    from rank_bm25 import BM25Okapi

    from lore_ml.cross_encoder import CrossEncoderStudent
    from lore_ml.decision import decide
    from lore_ml.evaluation import scores_from
    from lore_ml.students import RepresentationStudent, encode
    from lore_ml.text import normalize_query

    splits = load_splits(args.home_depot_dir)
    dev, test = splits["dev"], splits["test"]
    rows = {}
    print(f"Home Depot: train {len(splits['train']):,}, dev {len(dev):,}, test {len(test):,} pairs", file=sys.stderr)

    titles = {i: t for frame in splits.values() for i, t in zip(frame["item_id"], frame["product_title"])}
    ids = sorted(titles)
    index = (BM25Okapi([normalize_query(titles[i]).split() for i in ids]), {i: row for row, i in enumerate(ids)})
    rows["BM25 + dev thresholds"] = thresholded(dev, test, bm25_scores(dev, index), bm25_scores(test, index))

    def cosine(frame):
        q, t = encode(list(frame["query_norm"])), encode(list(frame["product_title"]))
        return (q * t).sum(axis=1)

    rows["MiniLM zero-shot cosine + dev thresholds"] = thresholded(dev, test, cosine(dev), cosine(test))

    ours = json.loads((args.cross / "manifest.json").read_text())
    settings = {k: ours["settings"][k] for k in ("epochs", "batch_size", "learning_rate", "max_length")}
    rows.update(plain_rows(splits, settings, args.work_dir))

    students = {"cross-encoder": CrossEncoderStudent(args.cross),
                "representation": RepresentationStudent(args.representation)}
    dev_p, test_p = {}, {}
    for name, student in students.items():
        dev_p[name], test_p[name] = (student_probabilities(student, frame) for frame in (dev, test))
        rows[f"ours: {name} ({student.model_version}, {student.decision['rule']})"] = metrics_row(
            test, student.decide(test_p[name]), scores_from(test_p[name]))
    weight, decision = blend_of_students(dev_p, dev["level"].to_numpy())
    p = blend(test_p, weight)
    rows[f"ours: {weight:.1f} cross + {1 - weight:.1f} representation ({decision['rule']})"] = metrics_row(
        test, decide(p, decision), scores_from(p))

    print(f"\nHome Depot test split (n={len(test):,}); {settings}")
    width = max(map(len, rows)) + 2
    print(f"{'model':<{width}}{'Acc@2':>7}{'Acc@4':>7}{'macro-F1':>10}{'Spearman':>10}")
    for name, m in rows.items():
        print(f"{name:<{width}}{m['acc2']:>7.3f}{m['acc4']:>7.3f}{m['macro_f1']:>10.3f}{m['spearman']:>10.3f}")
    args.work_dir.mkdir(parents=True, exist_ok=True)
    (args.work_dir / "student_quality.json").write_text(json.dumps({"n": len(test), "settings": settings,
                                                                      "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
