"""WITHDRAW at every stage, STOP of a panel member, an organiser's `concorder withdraw`, and
MYDATA: the person is told, the organisers are told (each in their language), a place on
the panel is freed and `replace` fills it, and nothing more goes to the person."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.bootstrap import read_assembly_file
from bot.services import draw, recruitment
from bot.services.organisers import add_organiser
from flows.assembly import RESERVED_KEYS
from flows.engine import Engine, Flow
from flows.facts import Facts, RecruitmentFacts
from flows.invitation import WITHDRAW_WORDS
from flows.model import Context, Inbound, State
from flows.rights import MYDATA_WORDS, Withdrawal, one_month_after, person_requests
from store import audit
from store.draw_records import completed_selection
from store.models import AuditEvent, Contact, Participant
from store.recruitment import (
    CONFIRMED,
    DECLINED,
    RESERVE,
    SELECTED,
    WITHDRAWN,
    Consent,
    Invitation,
    Selection,
    draw_candidates,
)
from tests.test_draw import (
    EXAMPLE,
    concorder,
    draw_panel_of_four,
    phone_of,
)
from tests.test_recruitment_flows import (
    PHONE,
    invitation_of,
    invited,  # noqa: F401 (a fixture)
    outbox_of,
    say,
)

ORGANISER_CHAT, ORGANISER_PHONE = "9001", "+447911000111"


@pytest.fixture
def calendar():
    """The example assembly's calendar: panel members get briefings and can say TIME."""
    return read_assembly_file(str(EXAMPLE))[1]


@pytest.fixture
async def organisers(db, relay, calendar):
    """Two organisers: Ann on Telegram in English, another by SMS who chose French."""
    async with db.sessions.begin() as session:
        await add_organiser(session, telegram_id=ORGANISER_CHAT, name="Ann")
        await add_organiser(session, phone=ORGANISER_PHONE)
    await say(db, relay, ORGANISER_PHONE, "FRANCAIS")


async def told_organisers(db) -> tuple[str, str]:
    """The last message to each organiser: (English by Telegram, French by SMS)."""
    return (await outbox_of(db, ORGANISER_CHAT))[-1], (await outbox_of(db, ORGANISER_PHONE))[-1]


async def organiser_messages(db) -> int:
    return len(await outbox_of(db, ORGANISER_CHAT)) + len(await outbox_of(db, ORGANISER_PHONE))


async def participant_of(db, address) -> Participant:
    async with db.sessions() as session:
        pid = await session.scalar(select(Contact.participant_id).where(Contact.address == address))
        return await session.get(Participant, pid)


async def assert_left(db, relay, address, headline: tuple[str, str], where: tuple[str, str]):
    """What every withdrawal leaves behind, whatever the stage and however it came."""
    person = await participant_of(db, address)
    english, french = await told_organisers(db)
    assert f"{person.id} {headline[0]}" in english and where[0] in english
    assert f"{person.id} {headline[1]}" in french and where[1] in french
    assert person.opted_out and person.erase_requested_at is not None
    async with db.sessions() as session:
        invitation = await session.scalar(
            select(Invitation).where(Invitation.participant_id == person.id)
        )
        consents = (
            (await session.execute(select(Consent).where(Consent.participant_id == person.id)))
            .scalars()
            .all()
        )
        candidates = {row["participant_id"] for row in await draw_candidates(session)}
        assert (await audit.verify(session)).ok
    assert invitation.status == WITHDRAWN and person.id not in candidates
    assert all(consent.withdrawn_at is not None for consent in consents)
    # Nothing more reaches the person, whatever they write.
    assert await say(db, relay, address, "hello?") == []
    assert await say(db, relay, address, "1") == []


WITHDRAWS = ("replied WITHDRAW and has left the assembly.", "a répondu RETIRER")
STOPS = ("replied STOP and has left the assembly.", "a répondu STOP")


async def _register(db, relay, address):
    for reply in ("1", "1", "1", "1", "1"):
        await say(db, relay, address, reply)


