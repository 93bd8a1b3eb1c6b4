"""The demo: with no assembly configured, a visitor walks the whole journey in the simulator
through its HTTP API (the real aiohttp application, on a real database): the invitation,
consent, registration, the draw, a briefing, a table's prompt and a secret ballot. With an
assembly configured, or a database that holds one, there is no demo."""

from __future__ import annotations

import filecmp
import re
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update

from bot.bootstrap import create_app
from bot.services.deliberation.timing import run_due as deliberation_run_due
from bot.services.demo import example, steps, tour
from bot.settings import Settings
from bot.web.app import RELAY
from store import audit
from store.groups import GroupSeat
from store.models import Contact, InboundMessage, OutboxMessage, Participant, utcnow
from store.recruitment import CONFIRMED, Invitation, Selection
from store.unhandled import UnhandledInbound
from tests.conftest import EXAMPLE_ASSEMBLY
from tests.test_simulator import deliver_queued, replies, say

API = "/simulator/api/demo"


async def state(client, language="en"):
    response = await client.get(API, params={"language": language})
    assert response.status == 200, await response.text()
    return await response.json()


async def step(client, name, language="en"):
    response = await client.post(f"{API}/steps", json={"step": name, "language": language})
    assert response.status == 200, await response.text()
    return await response.json()


class Visitor:
    """The visitor at the simulator: writes, then reads what came back once delivered."""

    def __init__(self, client, db, channel, address):
        self.client, self.db, self.channel, self.address = client, db, channel, address
        self.after = 0

    async def read(self) -> list[str]:
        await deliver_queued(self.db.sessions)
        got = await replies(self.client, self.channel, self.address, self.after)
        if got["messages"]:
            self.after = got["messages"][-1]["seq"]
        return [m["text"] for m in got["messages"]]

    async def say(self, text) -> list[str]:
        await say(self.client, channel=self.channel, address=self.address, text=text)
        return await self.read()


async def test_a_visitor_walks_the_whole_journey(aiohttp_client, settings, db):
    client = await aiohttp_client(
        create_app(settings, migrate=False, dispatch=False, offer_demo=True)
    )
    relay = client.app[RELAY]
    start = await state(client)
    assert start["stage"] == "join" and start["visitor"] is None
    assert start["labels"]["join"] == "Join as an invited citizen"

    response = await client.post(f"{API}/join", json={"channel": "sms", "language": "en"})
    joined = await response.json()
    assert joined["stage"] == "register"
    me = Visitor(client, db, "sms", joined["visitor"]["address"])
    invitation = " ".join(await me.read())
    assert "You are invited to take part in Riverside Citizens' Jury on Transport" in invitation

    assert "Do you agree?" in (await me.say("1"))[0]  # yes, I am interested
    assert "How old are you?" in " ".join(await me.say("1"))  # I agree
    await me.say("2")  # 30 to 49
    await me.say("2")  # bus or train
    assert "Is this right?" in (await me.say("1"))[0]  # a woman
    assert "you are registered" in (await me.say("1"))[0]

    before = await state(client)
    assert before["stage"] == "draw"
    assert "among the 41 people registered" in before["action"]["why"]  # 35 + 5 + the visitor
    drawn = await step(client, "draw")
    assert re.search(r"Your chance was \d+%: 12 places for 41 people", drawn["says"])
    told = " ".join(await me.read())
    if drawn["stage"] == "call_up":  # not drawn: called up as a reserve would be
        assert "not selected this time" in told or "drawn as a reserve" in told
        drawn = await step(client, "call_up")
        assert "you are called up from the reserve" in drawn["says"]
        told = " ".join(await me.read())
    assert drawn["stage"] == "confirm"
    assert "you have been selected" in told.lower() and "CONFIRM" in told
    assert "your place" in (await me.say("CONFIRM"))[0]

    assert (await state(client))["stage"] == "briefing"
    await step(client, "briefing")
    briefing = " ".join(await me.read())
    assert "Before the hearing: bus lanes" in briefing
    assert "Reply MORE" in briefing  # by SMS a briefing comes in pages
    briefing += " ".join(await me.say("MORE")) + " ".join(await me.say("MORE"))
    assert "Riverside Cycling Campaign" in briefing  # every side's view
    assert "Riverside Traders' Association" in briefing

    asked = await step(client, "prompt")
    assert asked["stage"] == "ballot"
    table = " ".join(await me.read())
    assert "What one change would make the buses work better for you" in table
    assert "reply REPEAT" in asked["says"]  # by SMS the table comes in a digest
    table += " ".join(await me.say("REPEAT"))
    for said in tour.CONTRIBUTIONS:
        assert f": {said}" in table  # table-mates, under their letters
    letter = table.split("you are Member ")[1][0]
    await me.say("Buses every ten minutes, all evening.")

    opened = await step(client, "ballot")
    assert opened["stage"] == "vote"
    question = " ".join(await me.read())
    assert "buses should be free for everyone under 18" in question
    assert "Cast this vote?" in (await me.say("4"))[0]
    receipt = " ".join(await me.say("1"))
    assert "receipt" in receipt.lower()
    closed = await step(client, "close")
    assert closed["stage"] == "done" and closed["action"] is None
    results = " ".join(await me.read())
    voted = int(re.search(r"has closed: (\d+) of 12 voted", results)[1])
    async with db.sessions() as session:
        panel = select(Selection.participant_id).where(Selection.status == CONFIRMED)
        with_a_phone = select(func.count(func.distinct(Contact.participant_id))).where(
            Contact.participant_id.in_(panel)
        )
        assert voted == await session.scalar(with_a_phone)  # all but those with no phone
    assert "It must show the vote you cast" in results  # the visitor's vote is counted

    # The service's timers a few minutes on: the table-mates (by SMS) get their digest.
    await deliberation_run_due(relay, now=utcnow() + timedelta(minutes=6))
    async with db.sessions() as session:
        relayed = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.text.contains(f"{letter}: Buses every ten minutes, all evening."))
        )
    assert relayed == len(await mates_with_a_phone(db, me))  # in each one's digest

    async with db.sessions() as session:
        # Everything went out through the simulator, nothing through a provider.
        providers = (await session.execute(select(OutboxMessage.provider_id))).scalars()
        assert {p.split("-")[0] for p in providers if p} == {"sim"}
        assert (await audit.verify(session)).ok


