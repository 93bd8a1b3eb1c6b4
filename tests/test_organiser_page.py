"""The organiser page over HTTP: who gets in (tokens, one-time links, sessions, removal,
cookie flags, slowing down guesses) and what it shows (the services' own figures, never a
vote)."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from bot.bootstrap import build_cli, create_app
from bot.delivery.queue import by_channel, opted_out_by_channel
from bot.services import broadcast, deliberation, recruitment, turns
from bot.services import organiser_signin as signin
from bot.services.ballots import opening
from bot.services.ballots.records import turnout
from bot.services.organisers import OrganiserInfo, remove_organiser
from bot.services.unhandled.keep import receive_or_keep
from bot.web.app import PrivateAccessLogger
from bot.web.organiser.signin import COOKIE, MAX_FAILURES
from store.audit import AuditEvent
from store.calendar import BriefingRead
from store.db import make_engine, sessionmaker
from store.models import OutboxMessage, OutboxStatus, utcnow
from store.organiser_signin import OrganiserSession, OrganiserSignin
from store.organisers import Organiser
from store.unhandled import UnhandledInbound
from tests.ballot_world import create_ballots
from tests.deliberation_world import ORGANISER_CHAT, START, seat_table
from tests.test_inbound_never_lost import failing


@pytest.fixture
async def client(aiohttp_client, relay):
    return await aiohttp_client(create_app(relay=relay, migrate=False, dispatch=False))


async def add_organiser(db, name="Ann", telegram_id="5550001", language=None) -> OrganiserInfo:
    async with db.sessions.begin() as session:
        row = Organiser(name=name, telegram_id=telegram_id)
        session.add(row)
        await session.flush()
        return OrganiserInfo.of(row)


async def token_for(db, info: OrganiserInfo, hours: float = 12, now=None) -> str:
    async with db.sessions.begin() as session:
        token, _ = await signin.issue_token(session, info, timedelta(hours=hours), now or utcnow())
    return token


async def sign_in(client, **form):
    return await client.post("/organiser/signin", data=form, allow_redirects=False)


async def signed_in_client(client, db, info=None):
    info = info or await add_organiser(db)
    answer = await sign_in(client, token=await token_for(db, info))
    assert answer.status == 303
    return info


async def test_without_a_session_the_page_is_a_sign_in_form(client):
    page = await client.get("/organiser")
    html = await page.text()
    assert page.status == 200 and 'name="token"' in html and "Recruitment" not in html
    assert page.headers["Cache-Control"] == "no-store"
    for method in ("PUT", "DELETE", "PATCH", "POST"):  # read-only: GET, and signing in and out
        assert (await client.request(method, "/organiser")).status == 405


async def test_a_token_signs_in_with_a_safe_cookie_and_sign_out_ends_it(client, db):
    info = await add_organiser(db)
    token = await token_for(db, info)
    answer = await sign_in(client, token=token)
    assert answer.status == 303 and answer.headers["Location"].startswith("/organiser")
    cookie = answer.headers["Set-Cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Max-Age=43200" in cookie and "Path=/organiser" in cookie
    assert "Secure" not in cookie  # served over plain http here
    page = await (await client.get("/organiser")).text()
    assert "Signed in as Ann." in page and "Recruitment" in page
    await client.post("/organiser/signout", allow_redirects=False)
    assert 'name="token"' in await (await client.get("/organiser")).text()
    # Only the hash was stored.
    async with db.sessions() as session:
        hashes = (await session.execute(select(OrganiserSignin.secret_hash))).scalars().all()
    assert hashes == [signin.digest(token)] and token not in hashes


async def test_the_cookie_is_secure_when_the_service_is_public_over_https(
    aiohttp_client, relay, db
):
    relay.settings = relay.settings.model_copy(update={"public_url": "https://relay.example"})
    client = await aiohttp_client(create_app(relay=relay, migrate=False, dispatch=False))
    info = await add_organiser(db)
    answer = await sign_in(client, token=await token_for(db, info))
    assert "Secure" in answer.headers["Set-Cookie"]


async def test_every_refusal_gets_the_same_answer(client, db):
    info = await add_organiser(db)
    expired = await token_for(db, info, hours=1, now=utcnow() - timedelta(hours=2))
    removed = await add_organiser(db, name="Bo", telegram_id="5550002")
    removed_token = await token_for(db, removed)
    async with db.sessions.begin() as session:
        await remove_organiser(session, str(removed.id))
    answers = []
    for form in (
        {"token": "not-a-token"},
        {"token": expired},
        {"token": removed_token},
        {"token": ""},
        {"link": await token_for(db, info)},  # a token is not a link
    ):
        answer = await sign_in(client, **form)
        answers.append((answer.status, await answer.text(), "Set-Cookie" in answer.headers))
    assert len(set(answers)) == 1 and answers[0][0] == 401 and not answers[0][2]
    assert "wrong, has expired or was already used" in answers[0][1]


async def test_removing_an_organiser_ends_their_sessions(client, db):
    info = await signed_in_client(client, db)
    assert "Recruitment" in await (await client.get("/organiser")).text()
    async with db.sessions.begin() as session:
        await remove_organiser(session, str(info.id))
    assert 'name="token"' in await (await client.get("/organiser")).text()


async def test_a_session_ends_when_it_expires(client, db):
    await signed_in_client(client, db)
    async with db.sessions.begin() as session:
        await session.execute(
            update(OrganiserSession).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert 'name="token"' in await (await client.get("/organiser")).text()


async def test_guessing_is_slowed_even_for_a_right_token_afterwards(client, db):
    info = await add_organiser(db)
    for _ in range(MAX_FAILURES):
        assert (await sign_in(client, token=uuid.uuid4().hex)).status == 401
    late = await sign_in(client, token=await token_for(db, info))
    assert late.status == 429 and "Too many tries from here" in await late.text()


async def test_a_link_asked_for_in_chat_works_once(client, db, relay, caplog):
    caplog.set_level(logging.DEBUG, logger="bot")
    async with db.sessions.begin() as session:
        session.add(Organiser(name="Org", telegram_id=ORGANISER_CHAT))
    await turns.receive(
        relay,
        channel="telegram",
        address=ORGANISER_CHAT,
        text="/start",
        provider_id="in-0",
    )
    await turns.receive(
        relay, channel="telegram", address=ORGANISER_CHAT, text="LIEN", provider_id="in-1"
    )
    async with db.sessions() as session:
        texts = (
            (await session.execute(select(OutboxMessage.text).order_by(OutboxMessage.id)))
            .scalars()
            .all()
        )
    sent = next(t for t in texts if "/organiser/signin?link=" in t)
    link = re.search(r"link=([\w-]+)", sent)[1]
    assert any("on its way" in t for t in texts)
    # Opening the page (or a chat app's preview of it) spends nothing.
    page = await client.get(f"/organiser/signin?link={link}")
    assert page.status == 200 and f'value="{link}"' in await page.text()
    assert (await sign_in(client, link=link)).status == 303
    client.session.cookie_jar.clear()
    again = await sign_in(client, link=link)
    assert again.status == 401
    async with db.sessions() as session:
        events = (await session.execute(select(AuditEvent))).scalars().all()
    kinds = [e.kind for e in events]
    assert "organiser.link_sent" in kinds and "organiser.signed_in" in kinds
    assert "organiser.sign_in_refused" in kinds
    assert not any(link in str(e.data) for e in events)
    # The test server logs requests in aiohttp's own format; `serve` logs them through
    # PrivateAccessLogger, which leaves the query string (the link) out.
    ours = [r.getMessage() for r in caplog.records if r.name.split(".")[0] == "bot"]
    assert not any(link in line for line in ours)
    line = logging.getLogger("test")
    request = make_mocked_request("GET", f"/organiser/signin?link={link}")
    with caplog.at_level(logging.INFO, "test"):
        PrivateAccessLogger(line, "").log(request, web.Response(), 0.01)
    assert "/organiser/signin" in caplog.records[-1].getMessage()
    assert link not in caplog.records[-1].getMessage()


async def test_a_french_organiser_gets_the_link_in_french(db, relay):
    async with db.sessions.begin() as session:
        session.add(Organiser(name="Org", telegram_id=ORGANISER_CHAT))
    for n, text in enumerate(("Bonjour", "FRANÇAIS", "LIEN")):
        await turns.receive(
            relay, channel="telegram", address=ORGANISER_CHAT, text=text, provider_id=f"f{n}"
        )
    async with db.sessions() as session:
        texts = (await session.execute(select(OutboxMessage.text))).scalars().all()
    assert any("page de l'équipe organisatrice" in t and "link=" in t for t in texts), texts


def test_the_command_line_prints_a_token_once_and_sends_links(db, monkeypatch):
    import asyncio

    monkeypatch.setenv("CONCORDER_DATABASE_URL", db.url)
    cli, runner = build_cli(), CliRunner()
    assert (
        runner.invoke(cli, ["organiser", "add", "--telegram-id", "4242", "--name", "Cy"]).exit_code
        == 0
    )
    made = runner.invoke(cli, ["organiser", "token", "4242", "--expires", "2h"])
    assert made.exit_code == 0, made.output
    token = made.output.splitlines()[1].strip()
    assert len(token) >= 30
    bad = runner.invoke(cli, ["organiser", "token", "4242", "--expires", "soon"])
    assert bad.exit_code == 2 and "duration" in bad.output
    sent = runner.invoke(cli, ["organiser", "link", "1"])
    assert sent.exit_code == 0 and "queued" in sent.output

    async def stored():
        engine = make_engine(db.url)
        try:
            async with sessionmaker(engine)() as session:
                hashes = (await session.execute(select(OrganiserSignin.secret_hash))).scalars()
                lapses = (await session.execute(select(OutboxMessage.expires_at))).scalars()
                return list(hashes), list(lapses)
        finally:
            await engine.dispose()

    hashes, lapses = asyncio.run(stored())
    assert signin.digest(token) in hashes and token not in hashes and len(hashes) == 2
    assert lapses and all(lapse is not None for lapse in lapses)  # the link's message lapses


# --- what the page shows -------------------------------------------------------------------

OPTION_LABELS = (
    "More buses",
    "Safe bike lanes",
    "Wider pavements",
    "Plus de bus",
    "Des pistes cyclables",
    "Más autobuses",
)


def row_figures(html: str, attribute: str, value: str) -> dict[str, str]:
    row = re.search(rf'<tr {attribute}="{re.escape(value)}">(.*?)</tr>', html, re.S)
    assert row, f"no row {attribute}={value}"
    return dict(re.findall(r'data-figure="(\w+)">([^<]*)<', row[1]))


def figure(html: str, name: str) -> str:
    return re.search(rf'data-figure="{name}">([^<]*)<', html)[1]


async def an_assembly_under_way(relay, sessions):
    """Three seated members (one votes, one speaks, one says STOP), a ballot open, a
    broadcast, a briefing read by two: what the page's sections show."""
    w = await seat_table(
        relay, [("A", "telegram", "en"), ("B", "sms", "fr"), ("C", "telegram", "es")]
    )
    await create_ballots(relay.sessions)
    await opening.open_ballot(relay, "first")
    await w.send("B", "velo", utcnow())
    await w.send("B", "oui", utcnow())
    await deliberation.open_prompt(relay, round_no=1, prompt="bus-priorities", now=START)
    await w.send("A", "Buses first, please", START + timedelta(seconds=20))
    async with sessions.begin() as session:
        row = await broadcast.create(
            session,
            relay.settings,
            broadcast.text_content("The venue has changed."),
            broadcast.parse_audience("all"),
            organiser_id=None,
            origin="cli",
            urgent=True,
            now=utcnow(),
            timing=broadcast.timing_of(None),
        )
        first = (await session.execute(select(OutboxMessage.id).limit(2))).scalars().all()
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == first[0]).values(status="delivered")
        )
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == first[1]).values(status="failed")
        )
        for n, m in enumerate(w.members.values()):
            read_at = utcnow() if n < 2 else None
            session.add(
                BriefingRead(
                    participant_id=m.participant_id,
                    briefing="day-1",
                    channel=m.channel,
                    read_at=read_at,
                )
            )
    await w.send("C", "STOP", START + timedelta(minutes=1))
    return w, row


