"""The cross-encoder student: a few training steps on literal pairs, save, load, score."""

import json

import numpy as np
import pytest

from lore_ml.config import InputsNotReady

torch = pytest.importorskip("torch")

QUERIES = ["cordless drill", "cordless drill", "brass lamp", "brass lamp", "wool scarf", "wool scarf"] * 3
TEXTS = ["20V cordless drill | Dewalt", "garden hose 50 ft", "brass table lamp", "steel ladder",
         "red wool scarf", "leather boots"] * 3
LEVELS = np.array([3, 0, 3, 0, 3, 1] * 3)


def test_a_few_steps_log_a_loss_change_the_weights_and_the_saved_student_scores(tmp_path):
    from lore_ml import cross_encoder
    from lore_ml.decision import decide

    model = cross_encoder.new_cross_encoder(max_length=32, seed=0)
    before = {name: tensor.clone() for name, tensor in model.model.state_dict().items()}
    targets = np.eye(4)[LEVELS] * 0.9 + 0.025
    history = cross_encoder.fit(model, QUERIES, TEXTS, targets.tolist(), cross_encoder.distillation_loss(model, 0.5),
                                epochs=2, batch_size=6, learning_rate=5e-5, seed=0, work_dir=tmp_path / "work")
    assert history and all(np.isfinite(entry["loss"]) and entry["loss"] > 0 for entry in history)
    after = model.model.state_dict()
    assert any(not torch.equal(before[name], after[name]) for name in before)

    model.save(str(tmp_path / "student"))
    decision = {"rule": "thresholds", "cuts": [0.5, 1.5, 2.5]}
    (tmp_path / "student" / "manifest.json").write_text(json.dumps(
        {"version": "cross-student@test", "max_length": 32, "decision": decision}))
    student = cross_encoder.CrossEncoderStudent(tmp_path / "student")
    items = [{"item_id": "a", "title": "20V cordless drill", "brand": "Dewalt"}, {"item_id": "b", "title": "lamp"}]
    p = student.score("cordless drill", items)
    assert p.shape == (2, 4) and np.allclose(p.sum(axis=1), 1, atol=1e-5)
    raw = cross_encoder.predict_probabilities(model, ["cordless drill"] * 2, ["20V cordless drill | Dewalt", "lamp"])
    assert np.allclose(p, raw, atol=1e-5)
    assert student.decide(p).tolist() == decide(raw, decision).tolist()
    assert student.model_version == "cross-student@test"


def test_the_transfer_set_is_labelled_by_the_teacher_students_p(tmp_path):
    import pandas as pd

    from lore_ml import cross_encoder
    from lore_ml.distill import DistillConfig, transfer_set

    teacher = cross_encoder.new_cross_encoder(max_length=32, seed=0)
    teacher.save(str(tmp_path / "teacher"))
    (tmp_path / "teacher" / "manifest.json").write_text(json.dumps(
        {"version": "cross-student@teacher", "max_length": 32, "decision": None}))
    pairs = pd.DataFrame({"query_norm": ["cordless drill", "drill battery"], "item_id": ["m-a", "m-c"],
                          "split": ["train", "train"]})
    items = {"m-a": {"title": "20v cordless drill", "brand": "Dewalt"}, "m-c": {"title": "cordless drill battery"}}
    cfg = DistillConfig.load(overrides={"ds": "2026-01-31", "student": "cross",
                                        "cross": {"transfer_teacher": str(tmp_path / "teacher")}})
    rows, summary = transfer_set(cfg, pairs, items)
    queries, texts = ["cordless drill", "drill battery"], ["cordless drill battery", "20v cordless drill | Dewalt"]
    assert rows["query_norm"].tolist() == queries and rows["item_id"].tolist() == ["m-c", "m-a"]
    assert (rows["split"] == "train").all() and rows["rating"].isna().all()
    assert np.allclose(np.stack(rows["p"]), cross_encoder.predict_probabilities(teacher, queries, texts), atol=1e-5)
    assert summary == {"teacher": "cross-student@teacher", "pairs": 2}

    cfg = DistillConfig.load(overrides={"ds": "2026-01-31", "cross": {"transfer_teacher": str(tmp_path)}})
    with pytest.raises(InputsNotReady, match="cross.transfer_teacher: .* is not a cross student directory"):
        transfer_set(cfg, pairs, items)


def test_the_students_device_setting_is_validated_and_training_off_cuda0_is_refused(tmp_path):
    from types import SimpleNamespace

    from pydantic import ValidationError

    from jobs.embed_vectors import EmbedVectorsConfig
    from lore_ml import cross_encoder
    from lore_ml.config import torch_device
    from lore_ml.distill import DistillConfig

    assert DistillConfig.load(overrides={"ds": "2026-01-31"}).device == "auto"
    assert torch_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert DistillConfig.load(overrides={"ds": "2026-01-31", "device": "cuda:1"}).device == "cuda:1"
    for config in (DistillConfig, EmbedVectorsConfig):
        with pytest.raises(ValidationError, match="device"):
            config.load(overrides={"ds": "2026-01-31", "device": "gpu"})
    on_second_gpu = SimpleNamespace(device=torch.device("cuda", 1))
    with pytest.raises(ValueError, match="CUDA_VISIBLE_DEVICES=1"):
        cross_encoder.fit(on_second_gpu, QUERIES, TEXTS, [], None, epochs=1, batch_size=2, learning_rate=1e-5,
                          seed=0, work_dir=tmp_path)
