"""How the conversation joins the service."""

from __future__ import annotations

from aiohttp import web

from bot.relay import Relay
from bot.services.deliberation.types import ReportSink


def register(relay: Relay) -> None:
    raise NotImplementedError


def install(app: web.Application, relay: Relay, dispatch: bool) -> None:
    raise NotImplementedError


def report_to(relay: Relay, sink: ReportSink) -> None:
    raise NotImplementedError