# Before the draw: (stage, what the person says first, their word, what the organisers read).
BEFORE_THE_DRAW = [
    ("invited", [], "WITHDRAW", WITHDRAWS, ("They had not registered.", "ne s'était pas")),
    ("consenting", ["1"], "withdraw", WITHDRAWS, ("They had not registered.", "ne s'était pas")),
    ("registering", ["1", "agree"], "Retirer", WITHDRAWS, ("not registered", "ne s'était pas")),
    ("registering, STOP", ["1", "agree", "2"], "STOP", STOPS, ("not registered", "ne s'était")),
    ("registered", _register, "retirarme", WITHDRAWS, ("registered for the draw", "inscrite")),
]


@pytest.mark.usefixtures("invited")
@pytest.mark.parametrize(
    "stage,before,word,headline,where", BEFORE_THE_DRAW, ids=[row[0] for row in BEFORE_THE_DRAW]
)
async def test_withdraw_before_the_draw(
    db, relay, organisers, stage, before, word, headline, where
):
    if callable(before):
        await before(db, relay, PHONE)
    else:
        for reply in before:
            await say(db, relay, PHONE, reply)
    replies = await say(db, relay, PHONE, word)
    if word == "STOP":
        assert replies == [
            "You have been unsubscribed and will get no more messages from us. "
            "Reply START to subscribe again."
        ]
    else:
        assert replies == [
            "You have withdrawn from Riverside Citizens' Jury on Transport. We will send you "
            "no more messages and will delete your details."
        ]
    await assert_left(db, relay, PHONE, headline, where)


# ------------------------------------------------------------- after the draw: the panel


@pytest.fixture
async def drawn(db, relay, assembly, organisers):
    """Sixteen registered people, a panel of four and a reserve of two drawn, everyone told."""
    _, _, result = await draw_panel_of_four(db)
    await recruitment.notify_draw_outcome(relay, assembly)
    return result


async def seats(db) -> dict[str, Selection]:
    async with db.sessions() as session:
        return {r.participant_id: r for r in (await session.execute(select(Selection))).scalars()}


async def replace_and_tell(db, relay, assembly, seed: str):
    """What `concorder replace --seed SEED` does, with no one named: fill the free places."""
    async with db.sessions() as session:
        done = await completed_selection(session)
        inp = await draw.replace_input(session, draw.recorded_rules(done), [])
    if len(inp.kept) == inp.panel_size:
        return inp, None
    replacement = draw.run_replace(inp, seed, "legacy")
    payload = {
        "mode": "replace",
        "input": replacement.canonical_input,
        "seed": seed,
        "seed_number": draw.seed_number(seed),
        "algorithm": "legacy",
    }
    async with db.sessions.begin() as session:
        await draw.record_replacement(session, replacement, payload)
    await recruitment.notify_draw_outcome(relay, assembly)
    return inp, replacement


PLACE_FREE = ("their place is free", "sa place est libre")
# After the draw: (stage, who, what they say first, their word and how they confirm it,
# organisers' headline, where).
ON_THE_PANEL = [
    ("selected", "panel", [], ("WITHDRAW", "1"), WITHDRAWS, PLACE_FREE),
    (
        "confirmed",
        "panel",
        ["CONFIRM"],
        ("withdraw", "YES"),
        WITHDRAWS,
        ("confirmed member", "confirmé"),
    ),
    (
        "member, told so",
        "panel",
        ["CONFIRM", "hello"],
        ("WITHDRAW", "Withdraw"),
        WITHDRAWS,
        PLACE_FREE,
    ),
    ("in the briefings", "panel", ["CONFIRM", "TIME"], ("retiro", "sí"), WITHDRAWS, PLACE_FREE),
    ("confirmed, STOP", "panel", ["CONFIRM"], ("STOP",), STOPS, ("confirmed member", "confirmé")),
    ("reserve", "reserve", [], ("WITHDRAW", "1"), WITHDRAWS, ("reserve list", "liste de réserve")),
]


async def withdrew_events(db) -> int:
    async with db.sessions() as session:
        kinds = await session.scalars(
            select(AuditEvent.kind).where(AuditEvent.kind == "participant.withdrew")
        )
        return len(list(kinds))