async def mates_with_a_phone(db, me: Visitor) -> list[str]:
    """The visitor's table-mates (round 1) who have a contact: those who can write."""
    async with db.sessions() as session:
        seats = list((await session.execute(select(GroupSeat).where(GroupSeat.round == 1))).all())
        mine = await session.scalar(
            select(Contact.participant_id).where(Contact.address == me.address)
        )
        table = next(s.table_no for (s,) in seats if s.participant_id == mine)
        mates = [
            s.participant_id for (s,) in seats if s.table_no == table and s.participant_id != mine
        ]
        reachable = select(Contact.participant_id).where(Contact.participant_id.in_(mates))
        return sorted(set((await session.execute(reachable)).scalars()))


async def reach_the_tables(client, db) -> Visitor:
    """The journey up to the briefing read, by SMS, with the fewest words."""
    response = await client.post(f"{API}/join", json={"channel": "sms", "language": "en"})
    me = Visitor(client, db, "sms", (await response.json())["visitor"]["address"])
    await me.read()
    for answer in ("1", "1", "2", "2", "1", "1"):  # interested, agree, age, travel, woman, yes
        await me.say(answer)
    if (await step(client, "draw"))["stage"] == "call_up":
        await step(client, "call_up")
    await me.say("CONFIRM")
    await step(client, "briefing")
    await me.read()
    return me


