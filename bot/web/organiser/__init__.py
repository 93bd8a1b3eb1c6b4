"""The organiser page: a read-only dashboard at /organiser behind a sign-in (a token from
`concorder organiser token`, or a one-time link sent to an organiser's chat).

`install(app, relay)` adds its routes; `signin` holds the sign-in and sign-out handlers,
`figures` reads what the page shows. It is rendered as every page is (bot/web/pages.py,
templates/organiser*.html, the one stylesheet), as a private page."""

from __future__ import annotations

from aiohttp import web

from bot.relay import Relay
from bot.web.organiser import dashboard, signin


def install(app: web.Application, relay: Relay) -> None:
    app[signin.ATTEMPTS] = signin.Attempts()
    app.router.add_get("/organiser", dashboard.page)
    app.router.add_get("/organiser/signin", signin.link_page)
    app.router.add_post("/organiser/signin", signin.sign_in)
    app.router.add_post("/organiser/signout", signin.sign_out)
