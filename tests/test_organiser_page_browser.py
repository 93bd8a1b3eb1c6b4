"""The organiser page in real headless Chromium (Debian's /usr/bin/chromium, driven by
playwright; no browser is downloaded): signed in through its form, checked at a phone's
and a desktop's size, by keyboard, in each language."""

from __future__ import annotations

import io
import shutil
from datetime import timedelta

import pytest
from PIL import Image

from bot.bootstrap import build, create_app
from bot.services import organiser_signin as signin
from bot.services.organisers import OrganiserInfo
from bot.settings import Settings
from store.models import utcnow
from store.organisers import Organiser
from tests.test_organiser_page import an_assembly_under_way

CHROMIUM = "/usr/bin/chromium"
PHONE, DESKTOP = (390, 844), (1280, 800)


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


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright

    if shutil.which(CHROMIUM) is None:
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium with "
            "`apt-get install -y chromium` (as root); playwright downloads no browser here.",
            pytrace=False,
        )
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield chromium
        await chromium.close()


async def signed_in_page(browser, site, size, language="en"):
    url, token = site
    width, height = size
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    await page.goto(f"{url}?lang={language}")
    await page.fill("#token", token)
    await page.press("#token", "Enter")
    await page.wait_for_selector("#funnel")
    return page


def check_screenshot(png: bytes, size: tuple[int, int]) -> None:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == size
    colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 8, "the screenshot is blank"


async def no_sideways_scroll(page) -> bool:
    return await page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


async def test_the_page_fits_a_phone_and_a_desktop(browser, site, tmp_path):
    for size in (PHONE, DESKTOP):
        page = await signed_in_page(browser, site, size)
        assert await page.inner_text("h1") == "Organiser page"
        assert await no_sideways_scroll(page)
        png = await page.screenshot(path=str(tmp_path / f"organiser-{size[0]}.png"))
        check_screenshot(png, size)
        whole = await page.screenshot(full_page=True)
        assert Image.open(io.BytesIO(whole)).size[0] == size[0]  # nothing wider than the screen


async def test_tab_reaches_every_link_with_a_visible_outline(browser, site):
    page = await signed_in_page(browser, site, PHONE)
    targets = await page.evaluate(
        "Array.from(document.querySelectorAll('a[href], button, input:not([type=hidden])')).length"
    )
    seen: set[str] = set()
    for _ in range(targets + 2):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(
            """() => {
                const e = document.activeElement;
                const s = getComputedStyle(e);
                const r = e.getBoundingClientRect();
                return {
                    key: e.tagName + '|' + (e.getAttribute('href') || e.textContent.trim()),
                    tag: e.tagName,
                    outline: s.outlineStyle,
                    width: parseFloat(s.outlineWidth),
                    visible: r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < innerHeight,
                };
            }"""
        )
        if focused["tag"] == "BODY":
            continue
        seen.add(focused["key"])
        assert focused["outline"] != "none" and focused["width"] >= 2, focused
        assert focused["visible"], focused
    links = await page.evaluate(
        "Array.from(document.querySelectorAll('a[href]')).map(e => 'A|' + e.getAttribute('href'))"
    )
    assert set(links) <= seen, set(links) - seen
    assert "A|#main" in seen  # the skip link comes first


LANGUAGES = [
    ("fr", "Page des organisateurs", "Distribution par canal"),
    ("es", "Página de organizadores", "Entrega por canal"),
]


async def test_each_language_shows_its_own_strings(browser, site):
    for language, heading, section in LANGUAGES:
        page = await signed_in_page(browser, site, PHONE, language)
        assert await page.inner_text("h1") == heading
        assert await page.inner_text("#delivery-title") == section
        assert await page.get_attribute("html", "lang") == language
        assert await no_sideways_scroll(page)
        check_screenshot(await page.screenshot(), PHONE)
