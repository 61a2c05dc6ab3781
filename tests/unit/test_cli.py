import importlib

import pytest

from lore_ml.cli import COMMANDS, main


def test_help_and_unknown_commands(capsys):
    assert main(["--help"]) == 0
    assert "init-teacher" in capsys.readouterr().out
    assert main(["frobnicate"]) == 2
    assert main([]) == 2


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_points_at_a_callable(name):
    module_name, _, function = COMMANDS[name][0].partition(":")
    assert callable(getattr(importlib.import_module(module_name), function or "main"))


def test_a_job_whose_inputs_are_not_ready_ends_with_one_line_and_a_bug_with_its_traceback(capsys):
    from lore_ml.cli import run_entry_point
    from lore_ml.config import InputsNotReady

    def not_ready(argv):
        raise InputsNotReady("no silver.query_tiers for 2026-01-30: run python -m jobs.stratify --ds 2026-01-30 first")

    def broken(argv):
        raise RuntimeError("a bug")

    assert run_entry_point(not_ready, []) == 1
    assert capsys.readouterr().err == (
        "error: no silver.query_tiers for 2026-01-30: run python -m jobs.stratify --ds 2026-01-30 first\n")
    with pytest.raises(RuntimeError, match="a bug"):
        run_entry_point(broken, [])


@pytest.mark.parametrize("argv, setting", [
    (["judge-head"], "  judge.device = auto: transformers: the torch device"),
    (["train", "sft"], "  deepspeed = null: DeepSpeed JSON config"),
    (["stratify"], "  window_days = 28: Days of search logs read"),
    (["serve"], "  teacher_api_key = null: Set through LORE_TEACHER_API_KEY."),
])
def test_help_lists_the_commands_own_settings_with_their_defaults(capsys, argv, setting):
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    _, heading, settings = capsys.readouterr().out.partition("settings of this command")
    assert done.value.code == 0 and heading
    assert any(line.startswith(setting) for line in settings.splitlines())
    assert "spark.engine =" not in settings  # the shared sections are documented once, in configs/local.yaml


def test_train_without_a_stage_shows_its_stages(capsys):
    assert main(["train", "--help"]) == 0
    assert "  sft  Supervised fine-tuning" in capsys.readouterr().out
    assert main(["train"]) == 2 and "usage: lore train {sft,rl}" in capsys.readouterr().err
