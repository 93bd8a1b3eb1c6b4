"""The results page in real headless Chromium: 404 before publishing; then, in every
shipped language, on a phone and a desktop, screenshots of the right size that are not
blank and never scroll sideways, no axe-core violation, the page's own strings; Tab
reaches every link with a visible outline; and the numbers shown are the CSV files'."""

from __future__ import annotations

import csv
import io
import json

from bot.bootstrap import build, create_app, publication_writers
from bot.services import publish as pub
from bot.services.publish import web
from bot.settings import Settings
from flows.assembly import load_assembly
from flows.i18n import shipped_languages, translator
from tests.browser import (
    DESKTOP,
    PHONE,
    accessibility,
    browser_fixture,  # noqa: F401  (the `browser` fixture)
    screenshot,
    tab_through,
)
from tests.calendar_world import load as example_calendar
from tests.conftest import EXAMPLE_ASSEMBLY
from tests.test_publish import small_assembly

# Every table of the page by id: its body's rows, the row's header cell first.
TABLES = """() => Object.fromEntries([...document.querySelectorAll("table[id]")].map(t =>
    [t.id, [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.innerText.trim()))]))"""


def look(chromium, url: str, language: str, viewport: dict, shots, desktop: bool) -> dict:
    """One language at one size: a checked screenshot, the page's lang and heading; on the
    desktop also axe-core's findings, and for English the keyboard's path and the tables."""
    context = chromium.new_context(viewport=viewport, locale=language)
    page = context.new_page()
    try:
        response = page.goto(f"{url}?lang={language}")
        assert response.status == 200
        screenshot(page, shots / f"results-{language}-{viewport['width']}.png")
        seen = {"lang": page.get_attribute("html", "lang"), "h1": page.inner_text("h1")}
        if desktop and language == "en":
            seen["focused"] = tab_through(page)
            seen["links"] = page.eval_on_selector_all(
                "a[href]", "all => all.map(a => a.getAttribute('href'))"
            )
            seen["tables"] = page.evaluate(TABLES)
        seen["violations"] = accessibility(page) if desktop else []
        return seen
    finally:
        context.close()


def not_published(chromium, url: str) -> tuple[int, str, list[str]]:
    page = chromium.new_page(viewport=PHONE)
    try:
        response = page.goto(url)
        return response.status, page.inner_text("h1"), accessibility(page)
    finally:
        page.close()


def rows_of(files: dict[str, bytes], name: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(files[name].decode())))


async def test_the_results_page_in_a_real_browser(browser, aiohttp_server, sqlite_db, tmp_path):
    relay = build(
        Settings(CONCORDER_DATABASE_URL=sqlite_db.url, _env_file=None),
        assembly=load_assembly(EXAMPLE_ASSEMBLY / "assembly.toml"),
        calendar=example_calendar(),
        sessions=sqlite_db.sessions,
    )
    await small_assembly(sqlite_db, relay)
    server = await aiohttp_server(create_app(relay=relay, migrate=False, dispatch=False))
    url = str(server.make_url("/results"))

    assert await browser.run(not_published, url) == (404, "Not published yet", [])

    package = await pub.build(
        relay.sessions, publication_writers(), assembly=relay.assembly, calendar=relay.calendar
    )
    await web.record(relay.sessions, package, pub.DEFAULT_MIN_CELL)
    files = package.files()

    shots = tmp_path / "screenshots"  # kept with the test's tmp dir, to look at
    shots.mkdir()
    headings, english = set(), {}
    for language in shipped_languages():
        name = relay.assembly.name_in(language)  # the assembly's own name in that language
        expected = translator(language).gettext("Results of {name}", name=name)
        for viewport in (PHONE, DESKTOP):
            seen = await browser.run(look, url, language, viewport, shots, viewport is DESKTOP)
            assert seen["lang"] == language and seen["h1"] == expected
            headings.add(seen["h1"])
            assert seen["violations"] == [], "\n".join(seen["violations"])
            english = seen if "tables" in seen else english
    assert len(headings) == len(shipped_languages())  # each in its own words
    assert len(list(shots.glob("*.png"))) == 2 * len(shipped_languages())

    focused, links = english["focused"], english["links"]
    reached = [f["href"] for f in focused if f["href"]]
    assert sorted(set(reached)) == sorted(set(links)), set(links) - set(reached)
    assert all(f["outline"] for f in focused), [f for f in focused if not f["outline"]]

    shown = english["tables"]
    total = next(r for r in rows_of(files, "participation.csv") if r["category"] == "(all)")
    turnout = dict(shown["turnout-table"])
    assert turnout["Registered"] == total["registered"] == "16"
    assert turnout["Confirmed their place"] == "hidden" and total["confirmed"] == "suppressed"
    (ballot,) = rows_of(files, "ballot_results.csv")
    counts = json.loads(ballot["tally"])["details"]["counts"]
    votes = {label: n for label, n, _share in shown[f"ballot-{ballot['ballot']}-table"]}
    assert votes == {"Yes": str(counts["yes"]), "No": str(counts["no"])}
    everyone = {
        r["statement"]: r["agree"]
        for r in rows_of(files, "opinion_groups.csv")
        if r["group"] == "(all)"
    }
    statements = rows_of(files, "opinion_statements.csv")
    for row, statement in zip(shown["opinions-table"], statements, strict=True):
        assert row[1] == f"{float(everyone[statement['statement']]):.0%}"
    quotas = {(r[0], r[1]): r[4] for r in shown["quota-table"]}
    for q in rows_of(files, "draw_quotas.csv"):
        assert quotas[(q["category"], q["value"])].startswith(q["panel"])
