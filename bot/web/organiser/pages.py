"""Rendering the organiser page: the language asked for (?lang=, else Accept-Language),
the Jinja templates (autoescaped) and the strings through the project's gettext catalogs."""

from __future__ import annotations

import functools
from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web
from babel.dates import format_datetime
from babel.numbers import format_decimal, format_percent
from jinja2 import Environment, PackageLoader, select_autoescape

from bot.web.pages import language_of
from flows.i18n import Translator, shipped_languages, translator

__all__ = ["environment", "format_moment", "language_of", "render"]


@functools.cache
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("bot.web.organiser", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(
    request: web.Request,
    template: str,
    language: str,
    *,
    status: int = 200,
    zone: str = "UTC",
    **values,
) -> web.Response:
    t = translator(language)
    keep = {k: v for k, v in request.query.items() if k != "lang"}
    languages = [
        (code, t.language_name(code), "?" + urlencode({**keep, "lang": code}))
        for code in shipped_languages()
    ]
    html = (
        environment()
        .get_template(template)
        .render(
            _=t.gettext,
            ngettext=t.ngettext,
            lang=language,
            languages=languages,
            number=lambda n: format_decimal(n, locale=t.locale),
            percent=lambda part, whole: (
                format_percent(part / whole, locale=t.locale) if whole else "–"
            ),
            when=lambda moment: format_moment(moment, t, zone),
            zone=zone,
            **values,
        )
    )
    response = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    # The page is for one signed-in organiser: never cached, framed or sniffed.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return response


def format_moment(moment: datetime | None, t: Translator, zone: str) -> str:
    if moment is None:
        return "–"
    return format_datetime(moment, format="medium", tzinfo=ZoneInfo(zone), locale=t.locale)
