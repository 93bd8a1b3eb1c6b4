"""The organiser page in real headless Chromium (tests/browser.py): signed in through its
form, checked at a phone's and a desktop's size, by axe-core, by keyboard, in each
language."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.bootstrap import build, create_app
from bot.services import organiser_signin as signin
from bot.services.organisers import OrganiserInfo
from bot.settings import Settings
from store.models import utcnow
from store.organisers import Organiser
from tests.browser import (
    DESKTOP,
    PHONE,
    accessibility,
    browser_fixture,  # noqa: F401  (the `browser` fixture)
    screenshot,
    tab_through,
)
from tests.test_organiser_page import an_assembly_under_way


@pytest.fixture
async def site(aiohttp_server, sqlite_db, assembly):
    """The service on loopback with an assembly under way, and a token for its organiser."""
    settings = Settings(CONCORDER_DATABASE_URL=sqlite_db.url, _env_file=None)
    relay = build(settings, assembly=assembly, sessions=sqlite_db.sessions)
    await an_assembly_under_way(relay, sqlite_db.sessions)
    async with sqlite_db.sessions.begin() as session:
        row = Organiser(name="Ann", telegram_id="5550001")
        session.add(row)
        await session.flush()
        token, _ = await signin.issue_token(
            session, OrganiserInfo.of(row), timedelta(hours=1), utcnow()
        )
    server = await aiohttp_server(create_app(relay=relay, migrate=False, dispatch=False))
    return str(server.make_url("/organiser")), token


def signed_in(chromium, site, size, language="en"):
    url, token = site
    # The page's Content-Security-Policy forbids scripts; axe-core is the test's own.
    page = chromium.new_page(viewport=size, bypass_csp=True)
    page.goto(f"{url}?lang={language}")
    page.fill("#token", token)
    page.press("#token", "Enter")
    page.wait_for_selector("#funnel")
    return page


LANGUAGES = [
    ("en", "Organiser page", "Delivery by channel"),
    ("fr", "Page de l'équipe organisatrice", "Distribution par canal"),
    ("es", "Página del equipo organizador", "Entrega por canal"),
]


async def test_the_organiser_page_in_a_real_browser(browser, site, tmp_path):
    def visit(chromium):
        for language, heading, section in LANGUAGES:
            for size in (PHONE, DESKTOP):
                page = signed_in(chromium, site, size, language)
                assert page.inner_text("h1") == heading
                assert page.inner_text("#delivery-title") == section
                assert page.get_attribute("html", "lang") == language
                screenshot(page, tmp_path / f"organiser-{language}-{size['width']}.png")
                if size == DESKTOP and language == "en":
                    assert accessibility(page) == []
                    focused = tab_through(page)
                    assert focused and focused[0]["href"] == "#main"  # the skip link first
                    assert all(f["outline"] for f in focused), focused
                    links = page.evaluate(
                        "Array.from(document.querySelectorAll('a[href]'))"
                        ".map(e => e.getAttribute('href'))"
                    )
                    assert set(links) <= {f["href"] for f in focused}
                page.close()

    await browser.run(visit)