async def test_the_page_shows_the_services_figures_and_never_a_vote(client, db, relay, assembly):
    w, row = await an_assembly_under_way(relay, db.sessions)
    await signed_in_client(client, db)
    html = await (await client.get("/organiser?lang=en")).text()

    async with db.sessions() as session:
        funnel = await recruitment.funnel(session)
        counts, opted_out = await by_channel(session), await opted_out_by_channel(session)
        status = await broadcast.status(session, row.id)
        voters, voted = await turnout(session, "first")
    assert figure(html, "pool") == str(funnel.pool) == "3"
    assert figure(html, "draw-confirmed") == str(funnel.selections["confirmed"])
    S = OutboxStatus
    for channel in ("telegram", "sms"):
        c = counts.get(channel, {})
        assert row_figures(html, "data-channel", channel) == {
            "queued": str(c.get(S.QUEUED, 0) + c.get(S.SENDING, 0)),
            "sent": str(c.get(S.SENT, 0) + c.get(S.DELIVERED, 0)),
            "failed": str(c.get(S.FAILED, 0) + c.get(S.UNDELIVERABLE, 0)),
            "opted_out": str(opted_out[channel]),
        }
    assert opted_out["telegram"] == 1
    assert row_figures(html, "data-broadcast", str(row.id)) == {
        "people": str(row.recipients),
        "queued": str(status.people["queued"]),
        "sent": str(status.people["sent"] + status.people["delivered"]),
        "failed": str(status.people["failed"]),
    }
    assert row_figures(html, "data-briefing", "day-1") == {"sent": "3", "read": "2"}
    assert row_figures(html, "data-ballot", "first") == {"voters": str(voters), "voted": "1"}
    assert voted == 1 and voters >= 2  # C's STOP may take them off the roll
    a, b = w.member("A").participant_id, w.member("B").participant_id
    assert f"A {a}" in html and f"B {b}" in html  # as `groups show` names them
    assert row_figures(html, "data-member", "A") == {"spoken": "yes"}
    assert row_figures(html, "data-member", "B") == {"spoken": "not yet"}
    ballots = html[html.index('id="ballots"') :]
    assert not any(label in html for label in OPTION_LABELS)
    assert b not in ballots and "velo" not in html


