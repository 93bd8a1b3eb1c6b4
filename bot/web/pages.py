"""Public HTML pages: one Jinja2 environment (autoescaped) over bot/web/templates, one CSS
file in bot/web/static, and the reader's language.

A page extends `base.html` (landmarks, skip link, language switcher, footer) and is
rendered with `render`, which gives the template `_` and `ngettext` in the chosen
language, and `lang`, `languages` and `path` for the switcher. No JavaScript.
"""

from __future__ import annotations

import functools
from pathlib import Path

from aiohttp import web

from flows.i18n import Translator, shipped_languages

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
    request: web.Request, template: str, language: str, *, status: int = 200, **values
) -> web.Response:
    t = Translator(language)
    html = (
        environment()
        .get_template(template)
        .render(
            _=t.gettext,
            ngettext=t.ngettext,
            t=t,
            lang=language,
            languages=[(code, t.language_name(code)) for code in shipped_languages()],
            path=request.path,
            **values,
        )
    )
    response = web.Response(text=html, content_type="text/html", status=status)
    response.headers["Content-Language"] = language
    response.headers["Vary"] = "Accept-Language"
    return response
