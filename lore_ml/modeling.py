"""Model factory: the teacher is any Hugging Face causal-LM directory.

No model hub is reachable here, so the default local teacher is a small Qwen2-architecture
model built from a config, with a byte-level BPE tokenizer trained on the lakehouse's own text
(titles, queries, rules). It is saved as a normal HF model directory; every later stage (SFT,
RL, judging, serving) loads it — or a real checkpoint such as Qwen2.5-7B — by path with
:func:`load_causal_lm`.

    lore init-teacher --out artifacts/teacher-base   # (CLI wiring lands with the training issue)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from lore_ml.config import InputsNotReady

SPECIAL_TOKENS = ["<|endoftext|>", "<|pad|>", "<think>", "</think>", "<label>", "</label>"]
ANSWER_TAGS = frozenset(SPECIAL_TOKENS[2:])
"""The answer tags are single tokens, so a label-first answer's label sits in the first tokens."""


@dataclass(frozen=True)
class TinyQwenSpec:
    """Size of the default local teacher (a few million parameters: trains on a laptop CPU)."""

    vocab_size: int = 4096
    hidden_size: int = 128
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate_size: int = 384
    max_positions: int = 4096


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4096):
    """A byte-level BPE tokenizer trained on ``texts``, as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return keep_answer_tags(PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>",
                                                    pad_token="<|pad|>"))


def keep_answer_tags(tokenizer):
    """Make ``<think>``/``<label>`` tags ordinary added tokens: one id each, but kept by decoding.

    TRL's GRPO trainer decodes completions with ``skip_special_tokens=True``; tags registered as
    special tokens would vanish before the reward functions see them (every reward 0). Models
    saved before this fix are repaired on load; ids do not change.
    """
    import json

    from tokenizers import Tokenizer

    state = json.loads(tokenizer._tokenizer.to_str())
    special = [a for a in state["added_tokens"] if a["content"] in ANSWER_TAGS and a["special"]]
    if special:
        for added in special:
            added["special"] = False
        tokenizer._tokenizer = Tokenizer.from_str(json.dumps(state))
        tokenizer.extra_special_tokens = [t for t in tokenizer.extra_special_tokens if t not in ANSWER_TAGS]
    return tokenizer


def build_tiny_qwen2(tokenizer, spec: TinyQwenSpec = TinyQwenSpec(), seed: int = 0):
    """A randomly initialised Qwen2ForCausalLM sized by ``spec`` for ``tokenizer``."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.kv_heads,
        intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_positions,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    return Qwen2ForCausalLM(config)


def init_teacher(texts: Iterable[str], out_dir: str | Path, spec: TinyQwenSpec = TinyQwenSpec(), seed: int = 0) -> Path:
    """Train the tokenizer, build the tiny model and save both as an HF model directory."""
    out = Path(out_dir)
    tokenizer = train_tokenizer(texts, spec.vocab_size)
    model = build_tiny_qwen2(tokenizer, spec, seed)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    write_manifest(out, stage="init", spec=spec.__dict__, seed=seed)
    return out


class NotAModelDirectory(InputsNotReady, FileNotFoundError):
    """A model path with no model in it yet (an upstream training stage not run, or a typo)."""


def require_model_directory(path: Path) -> None:
    if not (path / "config.json").is_file():
        raise NotAModelDirectory(f"{path} is not a Hugging Face model directory (no config.json)")


def load_causal_lm(path: str | Path, dtype: str = "auto"):
    """(model, tokenizer) from an HF causal-LM directory: the tiny default or a real checkpoint."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    require_model_directory(path)
    tokenizer = keep_answer_tags(AutoTokenizer.from_pretrained(path))
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def model_version(path: str | Path) -> str:
    """A stable id of a model directory: ``<name>@<digest>``, what judgments and reports cite.

    The digest covers config.json and the weight files' names and sizes (hashing the bytes of
    a 15 GB checkpoint would cost minutes); retraining changes the weights' file sizes only by
    chance, so training stages also write the ``version`` of ``lore_manifest.json``, which wins.
    """
    import hashlib
    import json

    path = Path(path)
    manifest = path / "lore_manifest.json"
    if manifest.is_file() and (version := json.loads(manifest.read_text()).get("version")):
        return str(version)
    require_model_directory(path)
    digest = hashlib.sha1((path / "config.json").read_bytes())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return f"{path.name}@{digest.hexdigest()[:10]}"


def write_manifest(path: str | Path, **fields) -> str:
    """Write ``lore_manifest.json`` with a content version of the saved weights; return it."""
    import hashlib
    import json

    path = Path(path)
    digest = hashlib.sha1()
    for weights in sorted(path.glob("*.safetensors")):
        with weights.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    version = f"{path.name}@{digest.hexdigest()[:10]}"
    (path / "lore_manifest.json").write_text(json.dumps({"version": version, **fields}, indent=2, default=str))
    return version


def read_manifest(path: str | Path) -> dict:
    """``lore_manifest.json`` of a model directory ({} for a checkpoint that has none)."""
    import json

    manifest = Path(path) / "lore_manifest.json"
    return json.loads(manifest.read_text()) if manifest.is_file() else {}


def save_decision(path: str | Path, answer_format: str, decision: dict) -> str:
    """Store the decision rule for ``answer_format`` (label_first | think_first) in the manifest.

    The rule changes the labels the model gives, so the model's version changes with it
    (``<weights version>+d<digest of the rules>``): judgments and reports made under the old rule
    are not reused for the new one. Returns the new version.
    """
    import hashlib
    import json

    path = Path(path)
    manifest = read_manifest(path)
    weights = manifest.get("weights_version") or manifest.get("version") or model_version(path)
    decisions = {**manifest.get("decision", {}), answer_format: decision}
    digest = hashlib.sha1(json.dumps(decisions, sort_keys=True).encode()).hexdigest()[:6]
    manifest.update(weights_version=weights, decision=decisions, version=f"{weights}+d{digest}")
    (path / "lore_manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return manifest["version"]