@pytest.mark.parametrize(
    "stage,who,before,words,headline,where", ON_THE_PANEL, ids=[row[0] for row in ON_THE_PANEL]
)
async def test_withdraw_after_the_draw_frees_the_place_and_replace_fills_it(
    db, relay, assembly, drawn, stage, who, before, words, headline, where
):
    pid = drawn.selected[0] if who == "panel" else drawn.reserve[0]
    phone = phone_of(pid)
    for reply in before:
        await say(db, relay, phone, reply)
    if stage == "in the briefings":
        assert "Your daily briefing arrives at" in (await outbox_of(db, phone))[-1]
    expected = RESERVE if who == "reserve" else CONFIRMED if "CONFIRM" in before else SELECTED
    assert (await seats(db))[pid].status == expected

    word, *confirmed = words
    told = await organiser_messages(db)
    replies = await say(db, relay, phone, word)
    if confirmed:
        # Asked first: until they confirm, nothing is given up and nobody is told.
        assert replies[0].startswith("Do you want to withdraw from Riverside")
        assert (await seats(db))[pid].status == expected
        assert await organiser_messages(db) == told and await withdrew_events(db) == 0
        replies = await say(db, relay, phone, confirmed[0])
    if word != "STOP":
        assert replies[0].startswith("You have withdrawn from Riverside")
    if who == "panel" and word != "STOP":
        assert replies[0].endswith("Your place on the panel will be offered to someone else.")
    if who == "panel":
        assert "concorder replace --seed SEED" in (await told_organisers(db))[0]
    row = (await seats(db))[pid]
    assert (row.status, row.reason) == (DECLINED, "withdrawn")
    await assert_left(db, relay, phone, headline, where)

    sent = len(await outbox_of(db, phone))
    inp, replacement = await replace_and_tell(db, relay, assembly, "7")
    if who == "reserve":
        # No place is free; the reserve list goes on without them.
        assert replacement is None and pid not in inp.candidate_tiers[0]
        return
    assert pid not in inp.kept and len(inp.kept) == 3
    (added,) = replacement.added
    # Someone new, of the same gender: the panel keeps the quotas it was drawn under.
    assert added not in drawn.selected and int(added[1:]) % 2 == int(pid[1:]) % 2
    assert "you have been selected" in (await outbox_of(db, phone_of(added)))[-1]
    on_panel = [p for p, r in (await seats(db)).items() if r.status in (SELECTED, CONFIRMED)]
    assert len(on_panel) == 4 and pid not in on_panel
    assert len(await outbox_of(db, phone)) == sent  # the draw's news is not for them
    async with db.sessions() as session:
        assert (await audit.verify(session)).ok


@pytest.mark.parametrize("answer", ["2", "no", "stay", "Sorry, I meant the other chat"])
async def test_a_member_who_does_not_confirm_keeps_their_place(db, relay, drawn, answer):
    pid = drawn.selected[0]
    phone = phone_of(pid)
    await say(db, relay, phone, "CONFIRM")
    told = await organiser_messages(db)
    await say(db, relay, phone, "RETIRER")
    await say(db, relay, phone, answer)
    assert (await seats(db))[pid].status == CONFIRMED
    assert await organiser_messages(db) == told and await withdrew_events(db) == 0
    person = await participant_of(db, phone)
    assert not person.opted_out and person.erase_requested_at is None
    # The question is gone: a later 1 is not taken as a late "yes, withdraw me".
    await say(db, relay, phone, "1")
    assert (await seats(db))[pid].status == CONFIRMED and await withdrew_events(db) == 0


@pytest.mark.usefixtures("invited")
async def test_withdraw_twice_is_harmless(db, relay, organisers):
    await say(db, relay, PHONE, "1")
    assert (await say(db, relay, PHONE, "WITHDRAW"))[0].startswith("You have withdrawn")
    told = await organiser_messages(db)
    assert await say(db, relay, PHONE, "WITHDRAW") == []
    # Back with START, then WITHDRAW again: confirmed again, the organisers not told twice.
    assert await say(db, relay, PHONE, "START")
    assert (await say(db, relay, PHONE, "withdraw"))[0].startswith("You have withdrawn")
    assert await organiser_messages(db) == told
    async with db.sessions() as session:
        kinds = list(
            (
                await session.execute(
                    select(AuditEvent.kind).where(AuditEvent.kind == "participant.withdrew")
                )
            ).scalars()
        )
        assert (await audit.verify(session)).ok
    assert len(kinds) == 2
    assert (await invitation_of(db, PHONE)).status == WITHDRAWN


class _Question(Flow):
    """A question whose options are labelled with words WITHDRAW and MYDATA use."""

    name = "question"

    def enter(self, conv):
        self.ask(conv, "q")

    def ask(self, conv, step):
        conv.ask("q", "Which?", conv.choices(("a", "Retiro"), ("b", "Mis datos")))

    def reply(self, conv, step, answer):
        conv.say(f"answered {answer.choice}")