async def test_each_language_shows_its_own_strings(client, db, assembly):
    await signed_in_client(client, db)
    english = await (await client.get("/organiser?lang=en")).text()
    french = await (await client.get("/organiser?lang=fr")).text()
    spanish = await (
        await client.get("/organiser", headers={"Accept-Language": "es-ES,es;q=0.9,en;q=0.5"})
    ).text()
    assert '<html lang="en">' in english and "Delivery by channel" in english
    assert '<html lang="fr">' in french and "Distribution par canal" in french
    assert '<html lang="es">' in spanish and "Entrega por canal" in spanish
    assert 'hreflang="fr"' in english and 'aria-current="page">English' in english
    # The page is headed with the assembly's own name, as its file gives it in each language.
    assert '<p class="site-name">Riverside Citizens&#39; Jury on Transport</p>' in english
    assert '<p class="site-name">Jury citoyen de Riverside sur les transports</p>' in french
    assert '<p class="site-name">Jurado ciudadano de Riverside sobre el transporte</p>' in spanish


# --- colours: WCAG AA contrast ----------------------------------------------------------


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_colours_meet_wcag_aa():
    from bot.web.pages import STATIC

    # The one stylesheet: links are the accent, table stripes the panel.
    css = (STATIC / "site.css").read_text()
    colour = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6});", css))
    for text, ground in (
        ("text", "background"),
        ("text", "panel"),
        ("muted", "background"),
        ("muted", "panel"),
        ("accent", "background"),
        ("accent", "panel"),
        ("accent-text", "accent"),
        ("problem", "problem-background"),
    ):
        assert contrast(colour[text], colour[ground]) >= 4.5, (text, ground)
    for edge in ("focus", "line"):  # outlines and borders: 3:1 against the page
        assert contrast(colour[edge], colour["background"]) >= 3, edge


async def test_messages_whose_handling_failed_are_counted_on_the_page(client, db, relay):
    await signed_in_client(client, db)
    html = await (await client.get("/organiser?lang=en")).text()
    assert 'data-figure="unhandled"' not in html  # nothing to say while all is well

    failing(relay)  # every turn fails: the messages are kept, to be tried again
    for n, sender in enumerate(["+447700900611", "+447700900612"]):
        received = await receive_or_keep(
            relay, channel="sms", address=sender, text="Hello", provider_id=f"SM-kept-{n}"
        )
        assert received.kept
    async with db.sessions.begin() as session:
        await session.execute(
            update(UnhandledInbound)
            .values(gave_up_at=utcnow())
            .where(UnhandledInbound.id == select(func.min(UnhandledInbound.id)).scalar_subquery())
        )
    french = await (await client.get("/organiser?lang=fr")).text()
    assert figure(french, "unhandled").startswith(
        "Messages reçus mais pas encore traités, parce que leur traitement a échoué. "
        "En cours de nouvel essai : 1. Abandonnés : 1."
    )
