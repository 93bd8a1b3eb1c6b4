"""Real headless Chromium for the tests of the public pages: one browser per test session
(Debian's /usr/bin/chromium, never a downloaded one), and the checks every page gets:
screenshots of the right size that are not blank and do not scroll sideways, axe-core's
accessibility rules, and the keyboard (Tab reaches every link, with a visible outline).

Playwright's sync API runs in one thread of its own, so an async test's aiohttp server
keeps serving while the browser loads its pages: `await browser.run(work, ...)` calls
`work(browser, ...)` in that thread.

    from tests.browser import browser_fixture  # noqa: F401  (the `browser` fixture)

    async def test_x(browser, aiohttp_server):
        def visit(b, url):
            page = b.new_page(viewport={"width": 390, "height": 844})
            page.goto(url)
            ...
        await browser.run(visit, str(server.make_url("/results")))
"""

from __future__ import annotations

import asyncio
import io
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).resolve().parent / "peers" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


class Browser:
    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="chromium")
        self._thread.submit(self._start).result()

    def _start(self) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self.chromium = self._playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )

    async def run(self, work, *args):
        return await asyncio.wrap_future(self._thread.submit(work, self.chromium, *args))

    def close(self) -> None:
        def stop() -> None:
            self.chromium.close()
            self._playwright.stop()

        self._thread.submit(stop).result()
        self._thread.shutdown()


@pytest.fixture(scope="session", name="browser")
def browser_fixture():
    """The session's Chromium (import `browser_fixture`, ask for `browser`)."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail(
            "Chromium is not installed: apt-get install -y chromium (Debian's package; the "
            "tests never download a browser).",
            pytrace=False,
        )
    if not AXE.exists():
        pytest.fail("axe-core is missing: npm ci --prefix tests/peers", pytrace=False)
    started = Browser()
    yield started
    started.close()


def screenshot(page, path: Path) -> None:
    """The viewport as a PNG, checked: the viewport's size, not blank, and the page no
    wider than the viewport (nothing to scroll sideways)."""
    from PIL import Image

    size = page.viewport_size
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll == size["width"], f"{path.name}: the page is {scroll}px wide in {size}"
    data = page.screenshot(path=str(path))
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.size == (size["width"], size["height"]), path
    colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 8, f"{path.name} is blank"


def accessibility(page) -> list[str]:
    """axe-core's violations of WCAG 2.x A and AA (and its best practices), one line each."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => (await axe.run(document, {
            runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
                                            "wcag22aa", "best-practice"]}
        })).violations.map(v => `${v.id}: ${v.help} (${v.nodes.map(n => n.target).join(" ")})`)"""
    )
    return list(found)


def tab_through(page, limit: int = 400) -> list[dict]:
    """Press Tab from the top until focus comes round again: each element focused, with
    its href and whether an outline is drawn around it."""
    page.evaluate("window.scrollTo(0, 0); document.activeElement?.blur()")
    seen: list[dict] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => {
                const e = document.activeElement;
                if (!e || e === document.body) return null;
                const s = getComputedStyle(e);
                return {tag: e.tagName, href: e.getAttribute("href"), text: e.textContent.trim(),
                        outline: s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2};
            }"""
        )
        if focused is None or (seen and focused == seen[0]):
            break
        seen.append(focused)
    return seen