@pytest.mark.parametrize(
    "text,said",
    [
        ("retiro", "answered a"),
        ("mis datos", "answered b"),
        ("withdraw", "You have withdrawn"),
        ("mydata", "We have received your request"),
    ],
)
def test_an_offered_option_is_an_answer_before_it_is_a_request(text, said):
    engine = Engine(flows=[_Question(), Withdrawal()], commands=[person_requests])
    ctx = Context(
        now=NOW,
        participant_id="P1",
        channel="sms",
        facts=Facts(recruitment=RecruitmentFacts(invitation_status="registered")),
    )
    state = engine.start(State(), "question", ctx).state
    turn = engine.handle(state, Inbound(channel="sms", text=text), ctx)
    assert turn.outbound[0].text.startswith(said)
    # Nothing a registration may offer is a word the service keeps for itself.
    assert WITHDRAW_WORDS | MYDATA_WORDS <= RESERVED_KEYS


class _StayOrLeave(Flow):
    """An assembly's own question about staying or leaving (a poll's, say)."""

    name = "question"

    def enter(self, conv):
        self.ask(conv, "q")

    def ask(self, conv, step):
        conv.ask("q", "Should the market stay?", conv.choices(("stay", "Stay"), ("leave", "Go")))

    def reply(self, conv, step, answer):
        conv.say(f"answered {answer.choice}")


def test_yes_at_a_question_of_staying_or_leaving_is_not_taken_for_withdrawing():
    engine = Engine(flows=[_StayOrLeave()])
    ctx = Context(now=NOW, participant_id="P1", channel="sms")
    state = engine.start(State(), "question", ctx).state
    turns = [engine.handle(state, Inbound(channel="sms", text=t), ctx) for t in ("YES", "no")]
    assert [turn.outbound[0].text for turn in turns] == ["answered None", "answered None"]


# ------------------------------------------------------------------ the organiser's command


async def test_an_organiser_withdraws_someone_from_the_command_line(
    db, relay, assembly, drawn, tmp_path
):
    pid = drawn.selected[1]
    phone = phone_of(pid)
    await say(db, relay, phone, "CONFIRM")
    args = ["--assembly", str(EXAMPLE)]

    code, out, err = await concorder(db, tmp_path, "withdraw", "+447700900777", *args)
    assert code == 1 and "Nobody with that participant id, phone number or Telegram id" in err
    code, out, err = await concorder(db, tmp_path, "withdraw", pid, "--dry-run", *args)
    assert code == 0, err
    assert "confirmed member: the place is freed" in out and "by SMS" in out and "Dry run" in out
    assert (await seats(db))[pid].status == CONFIRMED

    code, out, err = await concorder(
        db, tmp_path, "withdraw", phone, "--reason", "Moved to another town", *args
    )
    assert code == 0, err
    assert f"{pid} is withdrawn" in out and "concorder replace --seed SEED" in out
    assert (await outbox_of(db, phone))[-1] == (
        "The organisers have withdrawn you from Riverside Citizens' Jury on Transport. We will "
        "send you no more messages and will delete your details. Your place on the panel will "
        "be offered to someone else."
    )
    english, french = await told_organisers(db)
    assert f"{pid} has been withdrawn from the assembly by an organiser." in english
    assert "Reason given: Moved to another town" in english
    assert "retiré(e) de l'assemblée" in french
    assert "Motif indiqué : Moved to another town" in french
    async with db.sessions() as session:
        event = await session.scalar(
            select(AuditEvent).where(AuditEvent.kind == "participant.withdrew")
        )
    assert event.data == {"by": "organiser", "channel": "sms"}  # the reason is not kept
    await assert_left(
        db,
        relay,
        phone,
        ("has been withdrawn from the assembly by an organiser.", "a été retiré"),
        ("confirmed member", "confirmé"),
    )

    code, out, err = await concorder(db, tmp_path, "withdraw", pid, *args)
    assert code == 0 and "already withdrawn: nothing to do" in out

    code, out, err = await concorder(
        db, tmp_path, "replace", "--seed", "7", "--algorithm", "legacy", *args
    )
    assert code == 0, err
    assert "3 stay on the panel; 1 place(s) to fill" in out and "1 selected" in out
    on_panel = [p for p, r in (await seats(db)).items() if r.status in (SELECTED, CONFIRMED)]
    assert len(on_panel) == 4 and pid not in on_panel


