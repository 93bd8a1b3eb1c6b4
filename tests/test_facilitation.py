"""Facilitators of the small-group tables, on SQLite and PostgreSQL: organisers name one per
table from the command line; a facilitator acts on their own table(s) from their chat or
number and is refused anywhere else; WHO shows who has spoken; HELP lists their commands;
the words are heard in every shipped language; `groups cost` compares the relay modes."""

from __future__ import annotations

from itertools import count

import pytest
from sqlalchemy import func, select

from bot.services import turns as service
from bot.services.facilitation import report_recipients
from bot.services.organisers import add_organiser
from flows.facilitation_words import (
    ALL,
    CLOSE,
    HIDE,
    MOVE,
    PAUSE,
    POST,
    PROMPT,
    RESUME,
    STATS,
    Command,
    parse,
)
from store.facilitation import FacilitatorRole
from store.groups import GroupSeat
from store.models import AuditEvent, OutboxMessage
from tests.test_draw import concorder
from tests.test_groups import confirmed_panel

FACILITATOR = "+447700900444"  # facilitates table 4
FACILITATOR_TG = "7123004"  # facilitates tables 1 and 2 in round 1 only
ORGANISER = "+447911000111"
_ids = count(1)


async def say(relay, address, text, *, channel="sms"):
    """What comes back to `address` for `text` (every reply, in order)."""
    async with relay.sessions() as session:
        before = (await session.execute(select(func.max(OutboxMessage.id)))).scalar_one() or 0
    await service.receive(
        relay, channel=channel, address=address, text=text, provider_id=f"f{next(_ids)}"
    )
    async with relay.sessions() as session:
        rows = await session.execute(
            select(OutboxMessage.text)
            .where(OutboxMessage.address == address, OutboxMessage.id > before)
            .order_by(OutboxMessage.id)
        )
        return "\n".join(rows.scalars())


async def tables(db, tmp_path):
    """30 confirmed members at 6 tables, two rounds; table 4 has a facilitator."""
    await confirmed_panel(db)
    assign = ["groups", "assign", "--size", "6", "--rounds", "2", "--seed", "7"]
    code, out, err = await concorder(db, tmp_path, *assign)
    assert code == 0, err
    code, out, err = await concorder(db, tmp_path, "groups", "facilitator", "4", FACILITATOR)
    assert code == 0, err
    assert "Named the facilitator of table 4 (every round) on sms" in out


async def audit_kinds(db) -> list[str]:
    async with db.sessions() as session:
        found = await session.execute(select(AuditEvent.kind).order_by(AuditEvent.seq))
        return list(found.scalars())


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("T4 Hello everyone", Command(POST, (4,), text="Hello everyone")),
        ("/t4@ConcorderBot Bonjour", Command(POST, (4,), text="Bonjour")),
        ("TOUS Bonjour à tous", Command(POST, ALL, text="Bonjour à tous")),
        ("todos Hola", Command(POST, ALL, text="Hola")),
        ("mesa 3 Hola", Command(POST, (3,), text="Hola")),
        ("PAUSE", Command(PAUSE)),
        ("pausa t4 T5", Command(PAUSE, (4, 5))),
        ("Continuer T4", Command(RESUME, (4,))),
        ("reanudar t4", None),  # an opt-in word's root is no command of ours
        ("CLOSE ALL", Command(CLOSE, ALL)),
        ("clore t2", Command(CLOSE, (2,))),
        ("Cerrar T2", Command(CLOSE, (2,))),
        ("cerrar la mesa", Command(CLOSE, problem="la")),
        ("HIDE #123", Command(HIDE, ref="123")),
        ("masquer 77", Command(HIDE, ref="77")),
        ("ocultar", Command(HIDE, problem="ref")),
        ("MOVE 4C T5", Command(MOVE, (5,), member="4c")),
        ("déplacer C vers T5", Command(MOVE, (5,), member="c")),
        ("mover P00012 a mesa 2", Command(MOVE, (2,), member="p00012")),
        ("move c", Command(MOVE, member="c", problem="table")),
        ("WHO", Command(STATS)),
        ("qui t4", Command(STATS, (4,))),
        ("quién ALL", Command(STATS, ALL)),
        (
            "QUESTION T4 Qu'est-ce qui compte ?",
            Command(PROMPT, (4,), text="Qu'est-ce qui compte ?"),
        ),
        ("pregunta ¿Qué importa?", Command(PROMPT, text="¿Qué importa?")),
        ("Hello everyone", None),
        ("end", None),  # END is an opt-out word, never ours
    ],
)
def test_the_words_are_heard_in_every_language(text, command):
    assert parse(text) == command


