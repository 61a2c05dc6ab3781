"""The default teacher is a normal HF model directory that the generic loader reads back."""

import pytest

from lore_ml.modeling import NotAModelDirectory, TinyQwenSpec, init_teacher, load_causal_lm
from lore_ml.prompts import build_prompt, format_answer

SPEC = TinyQwenSpec(vocab_size=600, hidden_size=32, layers=1, heads=2, kv_heads=1, intermediate_size=64)


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    texts = [build_prompt(f"stridex running shoes {i}", {"title": f"Stridex shoe {i}", "price": i}) +
             format_answer("L4", "all met R-EXA-01") for i in range(50)]
    return init_teacher(texts, tmp_path_factory.mktemp("teacher") / "base", SPEC)


def test_saved_teacher_loads_by_path_and_generates(teacher_dir):
    import torch

    model, tokenizer = load_causal_lm(teacher_dir)
    assert type(model).__name__ == "Qwen2ForCausalLM" and model.config.hidden_size == 32
    for tag in ("<think>", "</think>", "<label>", "</label>"):
        assert len(tokenizer(tag, add_special_tokens=False).input_ids) == 1, tag
    ids = tokenizer("Query: stridex running shoes", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] == ids.input_ids.shape[1] + 5


def test_a_directory_without_a_model_is_refused(tmp_path):
    with pytest.raises(NotAModelDirectory, match="no config.json"):
        load_causal_lm(tmp_path)


def test_answer_tags_survive_decoding_without_special_tokens(teacher_dir):
    """TRL's GRPO decodes completions with skip_special_tokens=True: the tags must remain for the rewards."""
    _, tokenizer = load_causal_lm(teacher_dir)
    answer = format_answer("L2:brand", "other brand R-BRD-01")
    ids = tokenizer(answer, add_special_tokens=False).input_ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == answer
    assert len(tokenizer("<think>", add_special_tokens=False).input_ids) == 1
