"""Importing this module lets each feature add its commands to the `concorder` app."""
import bot.cli_broadcast  # noqa: F401
import bot.cli_draw  # noqa: F401
import bot.cli_outbox  # noqa: F401
import bot.cli_recruitment  # noqa: F401
import bot.cli_schedule  # noqa: F401
from bot import cli_simulate  # noqa: F401
