"""The README's commands and settings match the code. Every job and ``lore`` command in its shell
blocks parses (its flags and ``--set`` keys exist, its values validate): each goes through its
real entry point up to the point where the config is built, and stops there, so nothing runs.
The shared settings table names real fields."""

import re
from pathlib import Path

import pytest

from lore_ml import cli
from lore_ml.config import LoreConfig

README = Path(__file__).resolve().parents[2] / "README.md"
COMMAND = re.compile(r"^(?:\.venv/bin/)?(?:lore (?P<lore>\S+)|(?:\.venv/bin/)?python -m (?P<module>jobs\.\w+))(?P<args>.*)$")


def readme_commands() -> list[str]:
    """The ``lore …`` and ``python -m jobs.…`` lines of the README's bash blocks, continuation
    lines joined and comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if COMMAND.match(line):
                commands.append(line)
    return commands


class Parsed(Exception):
    def __init__(self, config):
        self.config = config


@pytest.fixture
def parse_only(monkeypatch):
    """``from_cli`` builds the config, then stops the entry point with it."""
    build = LoreConfig.from_cli.__func__

    def stop_after_building(cls, argv=None, prog=None):
        raise Parsed(build(cls, argv, prog))

    monkeypatch.setattr(LoreConfig, "from_cli", classmethod(stop_after_building))


def test_the_readme_has_commands_to_check():
    commands = readme_commands()
    assert len(commands) >= 20 and any("--set" in command for command in commands)


def only_missing_artefacts(usage_error: str) -> bool:
    """Whether every problem of a usage error is a path that this checkout does not have yet (the
    README's earlier steps make it): ``  field: … (got 'artifacts/students/current')``."""
    problems = [line for line in usage_error.splitlines() if line.startswith("  ")]
    named = [re.search(r"\(got '([^']+)'\)$", line) for line in problems]
    return bool(problems) and all(path and not Path(path[1]).exists() for path in named)


@pytest.mark.parametrize("command", readme_commands())
def test_a_readme_command_parses(command, parse_only, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # relative artefact paths name nothing here
    match = COMMAND.match(command)
    argv = match["args"].replace("$d", "2026-01-31").split()
    if match["lore"]:
        argv = [match["lore"], *argv]
    else:  # a job module: the lore command that runs it
        argv = [next(name for name, (target, _) in cli.COMMANDS.items() if target == match["module"]), *argv]
    try:
        cli.main(argv)
    except Parsed:
        return
    except SystemExit as exc:
        usage_error = capsys.readouterr().err
        assert exc.code == 2 and only_missing_artefacts(usage_error), usage_error
        return
    pytest.fail(f"{command!r} ran past building its config")


def test_a_wrong_setting_in_the_readme_would_fail(parse_only, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        cli.main(["fill-cache", "--ds", "2026-01-31", "--set", "batch_querys=10"])
    assert not only_missing_artefacts(capsys.readouterr().err)


def test_the_readme_settings_table_names_real_fields():
    """The shared settings table (``| `spark.engine` | … |``) names fields every job config has."""
    from lore_ml.config import JobConfig

    table = README.read_text().split("| field | default | meaning |", 1)[1].split("\n\n", 1)[0]
    names = [name for row in table.splitlines()[2:] for name in re.findall(r"`([a-z_]+\.[a-z_]+)`", row.split("|")[1])]
    assert len(names) >= 10
    for name in names:
        section, field = name.split(".")
        assert field in JobConfig.model_fields[section].annotation.model_fields, name
