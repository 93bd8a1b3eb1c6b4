"""The small-group conversation on a real database (SQLite and PostgreSQL), as members
and facilitators notice it: STOP, pause and resume, a facilitator's post, a moved seat,
a hidden message that was never relayed, the scheduled opening run once by two
instances, what the audit trail and an erasure keep, and plain errors for bad input."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import select

from bot.bootstrap import build, create_app
from bot.services import deliberation
from bot.services.deliberation import DeliberationError
from bot.services.groups.records import move_member
from bot.services.privacy.erase import erase_person
from bot.settings import Settings
from flows import events
from flows.assembly import AssemblyError, parse_assembly
from flows.catalog import build_engine
from flows.config_file import AssemblyFile
from flows.facts import Facts, RecruitmentFacts, SelectionFacts, TableFacts
from flows.model import Context, Inbound, State
from scheduler.config import calendar_of
from store.deliberation import Contribution, TablePrompt
from store.models import AuditEvent
from tests.conftest import EXAMPLE_ASSEMBLY
from tests.deliberation_world import START, seat_table

SIX = [
    ("A", "sms", "en"),
    ("B", "sms", "en"),
    ("C", "telegram", "en"),
    ("D", "telegram", "en"),
    ("E", "sms", "en"),
    ("F", "telegram", "en"),
]
T = timedelta(seconds=20)


async def opened(relay, assembly=None, seats=SIX, **world):
    w = await seat_table(relay, seats, **world)
    await deliberation.open_prompt(relay, round_no=1, prompt="bus-priorities", now=START)
    for m in w.members.values():
        await w.read(m.participant_id)
    return w


async def say(w, letter, text, now):
    await w.send(letter, text, now)
    await deliberation.run_due(w.relay, now=now)


async def test_stop_means_never_messaged_again_and_the_table_is_not_held(relay, assembly):
    w = await opened(relay)
    f = w.member("F")
    await say(w, "F", "STOP", START + T)
    assert len(await w.read(f.participant_id)) == 1  # the opt-out's confirmation only
    now = START + 2 * T
    for letter in "ABCD":
        await say(w, letter, f"{letter} thinks so.", now)
    # Everyone still seated but E has answered: the prompt closes after its grace.
    await deliberation.run_due(relay, now=now + timedelta(minutes=2))
    c = await w.read(w.member("C").participant_id)
    assert c[-1].startswith("This question is now closed.")
    assert "E thinks so." not in " ".join(c)
    assert await w.read(f.participant_id) == []
    async with relay.sessions() as session:
        tp = (await session.execute(select(TablePrompt))).scalar_one()
    assert (tp.status, tp.close_reason) == ("closed", "answered")


async def test_a_pause_keeps_messages_and_resuming_relays_them_in_order(relay, assembly):
    w = await opened(relay)
    c = w.member("C").participant_id
    await deliberation.pause(relay, round_no=1, by="cli", now=START + T)
    assert await w.read(c) == ["The facilitator has paused the table for a moment."]
    await say(w, "D", "First, while paused.", START + 2 * T)
    await say(w, "F", "Second, while paused.", START + 3 * T)
    assert await w.read(w.member("D").participant_id) == [
        "The facilitator has paused the table for a moment.",
        "The facilitator has paused the table. Your message is kept and reaches the table "
        "when it resumes.",
    ]
    assert await w.read(c) == []
    result = await deliberation.resume(relay, round_no=1, by="cli", now=START + 4 * T)
    assert result.tables == [1]
    assert await w.read(c) == [
        "The table resumes.",
        "D: First, while paused.",
        "F: Second, while paused.",
    ]


async def test_a_post_reaches_everyone_and_stays_in_the_table_stream(relay, assembly):
    w = await opened(relay)
    await deliberation.post(relay, "Two more minutes, please.", round_no=1, by="cli", now=START + T)
    for letter in "CDF":  # Telegram: at once
        assert await w.read(w.member(letter).participant_id) == [
            "Facilitator: Two more minutes, please."
        ]
    await say(w, "A", "REPEAT", START + 2 * T)
    assert await w.read(w.member("A").participant_id) == [
        "Said at your table since your last message:\nFacilitator: Two more minutes, please."
    ]


async def test_a_moved_member_talks_at_their_new_table(relay, assembly):
    w = await seat_table(relay, SIX, tables=2)
    await deliberation.open_prompt(relay, round_no=1, prompt="bus-priorities", now=START)
    async with relay.sessions.begin() as session:
        move = await move_member(session, w.member("C").participant_id, 1, 2, now=START)
    await deliberation.run_due(relay, now=START + T)
    *_, prompt = await w.read(w.member("C").participant_id)  # the new table's question
    assert prompt.startswith(f"Round 1, table 2: you are Member {move.letter}, with A.")
    await w.read(w.member("D").participant_id)
    await w.read("X00000000002")
    await say(w, "C", "Hello from my new table.", START + 2 * T)
    assert await w.read(w.member("D").participant_id) == []  # the old table hears nothing
    assert await w.read("X00000000002") == [f"{move.letter}: Hello from my new table."]


async def test_a_message_hidden_before_it_went_out_is_never_relayed(relay, assembly):
    w = await opened(relay)
    for n in range(4):  # the fourth is over A's fair share: kept back
        await say(w, "A", f"idea {n}", START + (n + 1) * T)
    async with relay.sessions() as session:
        held = (
            await session.execute(select(Contribution).where(Contribution.held.is_(True)))
        ).scalar_one()
    hidden = await deliberation.hide(relay, held.id, by="cli", now=START + 5 * T)
    assert (hidden.letter, hidden.told) == ("A", 0)
    await deliberation.end(relay, round_no=1, by="cli", now=START + 6 * T)
    c = await w.read(w.member("C").participant_id)
    assert "A: idea 3" not in c and c[-1].startswith("This question is now closed.")
    with pytest.raises(DeliberationError, match="already hidden"):
        await deliberation.hide(relay, held.id, now=START + 7 * T)


async def test_speaking_counts_and_open_prompts(relay, assembly):
    w = await opened(relay)
    await say(w, "A", "one", START + T)
    await say(w, "A", "two", START + 2 * T)
    await say(w, "B", "PASS", START + 3 * T)
    counts = await deliberation.speaking_counts(relay, 1)
    assert counts[1]["A"].messages == 2 and counts[1]["A"].last_at == START + 2 * T
    assert (counts[1]["B"].messages, counts[1]["B"].passed) == (0, 1)
    assert counts[1]["F"] == deliberation.Speaking()
    (state,) = await deliberation.open_prompts(relay, 1)
    assert (state.answered, state.waiting) == (["A", "B"], ["C", "D", "E", "F"])
    lines = await deliberation.table_view(relay, 1, 1)
    assert [(line.letter, line.kind, line.text) for line in lines] == [
        ("A", "message", "one"),
        ("A", "message", "two"),
        ("B", "pass", ""),
    ]


@pytest.fixture
def calendar(assembly):
    return calendar_of(AssemblyFile.read(EXAMPLE_ASSEMBLY / "assembly.toml"))


async def test_the_scheduled_prompt_opens_once_at_its_time(relay, calendar, db):
    w = await seat_table(relay, SIX)
    a = w.member("A").participant_id
    due = START  # session s3 at 10:00 (UTC) plus 15 minutes
    assert await deliberation.run_due(relay, now=due - timedelta(seconds=1)) == 0
    assert await w.read(a) == []
    other = build(relay.settings, assembly=relay.assembly, calendar=calendar, sessions=db.sessions)
    if db.dialect == "postgresql":
        await asyncio.gather(
            deliberation.run_due(relay, now=due), deliberation.run_due(other, now=due)
        )
    else:
        await deliberation.run_due(relay, now=due)
        await deliberation.run_due(other, now=due)
    (prompt,) = await w.read(a)
    assert prompt.startswith("Round 1, table 1: you are Member A")
    async with relay.sessions() as session:
        assert len((await session.execute(select(TablePrompt))).scalars().all()) == 1


async def test_the_audit_trail_names_seats_never_words(relay, assembly):
    w = await opened(relay)
    await say(w, "A", "My secret words", START + T)
    await deliberation.hide(relay, 1, by="cli", now=START + 2 * T)
    await deliberation.end(relay, round_no=1, by="cli", now=START + 3 * T)
    async with relay.sessions() as session:
        found = (
            (
                await session.execute(
                    select(AuditEvent).where(AuditEvent.kind.like("deliberation.%"))
                )
            )
            .scalars()
            .all()
        )
    kinds = {e.kind for e in found}
    assert {
        "deliberation.prompt_opened",
        "deliberation.contributed",
        "deliberation.relayed",
        "deliberation.hidden",
        "deliberation.prompt_closed",
    } <= kinds
    assert all("secret" not in repr(e.data) for e in found)


async def test_erasure_blanks_what_a_member_wrote_and_keeps_the_seat(relay, assembly):
    w = await opened(relay)
    a = w.member("A").participant_id
    await say(w, "A", "Words to be erased", START + T)
    async with relay.sessions.begin() as session:
        await erase_person(session, a, reason="test", key=b"k" * 32, now=START + 2 * T)
    async with relay.sessions() as session:
        (c,) = (await session.execute(select(Contribution))).scalars().all()
    assert (c.participant_id, c.letter, c.text) == (a, "A", None)
    lines = await deliberation.table_view(relay, 1, 1)
    assert [(line.letter, line.text) for line in lines] == [("A", "")]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("minutes = 25", "prompts #1 (id 'bus-priorities') > minutes (line {}): Input should be"),
        ('session = "s3"\nafter', "prompts #1 (id 'bus-priorities') > session: no session has"),
        ("round = 1", "prompts #1 (id 'bus-priorities') > colour (line {}): unknown setting"),
    ],
)
def test_a_bad_prompt_is_named_with_its_place(change, problem):
    text = (EXAMPLE_ASSEMBLY / "assembly.toml").read_text()
    # The line named is the faulty setting's, wherever edits to the example move it: the
    # changed one's, or the one added after it.
    line = text[: text.index(change)].count("\n") + 1
    problem = problem.format(line + 1 if change == "round = 1" else line)
    broken = {
        "minutes = 25": "minutes = 0",
        'session = "s3"\nafter': 'session = "s9"\nafter',
        "round = 1": 'round = 1\ncolour = "red"',
    }[change]
    with pytest.raises(AssemblyError) as caught:
        parse_assembly(text.replace(change, broken, 1))
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"round_no": 9, "prompt": "bus-priorities"}, "Round 9? This allocation has rounds 1-1."),
        ({"round_no": 1, "prompt": "nope"}, "No prompt has the id 'nope'"),
        (
            {"round_no": 1, "prompt": "bus-priorities", "table": 4},
            "Table 4? Round 1 has tables 1-1.",
        ),
        ({"round_no": 1}, "Give either a prompt id from the assembly file or a text."),
    ],
)
async def test_bad_facilitator_input_is_said_plainly(relay, assembly, call, message):
    await seat_table(relay, SIX)
    with pytest.raises(DeliberationError, match=message.replace("?", r"\?")):
        await deliberation.open_prompt(relay, now=START, **call)


async def test_opening_twice_never_repeats_the_prompt(relay, assembly):
    w = await opened(relay)
    again = await deliberation.open_prompt(relay, round_no=1, prompt="bus-priorities", now=START)
    assert (again.tables, again.already) == ([], [1])
    busy = await deliberation.open_prompt(relay, round_no=1, text="Anything else?", now=START)
    assert (busy.tables, busy.busy) == ([], [1])
    assert await w.read(w.member("A").participant_id) == []


async def test_the_running_service_relays_a_message_at_once(aiohttp_server, db):
    """The whole service: a member writes through the simulator, and the table's Telegram
    members read it in well under a second (no timer tick in between)."""
    settings = Settings(
        CONCORDER_DATABASE_URL=db.url,
        CONCORDER_SMS_RATE=0,
        CONCORDER_TELEGRAM_RATE=0,
        CONCORDER_TELEGRAM_CHAT_RATE=0,
        _env_file=None,
    )
    server = await aiohttp_server(create_app(settings, migrate=False, dispatch=True))
    relay = build(settings, sessions=db.sessions)
    w = await seat_table(relay, SIX)
    await deliberation.open_prompt(relay, round_no=1, text="What matters most?")
    base = f"http://127.0.0.1:{server.port}/simulator/api/messages"
    d = w.member("D")
    async with aiohttp.ClientSession() as http:

        async def heard() -> list[str]:
            params = {"channel": "telegram", "address": d.address}
            async with http.get(base, params=params) as response:
                return [m["text"] for m in (await response.json())["messages"]]

        for _ in range(100):  # the prompt, delivered
            if any("What matters most?" in text for text in await heard()):
                break
            await asyncio.sleep(0.05)
        c = w.member("C")
        body = {"channel": "telegram", "address": c.address, "text": "Safety first."}
        started = asyncio.get_running_loop().time()
        async with http.post(base, json=body) as response:
            assert response.status == 202
        while "C: Safety first." not in await heard():
            assert asyncio.get_running_loop().time() - started < 3, await heard()
            await asyncio.sleep(0.02)


TABLE = TableFacts(table_prompt=7, round=1, table=4, letter="C")


@pytest.mark.parametrize(
    ("text", "kind", "said"),
    [
        ("REPEAT", events.REPEAT_ASKED, None),
        ("répéter", events.REPEAT_ASKED, None),
        ("Repetir", events.REPEAT_ASKED, None),
        ("pass", events.PASSED, "Noted: you pass on this question."),
        ("PASSE", events.PASSED, "Noted: you pass on this question."),
        ("paso", events.PASSED, "Noted: you pass on this question."),
        ("REPORT", events.REPORTED, "Thank you. The facilitator has been sent"),
        ("signaler", events.REPORTED, "Thank you. The facilitator has been sent"),
        ("reportar", events.REPORTED, "Thank you. The facilitator has been sent"),
        ("EVERY", events.RELAY_MODE_CHANGED, "From now on you get each message"),
        ("chaque", events.RELAY_MODE_CHANGED, "From now on you get each message"),
        ("RESUMEN", events.RELAY_MODE_CHANGED, "From now on you get your table's messages"),
        ("digest", events.RELAY_MODE_CHANGED, "From now on you get your table's messages"),
        ("I think pass is fine", events.CONTRIBUTED, None),
        ("WITHDRAW", events.WITHDREW, None),  # heard as everywhere, not by the table
        ("STOP", events.OPTED_OUT, "You have been unsubscribed"),
    ],
)
def test_a_seated_members_words_in_every_language(text, kind, said):
    engine = build_engine()
    facts = Facts(table=TABLE, recruitment=RecruitmentFacts(invitation_status="registered"))
    ctx = Context(now=START, participant_id="P1", channel="sms", facts=facts)
    turn = engine.handle(State(), Inbound(channel="sms", text=text), ctx)
    assert [e.kind for e in turn.events][:1] == [kind]
    if said is None:
        assert kind != events.CONTRIBUTED or turn.outbound == []
    else:
        assert turn.outbound[0].text.startswith(said)
    if kind == events.CONTRIBUTED:
        assert turn.events[0].data["letter"] == "C" and "pass" not in repr(turn.events[0].data)


def test_retirer_at_a_table_asks_and_gives_up_nothing_until_confirmed():
    engine = build_engine()
    member = RecruitmentFacts(invitation_status="registered", selection=SelectionFacts("confirmed"))
    ctx = Context(START, "P1", "sms", Facts(table=TABLE, recruitment=member))

    def send(state: State, text: str):
        return engine.handle(state, Inbound(channel="sms", text=text), ctx)

    asked = send(State(language="fr"), "Retirer")
    assert asked.events == [] and asked.outbound[0].text.startswith("Voulez-vous vous retirer")
    stays = send(asked.state, "2")
    assert stays.events == [] and stays.outbound[0].text.startswith("Très bien")
    # The table goes on: what they write next is for it, and a later 1 withdraws nothing.
    for text in ("On garde la 3 ?", "1"):
        turn = send(stays.state, text)
        assert [e.kind for e in turn.events] == [events.CONTRIBUTED]
    leaves = send(send(stays.state, "RETIRER").state, "oui")
    assert [e.kind for e in leaves.events] == [events.WITHDREW]


def test_without_an_open_prompt_the_words_are_not_the_tables():
    engine = build_engine()
    ctx = Context(now=START, participant_id="P1", channel="sms", facts=Facts())
    turn = engine.handle(State(), Inbound(channel="sms", text="PASS"), ctx)
    assert not any(e.kind.startswith("deliberation.") for e in turn.events)


async def test_a_table_writing_at_once_gets_every_message_once_in_one_order(relay, assembly):
    """Six members write at the same moment while relay steps run alongside (two
    instances' worth): no message is lost or doubled, and every member reads the table in
    the same order."""
    seats = [(letter, "telegram", "en") for letter in "ABCDEF"]
    w = await seat_table(relay, seats)
    await deliberation.open_prompt(relay, round_no=1, text="Go!", now=START)
    for m in w.members.values():
        await w.read(m.participant_id)
    other = build(relay.settings, assembly=relay.assembly, sessions=relay.sessions)

    async def member(letter: str) -> None:
        for n in range(4):
            await w.send(letter, f"{letter}{n}", START + T)

    async def relaying(instance) -> None:
        for _ in range(6):
            await deliberation.run_due(instance, now=START + T)
            await asyncio.sleep(0)

    await asyncio.gather(*(member(x) for x in "ABCDEF"), relaying(relay), relaying(other))
    await deliberation.end(relay, round_no=1, by="cli", now=START + 2 * T)
    orders = {}
    for m in w.members.values():
        lines = [t for t in await w.read(m.participant_id) if t[1] == ":"]
        assert sorted(lines) == sorted(
            f"{x}: {x}{n}" for x in "ABCDEF" if x != m.letter for n in range(4)
        )
        orders[m.letter] = lines
    for letter, lines in orders.items():
        for other_letter, others in orders.items():
            common = [x for x in lines if x in others]
            assert common == [x for x in others if x in lines], (letter, other_letter)


async def test_nobody_is_nudged_while_the_table_is_paused(relay, assembly):
    w = await opened(relay)
    f = w.member("F").participant_id
    await deliberation.pause(relay, round_no=1, by="cli", now=START + T)
    await deliberation.run_due(relay, now=START + timedelta(minutes=6))  # nudge time
    assert await w.read(f) == ["The facilitator has paused the table for a moment."]
    await deliberation.resume(relay, round_no=1, by="cli", now=START + timedelta(minutes=7))
    await deliberation.run_due(relay, now=START + timedelta(minutes=8))
    assert await w.read(f) == [
        "The table resumes.",
        "Member F, your table would like to hear from you: reply with your view, or PASS.",
    ]


async def test_a_ballot_opened_during_a_prompt_takes_its_answers_and_leaves_talk_to_the_table(
    relay, assembly
):
    from bot.services.ballots import opening, records
    from flows.ballot_spec import load_ballots
    from store.ballots import BallotRoll

    w = await opened(relay)
    ballots = load_ballots(str(EXAMPLE_ASSEMBLY / "assembly.toml"), ["en", "fr", "es"])
    async with relay.sessions.begin() as session:
        await records.create(session, ballots, source="file")
    await opening.open_ballot(relay, "fares", now=START + T)
    a, c = w.member("A").participant_id, w.member("C").participant_id
    assert "How much do you agree" in " ".join(await w.read(a))
    await w.read(c)

    await say(w, "A", "4", START + 2 * T)  # the ballot's answer, not a word to the table
    assert (await w.read(a))[-1].startswith("You chose: 4 Agree.")
    await say(w, "A", "Free buses would help my kids.", START + 3 * T)  # talk, mid-vote
    await say(w, "A", "YES", START + 4 * T)
    assert (await w.read(a))[-1].startswith("Your vote is cast.")
    await deliberation.run_due(relay, now=START + 5 * T)
    table = " ".join(await w.read(c))
    assert "A: Free buses would help my kids." in table
    assert "A: 4" not in table and "A: YES" not in table
    async with relay.sessions() as session:
        voted = (
            await session.execute(select(BallotRoll.voted).where(BallotRoll.participant_id == a))
        ).scalar_one()
    assert voted


async def test_a_vote_typed_just_after_the_table_closed_is_counted_not_lost(relay, assembly):
    """Within the hour after a prompt closes, a message to the table is told it went
    nowhere; an SMS answer to the ballot the member was just asked still votes."""
    from bot.services.ballots import opening, records
    from flows.ballot_spec import load_ballots

    w = await opened(relay)
    await deliberation.end(relay, round_no=1, by="cli", now=START + T)
    ballots = load_ballots(str(EXAMPLE_ASSEMBLY / "assembly.toml"), ["en", "fr", "es"])
    async with relay.sessions.begin() as session:
        await records.create(session, ballots, source="file")
    await opening.open_ballot(relay, "fares", now=START + 2 * T)
    a = w.member("A").participant_id
    assert "How much do you agree" in " ".join(await w.read(a))

    await say(w, "A", "4", START + 3 * T)
    assert (await w.read(a))[-1].startswith("You chose: 4 Agree.")
    await say(w, "A", "YES", START + 4 * T)
    assert (await w.read(a))[-1].startswith("Your vote is cast.")
    await say(w, "A", "One more thought for the table.", START + 5 * T)
    assert (await w.read(a))[-1].startswith("This question is closed")


async def test_help_during_a_prompt_names_the_tables_words(relay, assembly):
    w = await opened(relay)
    a = w.member("A").participant_id
    await say(w, "A", "HELP", START + T)
    (answer, *_) = await w.read(a)
    assert "Reply STOP at any time" in answer
    assert "At your table: reply PASS to pass, REPEAT to read what was said" in answer
    await deliberation.end(relay, round_no=1, by="cli", now=START + 2 * T)
    await w.read(a)
    await say(w, "A", "HELP", START + 3 * T)
    assert "At your table" not in " ".join(await w.read(a))


async def test_a_poll_question_during_a_prompt_takes_its_answer_and_leaves_talk_to_the_table(
    relay, assembly
):
    from bot.services.polls.records import assembly_polls, store_polls
    from bot.services.polls.waves import open_wave

    w = await opened(relay)
    async with relay.sessions.begin() as session:
        await store_polls(session, assembly_polls(relay), relay.calendar, START)
    await open_wave(relay, "views", "before", now=START + T)
    a, c = w.member("A").participant_id, w.member("C").participant_id
    first = " ".join(await w.read(a))
    await w.read(c)

    await say(w, "A", "4", START + 2 * T)  # the questionnaire's answer
    await say(w, "A", "Cheaper fares first.", START + 3 * T)  # talk, between questions
    await deliberation.run_due(relay, now=START + 4 * T)
    after = " ".join(await w.read(a))
    assert after and after not in first  # the next question came: "4" was taken
    table = " ".join(await w.read(c))
    assert "A: Cheaper fares first." in table
    assert "A: 4" not in table


async def test_a_statement_asked_during_a_prompt_takes_its_answer_and_leaves_talk_to_the_table(
    relay, assembly
):
    from bot.services.synthesis import records as statements
    from store.statements import StatementVote

    w = await opened(relay)
    async with relay.sessions.begin() as session:
        await statements.add(session, {"en": "Buses should be free for everyone under 18."})
    await statements.send(relay, now=START + T)
    a, c = w.member("A").participant_id, w.member("C").participant_id
    assert "Buses should be free" in " ".join(await w.read(a))
    await w.read(c)

    await say(w, "A", "D", START + 2 * T)  # disagree: the statement's answer
    await say(w, "A", "Not for older teenagers.", START + 3 * T)
    await deliberation.run_due(relay, now=START + 4 * T)
    table = " ".join(await w.read(c))
    assert "A: Not for older teenagers." in table and "A: D" not in table
    async with relay.sessions() as session:
        votes = (await session.execute(select(StatementVote.vote))).scalars().all()
    assert votes == [-1]
