"""The web application's own pieces: its keys, the failure middleware, health, metrics.

`bot.bootstrap.create_app` assembles the application from these and each feature's routes.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.delivery import queue as outbox_queue
from bot.delivery.health import ChannelHealth
from bot.metrics import REGISTRY
from bot.relay import Relay
from bot.settings import Settings
from store.models import utcnow

log = logging.getLogger(__name__)

RELAY = web.AppKey("relay", Relay)
SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", object)
SESSIONS = web.AppKey("sessions", object)


class PrivateAccessLogger(AbstractAccessLogger):
    """Access log lines without query strings or client addresses: those can carry phone
    numbers (the simulator's ?address=) and logs must hold no personal data."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %.3fs", request.method, request.path, response.status, time)


@web.middleware
async def hide_failures(request: web.Request, handler) -> web.StreamResponse:
    """The safety net for a handler that fails: a plain 500 without details, and a log line
    with the route and the exception's type only (its message may quote a phone number or a
    message, as a database's unique violation does)."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise  # a response, not a failure
    except Exception as exc:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "(no route)"
        where = _our_innermost_frame(exc)
        log.error("%s %s failed: %s%s", request.method, route, type(exc).__name__, where)
        return web.Response(status=500, text="Internal Server Error\n")


def _our_innermost_frame(exc: BaseException) -> str:
    """' at bot/service.py:123': the last line of this project the failure passed through."""
    root = Path(__file__).resolve().parents[2]
    ours = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename.startswith(str(root)) and "site-packages" not in frame.filename
    ]
    if not ours:
        return ""
    return f" at {Path(ours[-1].filename).relative_to(root)}:{ours[-1].lineno}"


async def healthz(request: web.Request) -> web.Response:
    """ "ok", or "degraded" while a channel keeps failing, with each channel's queue.

    Always HTTP 200 while the process answers: a provider outage is no reason for a load
    balancer to take this instance out, which would refuse the webhooks that bring people's
    messages in (those are stored and answered once the channel is back).
    """
    now = utcnow()
    health = request.app[RELAY].health.channels()
    body: dict[str, object] = {"status": "ok"}
    try:
        async with request.app[SESSIONS]() as session:
            queues = await outbox_queue.waiting(session, now)
    except Exception:
        log.exception("healthz could not read the outbox")
        queues, body["database"] = {}, "unreachable"
    channels = {}
    for name in sorted(set(health) | set(queues)):
        seen = health.get(name) or ChannelHealth(name)
        queue = queues.get(name) or outbox_queue.Waiting(name, 0, 0, None)
        channels[name] = {
            "status": "degraded" if seen.degraded else "ok",
            **seen.as_json(),
            **queue.as_json(now),
        }
    if "database" in body or any(c["status"] == "degraded" for c in channels.values()):
        body["status"] = "degraded"
    body["channels"] = channels
    return web.json_response(body)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