async def test_facilitators_are_named_listed_and_removed(db, tmp_path):
    await tables(db, tmp_path)
    for args, message in [
        (["groups", "facilitator", "4", FACILITATOR], "already facilitates table 4"),
        (["groups", "facilitator", "9", FACILITATOR], "Table 9?"),
        (["groups", "facilitator", "1", FACILITATOR, "--round", "3"], "rounds 1-2"),
        (["groups", "facilitator", "1", "12345"], "tg:123456789"),
        (["groups", "facilitator", "1", "+44 12"], "wrong length"),
        (["groups", "facilitator", "1", FACILITATOR, "--remove"], "does not facilitate"),
    ]:
        code, out, err = await concorder(db, tmp_path, *args)
        assert code == 1 and message in err, (args, out, err)
        assert "Traceback" not in out + err
    name = ["groups", "facilitator", "1", f"tg:{FACILITATOR_TG}", "--round", "1"]
    code, out, err = await concorder(db, tmp_path, *name, "--dry-run")
    assert code == 0 and "Would name" in out and "Dry run" in out
    async with db.sessions() as session:
        assert len((await session.execute(select(FacilitatorRole))).all()) == 1
    code, out, err = await concorder(db, tmp_path, *name)
    assert code == 0 and "Named the facilitator of table 1 (round 1) on telegram" in out
    code, out, err = await concorder(db, tmp_path, "groups", "facilitators")
    assert code == 0, err
    assert FACILITATOR in out and FACILITATOR_TG in out and "every round" in out
    code, out, err = await concorder(db, tmp_path, *name, "--remove")
    assert code == 0 and "Removed the facilitator of table 1" in out
    kinds = await audit_kinds(db)
    assert kinds.count("facilitator.named") == 2 and kinds.count("facilitator.removed") == 1
    async with db.sessions() as session:
        events = await session.execute(
            select(AuditEvent.data).where(AuditEvent.kind.like("facilitator.%"))
        )
        assert not any(FACILITATOR in str(data) for data in events.scalars())


async def test_a_facilitator_of_table_4_sees_and_acts_on_table_4_only(db, relay, tmp_path):
    await tables(db, tmp_path)
    answer = await say(relay, FACILITATOR, "WHO")
    assert answer.startswith("Table 4 (nothing under way): A 0, B 0")
    assert "Table 5" not in answer and "* passed" in answer
    for text in ("PAUSE T5", "T5 hello", "CLOSE T4 T5", "WHO T5", "MOVE 4A T5"):
        answer = await say(relay, FACILITATOR, text)
        assert answer == "Table 5 is not yours: you facilitate table 4.", text
    assert (await audit_kinds(db)).count("facilitation.refused") == 5
    answer = await say(relay, FACILITATOR, "PAUSE T9")
    assert answer == "There is no table 9 in round 1: the tables are 1 to 6."
    answer = await say(relay, FACILITATOR, "PAUSE")  # their only table
    assert answer.startswith("Nothing is under way at table 4: open a prompt there with PROMPT T4")
    answer = await say(relay, FACILITATOR, "HELP")
    assert "Facilitator commands: T4 followed by a message" in answer


async def test_organisers_facilitate_every_table_and_others_none(db, relay, tmp_path):
    await tables(db, tmp_path)
    async with db.sessions.begin() as session:
        await add_organiser(session, phone=ORGANISER)
    answer = await say(relay, ORGANISER, "WHO")
    assert [line.split(" (")[0] for line in answer.splitlines()[:6]] == [
        f"Table {n}" for n in range(1, 7)
    ]
    answer = await say(relay, ORGANISER, "PAUSE")
    assert answer.startswith("Which table?")
    stranger = "+447700900999"
    answer = await say(relay, stranger, "PAUSE T4")
    assert "Table" not in answer and "facilitate" not in answer
    answer = await say(relay, stranger, "HELP")
    assert "Facilitator commands" not in answer


async def test_a_report_goes_to_the_tables_facilitators_else_the_organisers(db, relay, tmp_path):
    await tables(db, tmp_path)
    async with db.sessions.begin() as session:
        await add_organiser(session, phone=ORGANISER)
    async with db.sessions.begin() as session:
        told = await report_recipients(session, "en", 1, 4)
        assert [c.address for _, c in told] == [FACILITATOR]
        told = await report_recipients(session, "en", 1, 3)
        assert [c.address for _, c in told] == [ORGANISER]


async def test_cost_compares_every_message_with_digests(db, tmp_path):
    await tables(db, tmp_path)
    code, out, err = await concorder(db, tmp_path, "groups", "cost", "--round", "1")
    assert code == 0, err
    async with db.sessions() as session:
        seats = (await session.execute(select(GroupSeat).where(GroupSeat.round == 1))).scalars()
        assert len(list(seats)) == 30
    cells = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in out.splitlines()
        if line.startswith("│")
    ]
    assert [row[0] for row in cells] == ["1", "2", "3", "4", "5", "6", "all"]
    members, on_sms, digest_now, every, digest, chosen = (int(x) for x in cells[-1][1:])
    assert (members, on_sms, digest_now) == (30, 15, 15)  # every other member is on SMS
    # At tables of 5, each SMS member gets 4 others x 3 messages of one segment: 12; the
    # digests put them in 4 messages of 2 segments: 8. SMS members choose DIGEST by default.
    assert (every, digest, chosen) == (15 * 12, 15 * 8, 15 * 8)
    assert "At 0.0079 per segment: EVERY 1.42, DIGEST 0.95, as chosen now 0.95" in out
    code, out, err = await concorder(db, tmp_path, "groups", "cost", "--each", "0")
    assert code == 1 and "at least 1" in err
