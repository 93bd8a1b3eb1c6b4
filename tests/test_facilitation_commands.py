"""The facilitators' operations from the command line and from two chats at once, on SQLite
and PostgreSQL: `concorder groups prompt|post|pause|resume|end|hide|stats` change the
tables and say so (a dry run changes nothing; bad input exits 1 with a sentence); two
facilitators pausing one table at the same moment pause it once and its members are told
once; a hidden message is announced to the others at the table, and audited."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot.services import deliberation, turns
from bot.services.facilitation import name_facilitator
from store.deliberation import Contribution, TablePrompt
from store.models import AuditEvent, OutboxMessage
from tests.deliberation_world import ORGANISER_CHAT, START, seat_table
from tests.test_draw import concorder

SEATS = [("A", "sms", "en"), ("B", "telegram", "en"), ("C", "telegram", "fr")]
FACILITATOR = "+447700900777"


async def kinds(db, kind: str) -> int:
    async with db.sessions() as session:
        return (
            await session.execute(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.kind == kind)
            )
        ).scalar_one()


async def test_the_tables_from_the_command_line(db, relay, tmp_path):
    world = await seat_table(relay, SEATS, tables=2)

    async def run(*args):
        return await concorder(db, tmp_path, "groups", *args)

    code, out, err = await run("stats")
    assert code == 0, err
    assert "A 0, B 0, C 0" in out and "not heard from" in out
    for args, message in [
        (["post", "Hello"], "Nothing is under way in round 1"),
        (["prompt"], "Give a prompt id"),
        (["prompt", "--text", "Why?", "--table", "9"], "Table 9? Round 1 has tables 1-2"),
        (["pause", "--round", "3"], "rounds 1-1"),
        (["hide", "99"], "There is no message 99"),
        (["cost", "--round", "2"], "rounds 1-1"),
    ]:
        code, out, err = await run(*args)
        assert code == 1 and message in err, (args, out, err)
        assert "Traceback" not in out + err

    code, out, err = await run(
        "prompt", "--text", "What matters most?", "--table", "1", "--dry-run"
    )
    assert code == 0 and "would open it at table(s) 1" in out and "Dry run" in out
    assert await kinds(db, "deliberation.prompt_opened") == 0
    code, out, err = await run("prompt", "--text", "What matters most?", "--table", "1")
    assert code == 0, err
    assert "opened at table(s) 1" in out
    for letter in "ABC":
        (told,) = await world.read(world.member(letter).participant_id)
        assert "What matters most?" in told

    code, out, err = await run("pause", "--dry-run")
    assert code == 0 and "would pause table(s) 1" in out
    code, out, err = await run("pause")
    assert code == 0 and "pause done at table(s) 1; unchanged 2" in out
    for letter in "ABC":
        assert len(await world.read(world.member(letter).participant_id)) == 1  # told once
    code, out, err = await run("resume", "--table", "1")
    assert code == 0 and "resume done at table(s) 1" in out

    await world.send("A", "Buses every ten minutes, please.", START)
    await deliberation.run_due(relay)
    async with db.sessions() as session:
        ref = (await session.execute(select(func.max(Contribution.id)))).scalar_one()
    code, out, err = await run("hide", str(ref), "--dry-run")
    assert code == 0 and f"Message {ref}: round 1, table 1, Member A." in out
    code, out, err = await run("hide", str(ref))
    assert code == 0 and f"Message {ref} from Member A at table 1 hidden; 3 member(s)" in out
    code, out, err = await run("post", "Thank you all.", "--table", "1")
    assert code == 0 and "posted to table(s) 1" in out
    code, out, err = await run("stats", "--table", "1")
    assert code == 0 and "A 0, B 0, C 0" in out  # a hidden message does not count
    code, out, err = await run("end", "--table", "1")
    assert code == 0 and "end done at table(s) 1" in out
    async with db.sessions() as session:
        statuses = (await session.execute(select(TablePrompt.status))).scalars().all()
    assert statuses == ["closed"]


async def test_a_hidden_message_is_announced_to_the_others_and_audited(db, relay):
    world = await seat_table(relay, SEATS)
    async with relay.sessions.begin() as session:
        await name_facilitator(session, FACILITATOR, 1)
    await deliberation.open_prompt(relay, round_no=1, text="Why?", now=START)
    await world.send("B", "Call me on 07700 900123, you fools.", START)
    await deliberation.run_due(relay, now=START)
    for letter in "ABC":
        await world.read(world.member(letter).participant_id)
    await turns.receive(
        relay, channel="sms", address=FACILITATOR, text="HIDE 1", provider_id="h1", now=START
    )
    for letter in "AC":  # B wrote it; A reads English, C French
        told = await world.read(world.member(letter).participant_id)
        assert len(told) == 1 and "B" in told[0], (letter, told)
    (event,) = await _events(db, "deliberation.hidden")
    assert "fools" not in str(event.data) and "07700" not in str(event.data)
    assert await kinds(db, "facilitation.asked") == 1


async def _last_reply(db, address) -> str:
    async with db.sessions() as session:
        return (
            await session.execute(
                select(OutboxMessage.text)
                .where(OutboxMessage.address == address)
                .order_by(OutboxMessage.id.desc())
                .limit(1)
            )
        ).scalar_one()


async def _events(db, kind):
    async with db.sessions() as session:
        return list(
            (await session.execute(select(AuditEvent).where(AuditEvent.kind == kind))).scalars()
        )


async def test_two_facilitators_pausing_at_once_pause_the_table_once(db, relay):
    """On PostgreSQL the two turns run side by side; on SQLite one after the other."""
    world = await seat_table(relay, SEATS)
    async with relay.sessions.begin() as session:
        await name_facilitator(session, FACILITATOR, 1)
    await deliberation.open_prompt(relay, round_no=1, text="Why?", now=START)
    for letter in "ABC":
        await world.read(world.member(letter).participant_id)

    await asyncio.gather(
        turns.receive(relay, channel="sms", address=FACILITATOR, text="PAUSE", provider_id="p1"),
        turns.receive(
            relay, channel="telegram", address=ORGANISER_CHAT, text="PAUSE T1", provider_id="p2"
        ),
    )
    for letter in "ABC":
        told = await world.read(world.member(letter).participant_id)
        assert told == ["The facilitator has paused the table for a moment."] or (
            letter == "C" and len(told) == 1
        ), (letter, told)
    assert len(await _events(db, "deliberation.paused")) == 1
    answers = [await _last_reply(db, address) for address in (FACILITATOR, ORGANISER_CHAT)]
    assert all(a.startswith(("Paused table 1", "Already paused: table 1")) for a in answers)
    assert any(a.startswith("Paused table 1") for a in answers), answers
    async with db.sessions() as session:
        (status,) = (await session.execute(select(TablePrompt.status))).scalars().all()
    assert status == "paused"
