"""Help texts read whole: rich markup must not eat a TOML table name written in brackets."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from bot.bootstrap import build_cli


def shown(output: str) -> str:
    """The help as one line of words: the box drawing and the wrapping taken out."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


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
def test_help_shows_bracketed_table_names(command, said):
    for columns in ("80", "200"):
        result = CliRunner().invoke(build_cli(), command, env={"COLUMNS": columns})
        assert result.exit_code == 0, result.output
        assert said in shown(result.output), result.output