async def test_table_mates_with_no_phone_leave_the_talking_to_one_who_has(
    aiohttp_client, sqlite_db
):
    """Those drawn with no phone answered the organisers and cannot write: when only one of
    the visitor's table-mates can, they say all of it, and the visitor reads every line."""
    settings = Settings(CONCORDER_DATABASE_URL=sqlite_db.url, _env_file=None)
    client = await aiohttp_client(
        create_app(settings, migrate=False, dispatch=False, offer_demo=True)
    )
    me = await reach_the_tables(client, sqlite_db)
    await steps.seat_tables(client.app[RELAY])
    keep, *silenced = await mates_with_a_phone(sqlite_db, me)
    async with sqlite_db.sessions.begin() as session:  # as if they had given no number
        gone = select(Contact.id).where(Contact.participant_id.in_(silenced))
        await session.execute(delete(OutboxMessage).where(OutboxMessage.contact_id.in_(gone)))
        for table in (InboundMessage, UnhandledInbound):
            await session.execute(
                update(table).where(table.contact_id.in_(gone)).values(contact_id=None)
            )
        await session.execute(
            update(Invitation)
            .where(Invitation.bound_contact_id.in_(gone))
            .values(bound_contact_id=None)
        )
        await session.execute(delete(Contact).where(Contact.participant_id.in_(silenced)))
    assert await mates_with_a_phone(sqlite_db, me) == [keep]

    await step(client, "prompt")
    await me.read()
    table = " ".join(await me.say("REPEAT"))
    letters = {line.split(":")[0] for line in table.splitlines()[1:]}
    assert len(letters) == 1  # one voice
    for said in tour.CONTRIBUTIONS:
        assert f": {said}" in table


async def test_the_tour_speaks_the_visitors_language(aiohttp_client, sqlite_db):
    settings = Settings(CONCORDER_DATABASE_URL=sqlite_db.url, _env_file=None)
    client = await aiohttp_client(
        create_app(settings, migrate=False, dispatch=False, offer_demo=True)
    )
    response = await client.post(f"{API}/join", json={"channel": "telegram", "language": "fr"})
    joined = await response.json()
    assert joined["visitor"]["channel"] == "telegram"
    fr = await state(client, "fr")
    assert fr["says"].startswith("Votre invitation est arrivée")
    es = await state(client, "es")
    assert es["says"].startswith("Su invitación ha llegado")
    me = Visitor(client, sqlite_db, "telegram", joined["visitor"]["address"])
    assert "Vous êtes invité" in " ".join(await me.read())
    # A step that is not the journey's next one does nothing.
    response = await client.post(f"{API}/steps", json={"step": "ballot"})
    assert response.status == 409


async def test_a_visitor_who_says_no_is_told_how_to_start_again(aiohttp_client, sqlite_db):
    settings = Settings(CONCORDER_DATABASE_URL=sqlite_db.url, _env_file=None)
    client = await aiohttp_client(
        create_app(settings, migrate=False, dispatch=False, offer_demo=True)
    )
    response = await client.post(f"{API}/join", json={"channel": "sms", "language": "en"})
    me = Visitor(client, sqlite_db, "sms", (await response.json())["visitor"]["address"])
    await me.read()
    await me.say("2")  # no, thank you
    left = await state(client)
    assert left["stage"] == "left" and left["action"] is None
    assert "delete its database (concorder.db)" in left["says"]


async def test_no_demo_with_an_assembly_configured(aiohttp_client, sqlite_db):
    settings = Settings(
        CONCORDER_DATABASE_URL=sqlite_db.url,
        CONCORDER_ASSEMBLY=str(EXAMPLE_ASSEMBLY / "assembly.toml"),
        _env_file=None,
    )
    client = await aiohttp_client(
        create_app(settings, migrate=False, dispatch=False, offer_demo=True)
    )
    assert (await client.get(API)).status == 404
    async with sqlite_db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Participant)) == 0


async def test_no_demo_on_a_database_that_holds_an_assembly(aiohttp_client, sqlite_db):
    async with sqlite_db.sessions.begin() as session:
        await audit.append(session, "recruitment.assembly", {"name": "Another assembly"})
    settings = Settings(CONCORDER_DATABASE_URL=sqlite_db.url, _env_file=None)
    client = await aiohttp_client(
        create_app(settings, migrate=False, dispatch=False, offer_demo=True)
    )
    response = await client.get(API)
    assert response.status == 404 and (await response.json())["demo"] is False


@pytest.mark.parametrize("name", ["assembly.toml", "pool.csv", "respondents-outside.csv"])
def test_the_demo_serves_the_example_as_it_is(name):
    """The package's copy is the example (a wheel has no examples/ directory)."""
    assert filecmp.cmp(example.FILES / name, EXAMPLE_ASSEMBLY / name, shallow=False)
