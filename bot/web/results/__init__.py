"""The public results page, `/results`, and the package's files under `/results/data/`.

Off (404, a plain page) until the organisers publish (`concorder publish --out DIR --web`)
and after `concorder results off`. Everything shown is read from the files recorded then
(store/results.py), so the page and the data package never differ.
"""

from __future__ import annotations

from aiohttp import web

from bot.relay import Relay
from bot.web import pages
from bot.web.app import SESSIONS
from flows.i18n import translator
from store.results import shown

TYPES = {".csv": "text/csv", ".json": "application/json"}


def install(app: web.Application, relay: Relay) -> None:
    def default() -> str:
        return relay.assembly.assembly.default_language if relay.assembly else "en"

    async def page(request: web.Request) -> web.Response:
        # Read at the first visit: `concorder serve` starts without the package's code.
        from bot.services.publish.reading import read
        from bot.web.results.view import Page

        language = pages.language_of(request, default())
        async with request.app[SESSIONS]() as session:
            published = await shown(session)
        if published is None:
            return pages.render(request, "not_published.html", language, status=404)
        descriptor, tables = read(published.files)
        view = Page(tables, translator(language), published.min_cell)
        return pages.render(
            request,
            "results.html",
            language,
            descriptor=descriptor,
            files=list(tables.values()),
            published_at=published.published_at,
            min_cell=published.min_cell,
            page_number=view.number,
            page_percent=view.percent,
            page_date=view.date,
            **view.build(),
        )

    async def data(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        async with request.app[SESSIONS]() as session:
            published = await shown(session)
        if published is None or name not in published.files:
            language = pages.language_of(request, default())
            return pages.render(request, "not_published.html", language, status=404)
        suffix = name[name.rfind(".") :]
        return web.Response(
            text=published.files[name],
            content_type=TYPES.get(suffix, "text/plain"),
            charset="utf-8",
            headers={"Content-Disposition": f'inline; filename="{name}"'},
        )

    app.router.add_get("/results", page)
    app.router.add_get("/results/data/{name}", data)
