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
