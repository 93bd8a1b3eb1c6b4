"""The `concorder` command: `bot.bootstrap.build_cli` puts its commands together."""

from bot.cli.common import main

__all__ = ["main"]
