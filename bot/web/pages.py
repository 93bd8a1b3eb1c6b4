"""HTML pages (the public ones and the organiser page): one Jinja2 environment
(autoescaped) over bot/web/templates, one CSS file in bot/web/static, and the reader's
language.

A page extends `base.html` (landmarks, skip link, language switcher, footer) and is
rendered with `render`, which gives the template `_` and `ngettext` in the chosen
language, `lang`, `languages` (code, name, link) and `path` for the switcher, and
`number`, `percent` and `when` to write figures and moments as the reader's locale does.
A `private` page (one signed-in person's) is never cached, framed or sniffed. No JavaScript.
"""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web
from babel.dates import format_datetime
from babel.numbers import format_decimal, format_percent

from flows.i18n import Translator, shipped_languages, translator

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


@functools.cache
def environment():
    from jinja2 import Environment, FileSystemLoader, select_autoescape  # at the first page

    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def install(app: web.Application) -> None:
    """The pages' stylesheet (and anything else in bot/web/static)."""
    app.router.add_static("/static/", STATIC)


def language_of(request: web.Request, default: str = "en", asked: str | None = None) -> str:
    """`asked` (a form's language), else `?lang=`, else the best of Accept-Language, else
    `default`: a shipped language. Every page chooses this way."""
    shipped = shipped_languages()
    asked = (asked or request.query.get("lang") or "").strip().lower()
    if asked in shipped:
        return asked
    best: tuple[float, str] | None = None
    for n, part in enumerate(request.headers.get("Accept-Language", "").split(",")):
        tag, _, params = part.strip().partition(";")
        code = tag.strip().lower().split("-")[0]
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if code in shipped and quality > 0 and (best is None or quality > best[0]):
            best = (quality - n * 1e-6, code)  # equal weights: the first listed wins
    if best is not None:
        return best[1]
    return default if default in shipped else shipped[0]


def render(
    request: web.Request,
    template: str,
    language: str,
    *,
    status: int = 200,
    zone: str = "UTC",
    private: bool = False,
    **values,
) -> web.Response:
    t = translator(language)
    # The switcher keeps the rest of the query (a sign-in link's page keeps its link).
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
            t=t,
            lang=language,
            languages=languages,
            path=request.path,
            number=lambda n: number(n, t),
            percent=lambda part, whole: (
                format_percent(part / whole, locale=t.locale) if whole else "–"
            ),
            when=lambda at: moment(at, t, zone),
            zone=zone,
            **values,
        )
    )
    response = web.Response(text=html, content_type="text/html", status=status)
    response.headers["Content-Language"] = language
    response.headers["Vary"] = "Accept-Language"
    if private:
        response.headers.update(PRIVATE_HEADERS)
    return response


# One signed-in person's page: never cached, framed or sniffed; no script, no referrer.
PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


def number(n: float | None, t: Translator) -> str:
    return "–" if n is None else format_decimal(n, locale=t.locale)


def moment(at: datetime | None, t: Translator, zone: str) -> str:
    if at is None:
        return "–"
    return format_datetime(at, format="medium", tzinfo=ZoneInfo(zone), locale=t.locale)