async def test_erasing_a_panel_member_on_request_frees_their_place_first(
    db, relay, assembly, drawn, tmp_path
):
    pid = drawn.selected[2]
    phone = phone_of(pid)
    await say(db, relay, phone, "CONFIRM")
    args = ["--assembly", str(EXAMPLE)]

    code, out, err = await concorder(db, tmp_path, "erase", pid, "--dry-run", *args)
    assert code == 0, err
    assert f"{pid} will be withdrawn first and their place on the panel freed" in out
    assert (await seats(db))[pid].status == CONFIRMED

    code, out, err = await concorder(db, tmp_path, "erase", pid, *args)
    assert code == 0, err
    assert f"{pid} was withdrawn first and their place on the panel freed" in out
    assert f"Erased {pid}" in out
    row = (await seats(db))[pid]
    assert (row.status, row.reason) == (DECLINED, "withdrawn")
    english, _ = await told_organisers(db)
    assert f"{pid} has been withdrawn from the assembly by an organiser." in english
    assert "concorder replace --seed SEED" in english
    async with db.sessions() as session:
        assert (await audit.verify(session)).ok
    inp, replacement = await replace_and_tell(db, relay, assembly, "7")
    assert pid not in inp.kept and len(replacement.added) == 1


async def test_withdrawing_someone_who_cannot_be_reached_still_frees_the_place(
    db, relay, assembly, drawn, tmp_path
):
    pid = drawn.selected[2]
    async with db.sessions.begin() as session:
        contact = await session.scalar(select(Contact).where(Contact.participant_id == pid))
        contact.opted_out_at = datetime.now(UTC)  # the carrier says this number opted out
    told = len(await outbox_of(db, phone_of(pid)))
    code, out, err = await concorder(db, tmp_path, "withdraw", pid, "--dry-run")
    assert code == 0 and "no (cannot be reached)" in out
    code, out, err = await concorder(db, tmp_path, "withdraw", pid)
    assert code == 0, err
    assert len(await outbox_of(db, phone_of(pid))) == told
    assert (await seats(db))[pid].reason == "withdrawn"
    assert f"{pid} has been withdrawn" in (await told_organisers(db))[0]


async def test_someone_in_the_pool_never_invited_is_withdrawn_without_a_message(
    db, settings, relay, assembly, organisers, tmp_path
):
    pool = tmp_path / "pool.csv"
    pool.write_text(f"phone,language,household\n{PHONE},en,H1\n")
    await recruitment.import_pool(
        db.sessions, assembly, recruitment.parse_pool(pool, assembly).rows
    )
    code, out, err = await concorder(db, tmp_path, "withdraw", PHONE, "--dry-run")
    assert code == 0 and "in the pool, not invited" in out and "no (cannot be reached)" in out
    code, out, err = await concorder(db, tmp_path, "withdraw", PHONE)
    assert code == 0, err
    assert await outbox_of(db, PHONE) == []
    person = await participant_of(db, PHONE)
    assert person.erase_requested_at is not None and person.opted_out
    english, french = await told_organisers(db)
    assert (
        f"{person.id} has been withdrawn" in english and "They had not been invited yet." in english
    )
    # Nobody is invited after that, and the command says there is nothing more to do.
    await recruitment.send_invitations(db.sessions, settings, assembly, "RiversideJuryBot")
    assert await outbox_of(db, PHONE) == []
    code, out, err = await concorder(db, tmp_path, "withdraw", PHONE)
    assert code == 0 and "already withdrawn" in out


async def test_withdraw_refuses_someone_outside_the_recruitment(db, relay, organisers, tmp_path):
    await say(db, relay, "+447700900555", "hello")
    code, out, err = await concorder(db, tmp_path, "withdraw", "+447700900555")
    assert code == 1 and "not in the recruitment" in err and "Traceback" not in err + out


# -------------------------------------------------------------------------------- MYDATA


NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "moment,due",
    [
        (datetime(2026, 12, 1, 9, 0), datetime(2027, 1, 1, 9, 0)),
        (datetime(2027, 1, 31, 23, 0), datetime(2027, 2, 28, 23, 0)),
        (datetime(2028, 1, 30, 8, 0), datetime(2028, 2, 29, 8, 0)),
        (datetime(2027, 3, 31, 12, 0), datetime(2027, 4, 30, 12, 0)),
    ],
)
def test_an_access_request_is_due_one_month_later(moment, due):
    assert one_month_after(moment) == due


@pytest.mark.usefixtures("invited")
async def test_mydata_by_sms_is_acknowledged_and_the_organisers_told(db, relay, organisers):
    await say(db, relay, PHONE, "1", now=NOW)
    replies = await say(db, relay, PHONE, "MYDATA", now=NOW)
    assert replies == [
        "We have received your request for a copy of the data we hold about you. The "
        "organisers will answer you within one month, by January 1, 2027 at the latest, and "
        "will contact you here to agree how to send it to you safely."
    ]
    person = await participant_of(db, PHONE)
    english, french = await told_organisers(db)
    assert english.startswith(
        f"{person.id} asks for a copy of the data held about them (MYDATA), by SMS, on "
        "Tuesday, December 1, 2026 at 9:00\u202fAM (Europe/London)."
    )
    assert "Answer by January 1, 2027 at the latest: `concorder person export`" in english
    assert "demande une copie" in french and "au plus tard le 1 janvier 2027" in french
    assert PHONE not in english + french
    async with db.sessions() as session:
        event = await session.scalar(
            select(AuditEvent).where(AuditEvent.kind == "participant.data_requested")
        )
        assert (await audit.verify(session)).ok
    assert (event.participant_id, event.data) == (person.id, {"channel": "sms"})
    # The question asked before is still open: the conversation goes on.
    assert "Question 1 of 2" in (await say(db, relay, PHONE, "agree", now=NOW))[-1]


async def test_mydata_on_telegram_in_french_from_anyone(db, relay, organisers):
    await say(db, relay, "4242", "FRANCAIS", channel="telegram", now=NOW)
    replies = await say(db, relay, "4242", "mes données", channel="telegram", now=NOW)
    assert replies[0].startswith(
        "Nous avons bien reçu votre demande de copie des données que nous détenons sur vous."
    )
    assert "au plus tard le 1 janvier 2027" in replies[0]
    english, _french = await told_organisers(db)
    assert re.search(r"P[0-9A-F]{12} asks for a copy .* by Telegram, on ", english)
    assert "4242" not in english
    # Spanish words work too, whatever the person's language.
    replies = await say(db, relay, "4242", "MIS DATOS", channel="telegram", now=NOW)
    assert replies[0].startswith("Nous avons bien reçu")


@pytest.mark.usefixtures("invited")
async def test_mydata_after_stop_reaches_the_organisers_and_the_person_hears_nothing(
    db, relay, organisers
):
    await say(db, relay, PHONE, "STOP", now=NOW)
    sent = len(await outbox_of(db, PHONE))
    assert await say(db, relay, PHONE, "MYDATA", now=NOW) == []
    assert len(await outbox_of(db, PHONE)) == sent
    english, french = await told_organisers(db)
    assert "asks for a copy of the data held about them (MYDATA), by SMS" in english
    assert english.endswith(
        "They have replied STOP, so the service will not answer them: reach them another "
        "way, or they can reply START first."
    )
    assert "a répondu STOP" in french
    # Anything else after STOP is still a deliberate silence, told to no one.
    told = len(await outbox_of(db, ORGANISER_CHAT))
    assert await say(db, relay, PHONE, "hello?", now=NOW) == []
    assert len(await outbox_of(db, ORGANISER_CHAT)) == told


async def test_withdraw_from_someone_never_invited_is_answered_plainly(db, relay, organisers):
    replies = await say(db, relay, "+447700900555", "WITHDRAW", now=NOW)
    assert replies[0] == (
        "You are not taking part in an assembly, so there is nothing to withdraw from. "
        "Reply STOP to get no more messages."
    )
    await say(db, relay, "4343", "ESPANOL", channel="telegram", now=NOW)
    replies = await say(db, relay, "4343", "retirarme", channel="telegram", now=NOW)
    assert replies[0].startswith("No participa en ninguna asamblea")
    async with db.sessions() as session:
        withdrawn = await session.scalar(
            select(AuditEvent).where(AuditEvent.kind == "participant.withdrew")
        )
    assert withdrawn is None
