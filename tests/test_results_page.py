"""The public results page served by the app: 404 until the organisers publish, then the
package's content in the reader's language, the package's files byte for byte, and off
again on `concorder results off`."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from bot.bootstrap import create_app, publication_writers
from bot.services import publish as pub
from bot.services.publish import web
from bot.settings import Settings
from store.models import AuditEvent
from tests.calendar_world import calendar_fixture  # noqa: F401  (the `calendar` fixture)
from tests.test_draw import concorder
from tests.test_publish import small_assembly


async def package_of(relay):
    return await pub.build(
        relay.sessions,
        publication_writers(),
        assembly=relay.assembly,
        calendar=relay.calendar,
        min_cell=5,
    )


async def test_the_page_is_off_until_published_and_shows_the_package(
    aiohttp_client, relay, db, assembly, calendar
):
    await small_assembly(db, relay)
    client = await aiohttp_client(create_app(relay=relay, migrate=False, dispatch=False))

    response = await client.get("/results")
    assert response.status == 404
    assert "Not published yet" in await response.text()
    assert (await client.get("/results/data/datapackage.json")).status == 404

    package = await package_of(relay)
    await web.record(relay.sessions, package, 5)
    response = await client.get("/results")
    html = await response.text()
    assert response.status == 200 and '<html lang="en">' in html
    assert assembly.name.replace("'", "&#39;") in html
    for heading in ("The draw and its fairness", "Turnout", "Ballot results", "The opinion map"):
        assert heading in html
    assert "Themes and quotes" in html and "[retiré]" in html
    for name, data in package.files().items():
        served = await client.get(f"/results/data/{name}")
        assert served.status == 200 and await served.read() == data, name
    assert (await client.get("/results/data/nothing.csv")).status == 404

    french = await (await client.get("/results?lang=fr")).text()
    assert '<html lang="fr">' in french and "Résultats" in french
    # The assembly's own name and organiser in French too, as its file gives them.
    assert "Résultats : Jury citoyen de Riverside sur les transports" in french
    assert "Conseil municipal de Riverside (fictif)" in french
    assert "Riverside Citizens" not in french
    spanish = await client.get("/results", headers={"Accept-Language": "de, es;q=0.8, fr;q=0.5"})
    assert '<html lang="es">' in await spanish.text()

    await web.switch(relay.sessions, False)
    assert (await client.get("/results")).status == 404
    assert (await client.get("/results/data/datapackage.json")).status == 404
    async with db.sessions() as session:
        kinds = (
            await session.execute(
                select(AuditEvent.kind, AuditEvent.data)
                .where(AuditEvent.kind.like("results.%"))
                .order_by(AuditEvent.id)
            )
        ).all()
    digest = hashlib.sha256(package.files()["datapackage.json"]).hexdigest()
    assert [k for k, _ in kinds] == ["results.published", "results.hidden"]
    assert all(data["package_sha256"] == digest for _, data in kinds)


async def test_the_commands_turn_the_page_on_and_off(sqlite_db, tmp_path, aiohttp_client):
    db = sqlite_db
    code, out, err = await concorder(db, tmp_path, "results", "status")
    assert code == 0 and "Nothing is published" in out, err
    code, out, err = await concorder(db, tmp_path, "results", "on")
    assert code == 1 and "Nothing is published yet" in err
    folder = str(tmp_path / "open-data")
    code, out, err = await concorder(db, tmp_path, "publish", "--out", folder, "--web", "--dry-run")
    assert code == 0 and "nothing written" in out, err
    code, out, _ = await concorder(db, tmp_path, "results", "status")
    assert "Nothing is published" in out
    code, out, err = await concorder(db, tmp_path, "publish", "--out", folder, "--web")
    assert code == 0 and "The results page (/results) shows this package now" in out, err
    # An assembly with nothing to show yet still has its page: the files, listed.
    settings = Settings(CONCORDER_DATABASE_URL=db.url, _env_file=None)
    client = await aiohttp_client(create_app(settings, migrate=False, dispatch=False))
    page = await (await client.get("/results")).text()
    assert "Open data" in page and "participation.csv" in page
    assert 'id="ballots"' not in page and 'id="opinions"' not in page
    code, out, err = await concorder(db, tmp_path, "results", "off", "--dry-run")
    assert code == 0 and "is on" in out and "would be off" in out, err
    code, out, err = await concorder(db, tmp_path, "results", "off")
    assert code == 0 and "is off" in out, err
    code, out, err = await concorder(db, tmp_path, "results", "on")
    assert code == 0 and "is on" in out, err


def test_a_package_published_with_one_name_shows_it_in_every_language():
    from bot.services.publish.reading import Table
    from bot.web.results.view import Page
    from flows.i18n import translator

    rows = [{"name": "Old Jury", "organiser": "Old Town"}]  # before names per language
    tables = {"assembly": Table("assembly", "assembly.csv", "", "", 0, rows)}
    shown = Page(tables, translator("fr"), 5).build()["assembly"]
    assert (shown["name"], shown["organiser"]) == ("Old Jury", "Old Town")
