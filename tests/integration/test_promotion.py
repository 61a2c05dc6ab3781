"""lore promote: the evaluation gate decides; a loser changes nothing and exits 99."""

import json

import pytest

from lore_ml.config import InputsNotReady
from lore_ml.modeling import model_version, write_manifest
from lore_ml.promotion import NOT_PROMOTED, PromoteConfig, main, promote

DS = "2026-01-31"


def fake_model(path, weights: bytes):
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "model.safetensors").write_bytes(weights)
    write_manifest(path, stage="test")
    return path


def report(lakehouse, *models_and_metrics):
    rows = [(f"{model_version(m)}/marketplace/dev", model_version(m), "marketplace", "dev", json.dumps(metrics), None)
            for m, metrics in models_and_metrics]
    df = lakehouse.spark.createDataFrame(rows, "report_id string, model_version string, dataset string, split string, "
                                               "metrics_json string, report_path string")
    lakehouse.write_partition(df, "gold.eval_reports", DS)


def test_the_gate_promotes_a_better_teacher_and_refuses_a_worse_one(lakehouse, tmp_path):
    first = fake_model(tmp_path / "first", b"a")
    better = fake_model(tmp_path / "better", b"bb")
    worse = fake_model(tmp_path / "worse", b"ccc")
    report(lakehouse, (first, {"macro_f1": 0.40, "acc2": 0.80}), (better, {"macro_f1": 0.45, "acc2": 0.80}),
           (worse, {"macro_f1": 0.50, "acc2": 0.70}))
    base = {"ds": DS, "lakehouse": {"root": lakehouse.config.root}, "champion_dir": str(tmp_path / "champion")}

    assert promote(PromoteConfig.load(overrides={**base, "model_path": str(first)})) == (True, "no champion yet")
    assert model_version(tmp_path / "champion") == model_version(first)
    won, why = promote(PromoteConfig.load(overrides={**base, "model_path": str(better)}))
    assert won and "0.450 > champion 0.400" in why
    assert model_version(tmp_path / "champion") == model_version(better)
    assert model_version(tmp_path / "champion.previous") == model_version(first)
    argv = ["--ds", DS, "--model", str(worse), "--set", f"lakehouse.root={lakehouse.config.root}",
            "--set", f"champion_dir={tmp_path / 'champion'}"]
    assert main(argv) == NOT_PROMOTED  # Acc@2 dropped by 0.10
    assert model_version(tmp_path / "champion") == model_version(better)


def test_promoting_without_an_evaluation_says_what_to_run(lakehouse, tmp_path):
    model = fake_model(tmp_path / "unevaluated", b"x")
    report(lakehouse, (fake_model(tmp_path / "other", b"y"), {"macro_f1": 0.1, "acc2": 0.5}))
    cfg = PromoteConfig.load(overrides={"ds": DS, "lakehouse": {"root": lakehouse.config.root},
                                        "model_path": str(model), "champion_dir": str(tmp_path / "champion")})
    with pytest.raises(InputsNotReady, match="run `lore eval --model"):
        promote(cfg)


def test_a_champion_without_a_report_for_the_day_is_evaluated_first(lakehouse, tmp_path, monkeypatch):
    import lore_ml.promotion as promotion

    champion = fake_model(tmp_path / "champion", b"old")
    candidate = fake_model(tmp_path / "candidate", b"new")
    report(lakehouse, (candidate, {"macro_f1": 0.45, "acc2": 0.80}))  # last week's champion has none for DS
    evaluated = []

    def fake_eval(cfg):
        evaluated.append((cfg.model_path, cfg.split, cfg.ds_str))
        return {"macro_f1": 0.40, "acc2": 0.80}, None

    monkeypatch.setattr(promotion, "run_eval", fake_eval)
    won, why = promote(PromoteConfig.load(overrides={"ds": DS, "lakehouse": {"root": lakehouse.config.root},
                                                     "model_path": str(candidate), "champion_dir": str(champion)}))
    assert evaluated == [(champion, "dev", DS)]
    assert won and "0.450 > champion 0.400" in why
