"""The guided tour's JSON API beside the simulator's:

GET  /simulator/api/demo?language=fr     where the visitor is, what the organisers do next
POST /simulator/api/demo/join            {"channel": "sms"|"telegram", "language": "fr"}
POST /simulator/api/demo/steps           {"step": "draw", "language": "fr"}

A step runs only when it is the one the journey is at (a second click does nothing twice);
one at a time.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.relay import Relay
from bot.services import draw
from bot.services.deliberation import DeliberationError
from bot.services.demo import people, steps, tour
from bot.services.groups.records import GroupsError
from bot.web.app import RELAY
from flows.i18n import shipped_languages, translator

log = logging.getLogger(__name__)


@dataclass
class DemoState:
    on: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


DEMO = web.AppKey("demo", DemoState)


def _language(value: Any) -> str:
    return value if isinstance(value, str) and value in shipped_languages() else "en"


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _off() -> web.Response:
    return web.json_response(
        {"demo": False, "error": "an assembly is configured: there is no demo"}, status=404
    )


async def _state(relay: Relay, language: str, status: int = 200) -> web.Response:
    stage = await tour.stage_of(relay)
    return web.json_response(tour.described(stage, language), status=status)


async def get_state(request: web.Request) -> web.Response:
    if not request.app[DEMO].on:
        return _off()
    return await _state(request.app[RELAY], _language(request.query.get("language")))


async def post_join(request: web.Request) -> web.Response:
    demo = request.app[DEMO]
    if not demo.on:
        return _off()
    body = await _body(request)
    language = _language(body.get("language"))
    channel = body.get("channel")
    if channel not in ("sms", "telegram"):
        return web.json_response({"error": "'channel' is sms or telegram"}, status=400)
    relay = request.app[RELAY]
    async with demo.lock:
        await people.invite_visitor(relay, channel, language)
    return await _state(relay, language)


async def post_step(request: web.Request) -> web.Response:
    demo = request.app[DEMO]
    if not demo.on:
        return _off()
    body = await _body(request)
    language = _language(body.get("language"))
    relay = request.app[RELAY]
    async with demo.lock:
        stage = await tour.stage_of(relay)
        action = tour.ACTIONS.get(stage.name)
        if action is None or action[0] != body.get("step"):
            return await _state(relay, language, status=409)
        try:
            await run_step(relay, action[0], stage)
        except (draw.DrawError, draw.DrawRecordError, GroupsError, DeliberationError) as exc:
            log.warning("demo step %s failed: %s", action[0], type(exc).__name__)
            return web.json_response({"error": str(exc)}, status=500)
    return await _state(relay, language)


async def run_step(relay: Relay, step: str, stage: tour.Stage) -> None:
    """One organisers' step of the tour (bot.services.demo.steps)."""
    visitor = stage.visitor
    if step == "draw":
        await steps.run_draw(relay, visitor.participant_id)
    elif step == "call_up":
        await steps.call_up(relay, visitor.participant_id)
    elif step == "briefing":
        await steps.send_briefing(relay)
    elif step == "prompt":
        t = translator(visitor.language)
        said = [t.gettext(text) for text in tour.CONTRIBUTIONS]
        await steps.open_group_prompt(relay, visitor.participant_id, said)
    elif step == "ballot":
        await steps.open_the_ballot(relay, visitor.participant_id)
    elif step == "close":
        await steps.close_the_ballot(relay)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/simulator/api/demo", get_state)
    app.router.add_post("/simulator/api/demo/join", post_join)
    app.router.add_post("/simulator/api/demo/steps", post_step)
