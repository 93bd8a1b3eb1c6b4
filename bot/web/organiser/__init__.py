"""The organiser page: a read-only dashboard at /organiser behind a sign-in (a token from
`concorder organiser token`, or a one-time link sent to an organiser's chat).

`install(app, relay)` adds its routes; `signin` holds the sign-in and sign-out handlers,
`figures` reads what the page shows, `pages` renders it in the organiser's language."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from bot.relay import Relay
from bot.web.organiser import dashboard, signin

STATIC = Path(__file__).parent / "static"


def install(app: web.Application, relay: Relay) -> None:
    app[signin.ATTEMPTS] = signin.Attempts()
    app.router.add_get("/organiser", dashboard.page)
    app.router.add_get("/organiser/signin", signin.link_page)
    app.router.add_post("/organiser/signin", signin.sign_in)
    app.router.add_post("/organiser/signout", signin.sign_out)
    app.router.add_static("/organiser/static", STATIC, append_version=False)
