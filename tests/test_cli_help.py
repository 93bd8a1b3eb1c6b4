"""Every `concorder ... --help` shows its texts whole: rich markup must not swallow a
bracketed name such as [[ballots]] or [quotas.<category>] that an organiser has to type."""

from __future__ import annotations

import re

import pytest
import typer
from rich.errors import StyleSyntaxError
from rich.style import Style
from typer.testing import CliRunner

from bot.bootstrap import build_cli

BRACKETED = re.compile(r"\[(?:\\?\[)*[^\]\s]*\]+")


def is_markup(token: str) -> bool:
    """[bold], [/], [dim cyan]: the help's own styling, meant to disappear."""
    inner = token.strip("[]").lstrip("/")
    if not inner:
        return token == "[/]"
    try:
        Style.parse(inner)
    except StyleSyntaxError:
        return False
    return True


def commands(group, path: tuple[str, ...] = ()):
    yield path, group
    for name, sub in getattr(group, "commands", {}).items():
        yield from commands(sub, (*path, name))


def every_command():
    """(path, click command, its --help as printed 200 columns wide) for every command."""
    app = build_cli()
    runner = CliRunner()
    for path, command in commands(typer.main.get_command(app)):
        yield (
            path,
            command,
            lambda path=path: runner.invoke(app, [*path, "--help"], terminal_width=200).output,
        )


def test_bracketed_names_in_help_are_shown_as_written():
    lost = []
    for path, command, help_text in every_command():
        texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
        wanted = {
            m.group(0).replace("\\[", "[")  # as written once rich's escapes are read
            for text in texts
            for m in BRACKETED.finditer(text)
            if not is_markup(m.group(0))
        }
        if not wanted:
            continue
        shown = " ".join(re.sub(r"[│╭╮╰╯─]", " ", help_text()).split())
        lost += [f"concorder {' '.join(path)}: {w}" for w in wanted if w not in shown]
    assert lost == []


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (
            ["select", "--help"],
            "TOML file with panel_size, reserve_size, one_per_household and "
            "[quotas.<category>] tables (value = {min = 2, max = 4} or value = 0.25 as a "
            "target share). Default: the assembly file's own.",
        ),
        (
            ["ballot", "create", "--help"],
            "A TOML file of [[ballots]] (default: the assembly file's).",
        ),
    ],
)
def test_help_reads_whole_on_a_narrow_terminal_too(command, said):
    for columns in ("80", "200"):
        result = CliRunner().invoke(build_cli(), command, env={"COLUMNS": columns})
        assert result.exit_code == 0, result.output
        assert said in " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split()), result.output


def test_each_command_is_summed_up_on_one_line_in_its_groups_list():
    """A docstring's line breaks do not cut a command's row in `--help` into half-lines."""
    cut = []
    for path, group, help_text in every_command():
        subcommands = getattr(group, "commands", {})
        if not subcommands:
            continue
        lines = help_text().splitlines()
        for name, sub in subcommands.items():
            summary = " ".join((sub.short_help or sub.help or "").split("\n\n")[0].split())
            if summary and len(summary) < 150 and not any(summary in line for line in lines):
                cut.append(f"concorder {' '.join((*path, name))}")
    assert cut == []
