"""Deliberative polls through the service: waves on the example assembly's calendar (a
moved session moves its wave; two instances open it once), answers paired across waves
by pseudonym (never the participant id), one reminder, STOP in the middle, and answers
arriving at once recorded once, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.bootstrap import build
from bot.services import turns
from bot.services.polls import tick
from bot.services.polls.pseudonyms import respondent
from bot.services.polls.report import OVERALL, poll_report
from scheduler.config import load_calendar
from scheduler.moves import move_session
from store.polls import OPEN, PENDING, PollAnswer, PollRoll, PollWave
from tests.conftest import EXAMPLE_ASSEMBLY
from tests.poll_world import messages, panel, say, voter
from tests.test_draw import concorder

BEFORE = datetime(2027, 1, 31, 18, 30, tzinfo=UTC)  # session s1's start - 48 h
AFTER = datetime(2027, 2, 6, 17, 0, tzinfo=UTC)  # session s3's start + 7 h


@pytest.fixture
def calendar():
    return load_calendar(EXAMPLE_ASSEMBLY / "assembly.toml")


async def _wave(db, wave_id: str) -> PollWave:
    async with db.sessions() as session:
        return await session.get(PollWave, ("views", wave_id))


async def _answers(db) -> list[PollAnswer]:
    async with db.sessions() as session:
        return list((await session.execute(select(PollAnswer))).scalars())


async def test_waves_follow_the_calendar_and_open_once_on_two_instances(
    relay, db, assembly, calendar
):
    people = [voter(n, "sms") for n in range(1, 4)]
    await panel(db.sessions, people)
    assert await tick(relay, BEFORE - timedelta(days=3)) == []
    wave = await _wave(db, "before")
    assert wave.status == PENDING and wave.due_at == BEFORE
    # The opening session moves a day later: its wave follows, two days before it.
    async with db.sessions.begin() as session:
        await move_session(
            session,
            calendar,
            "s1",
            datetime(2027, 2, 3, 18, 30, tzinfo=UTC),
            BEFORE - timedelta(days=3),
        )
    await tick(relay, BEFORE - timedelta(days=2))
    assert (await _wave(db, "before")).due_at == BEFORE + timedelta(days=1)
    assert await tick(relay, BEFORE) == []  # no longer due

    other = build(relay.settings, assembly=assembly, calendar=calendar, sessions=db.sessions)
    due = BEFORE + timedelta(days=1)
    done = await asyncio.gather(tick(relay, due), tick(other, due))
    assert sorted(sum(done, [])) == ["opened views/before"]
    for person in people:
        sent = await messages(db.sessions, person)
        assert len(sent) == 2 and sent[1].startswith("1/3. Buses should be free")
    wave = await _wave(db, "before")
    assert wave.status == OPEN and wave.closes_at == due + timedelta(hours=72)
    # The wave's time passes: it closes; a reply then is told so and not recorded.
    assert await tick(relay, due + timedelta(hours=73)) == ["closed views/before"]
    await say(relay, people[0], "4", now=due + timedelta(hours=74))
    assert (await messages(db.sessions, people[0]))[-1] == (
        "Transport questionnaire has closed; thank you all the same."
    )
    assert await _answers(db) == []


async def _answer_all(relay, people, replies, now):
    for person, theirs in zip(people, replies, strict=True):
        for reply in theirs:
            await say(relay, person, reply, now=now)


async def test_answers_pair_across_waves_by_pseudonym(relay, db, assembly, calendar):
    people = [voter(n, "sms") for n in range(1, 7)]
    await panel(db.sessions, people)
    await tick(relay, BEFORE)
    await _answer_all(relay, people, [["2", "2", "a"]] * 5 + [["1", "skip", "skip"]], BEFORE)
    await tick(relay, AFTER)
    # Five move up on the first question, the knowledge answer is now right for four.
    after = [["4", "3", "b"], ["4", "2", "b"], ["5", "2", "b"], ["3", "2", "B"], ["4", "2", "a"]]
    await _answer_all(relay, people[:5], after, AFTER)
    answers = await _answers(db)
    assert len(answers) == 6 * 3 + 5 * 3
    ids = {p.id for p in people}
    assert not any(a.respondent in ids for a in answers)  # never the participant id
    key = relay.invite_key
    by_person = {respondent(key, "views", p.id): p for p in people}
    assert {a.respondent for a in answers} == set(by_person)
    for a in answers:
        waves = {b.wave_id for b in answers if b.respondent == a.respondent}
        assert waves == (
            {"before", "after"} if by_person[a.respondent] != people[5] else {"before"}
        )
    async with db.sessions() as session:
        report = await poll_report(session, key, "views", min_cell=1)
    rows = {(r.question, r.group): r.result for r in report.rows}
    free = rows[("free-buses", OVERALL)]
    assert (free.n, free.before, free.after, free.change) == (5, 2.0, 4.0, 2.0)
    assert free.rank_biserial == 1.0
    assert rows[("fare-share", OVERALL)].after == 0.8
    assert rows[("knowledge-score", OVERALL)].change == pytest.approx(0.8)
    assert report.respondents == {"before": 6, "after": 5}


async def test_one_reminder_and_none_after_stop(relay, db, assembly, calendar):
    people = [voter(n, "sms") for n in range(1, 4)]
    await panel(db.sessions, people)
    await tick(relay, BEFORE)
    await _answer_all(relay, people, [["3", "3", "b"], ["2"], ["2", "STOP"]], BEFORE)
    assert await tick(relay, BEFORE + timedelta(hours=23)) == []
    assert await tick(relay, BEFORE + timedelta(hours=25)) == ["reminded 1"]
    assert await tick(relay, BEFORE + timedelta(hours=50)) == []
    finished, unfinished, stopped = [await messages(db.sessions, p) for p in people]
    assert finished[-1] == "Thank you: your answers are recorded."
    assert unfinished[-2] == "A reminder: Transport questionnaire has 2 questions left."
    assert unfinished[-1].startswith("2/3. The town centre should be car-free")
    assert stopped[-1].startswith("You have been unsubscribed")
    # What was answered before STOP stays; nothing else is asked.
    assert len([a for a in await _answers(db)]) == 3 + 1 + 1
    async with db.sessions() as session:
        rolls = {r.participant_id: r for r in (await session.execute(select(PollRoll))).scalars()}
    assert [rolls[p.id].finished for p in people] == [True, False, False]
    assert [rolls[p.id].answered for p in people] == [3, 1, 1]


async def test_answers_arriving_at_once_are_recorded_once(relay, db, assembly, calendar):
    person = voter(1, "sms")
    await panel(db.sessions, [person])
    await tick(relay, BEFORE)

    async def deliver(text: str, provider_id: str):
        return await turns.receive(
            relay,
            channel="sms",
            address=person.address,
            text=text,
            provider_id=provider_id,
            now=BEFORE,
        )

    # The same webhook delivered twice at once, then two replies at once: one answer
    # each, the questions taken one after the other.
    await asyncio.gather(deliver("4", "SM-twice"), deliver("4", "SM-twice"))
    await asyncio.gather(
        deliver("skip", f"SM-{uuid.uuid4().hex}"), deliver("SKIP", f"SM-{uuid.uuid4().hex}")
    )
    answers = {a.question_id: a.value for a in await _answers(db)}
    assert answers == {"free-buses": "4", "car-free": None, "fare-share": None}
    async with db.sessions() as session:
        roll = await session.get(PollRoll, ("views", "before", person.id))
    assert (roll.answered, roll.finished) == (3, True)
    thanks = await messages(db.sessions, person)
    assert thanks.count("Thank you: your answers are recorded.") == 1
    assert len([m for m in thanks if m.startswith("2/3.")]) == 1  # "4" was taken once


async def test_a_members_own_answers_are_in_the_copy_of_their_data(
    relay, db, assembly, calendar, tmp_path, monkeypatch
):
    claire, other = voter(1, "sms", "fr"), voter(2, "sms")
    await panel(db.sessions, [claire, other])
    await tick(relay, BEFORE)
    await _answer_all(relay, [claire, other], [["4", "passer", "b"], ["1", "1", "a"]], BEFORE)
    await say(relay, claire, "MYDATA", now=BEFORE)
    assert "Nous avons bien reçu votre demande" in (await messages(db.sessions, claire))[-1]

    # The organisers answer with `concorder person export`, on the service's own secret.
    monkeypatch.setenv("CONCORDER_SECRET_KEY", relay.invite_key.decode())
    code, out, err = await concorder(db, tmp_path, "person", "export", claire.address)
    assert code == 0, err
    given = json.loads(out)["tables"]["poll_answers"]["rows"]
    assert [(a["wave_id"], a["question"], a["value"], a["answer"]) for a in given] == [
        ("before", "Les bus devraient être gratuits pour les moins de 18 ans.", "4", "D'accord"),
        ("before", "Le centre-ville devrait être sans voitures le samedi.", None, None),
        (
            "before",
            "Quelle part du coût des bus les billets paient-ils ?",
            "half",
            "Environ la moitié",
        ),
    ]
    assert [a["skipped"] for a in given] == [False, True, False]
    assert claire.id not in {a["respondent"] for a in given}  # kept under a code, as stored
    # Only their own: the other member's answers are not in it.
    code, out, err = await concorder(db, tmp_path, "person", "export", other.address)
    assert [a["answer"] for a in json.loads(out)["tables"]["poll_answers"]["rows"]] == [
        "Strongly disagree",
        "Strongly disagree",
        "About a tenth",
    ]
