"""The one outbox writer (sequence numbers per contact, in bulk, kept on loaded contacts) and
the one contact choice (Telegram when it works, else SMS the person agreed to)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import select

from bot.services import outgoing
from bot.services.recruitment import invitations as recruitment_invitations
from flows.model import Outbound
from store import contacts, outbox
from store.models import Contact, OutboxMessage, OutboxStatus, Participant

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def row(id, channel, *, consent=False, unreachable=False, opted_out=False):
    return SimpleNamespace(
        id=id,
        channel=channel,
        sms_consent=consent,
        unreachable_at=NOW if unreachable else None,
        opted_out_at=NOW if opted_out else None,
    )


def test_telegram_first_then_sms_the_person_agreed_to():
    telegram, sms = row(1, "telegram"), row(2, "sms", consent=True)
    assert contacts.choose([sms, telegram]) is telegram
    assert contacts.choose([row(1, "telegram", unreachable=True), sms]) is sms
    assert contacts.choose([row(1, "telegram", opted_out=True), sms]) is sms
    assert contacts.choose([row(2, "sms")]) is None  # no consent to SMS
    assert contacts.choose([row(2, "sms", consent=True, opted_out=True)]) is None
    assert contacts.choose([]) is None
    # The oldest usable one of a channel; a blocked Telegram chat never wins over SMS.
    old, new = row(3, "sms", consent=True), row(4, "sms", consent=True)
    assert contacts.choose([old, new]) is old
    assert contacts.choose([telegram, sms], channels=("sms",)) is sms


def test_an_invitation_by_letter_sits_on_top_of_the_one_choice():
    telegram, sms = row(1, "telegram", unreachable=True), row(2, "sms", consent=True)
    assert recruitment_invitations.channel_for([telegram, sms], "handle") == ("sms", sms)
    assert recruitment_invitations.channel_for([telegram], "handle") == ("letter", None)
    assert recruitment_invitations.channel_for([telegram], None) == ("failed", None)


async def people(db, *specs):
    """One participant per spec, a list of (channel, address, sms_consent, unreachable)."""
    ids = []
    async with db.sessions.begin() as session:
        for spec in specs:
            participant = Participant()
            session.add(participant)
            await session.flush()
            for channel, address, consent, unreachable in spec:
                session.add(
                    Contact(
                        participant_id=participant.id,
                        channel=channel,
                        address=address,
                        sms_consent=consent,
                        unreachable_at=NOW if unreachable else None,
                    )
                )
            ids.append(participant.id)
    return ids


async def test_one_person_and_many_get_the_same_choice(db):
    ids = await people(
        db,
        [("sms", "+447700900401", True, False), ("telegram", "401", False, False)],
        [("telegram", "402", False, True), ("sms", "+447700900402", True, False)],
        [("sms", "+447700900403", False, False)],
        [],
    )
    async with db.sessions() as session:
        one = [await contacts.preferred_contact(session, pid) for pid in ids]
        many = await contacts.preferred_contacts(session, ids)
    assert [c.address if c else None for c in one] == ["401", "+447700900402", None, None]
    assert {pid: c.address for pid, c in many.items()} == {ids[0]: "401", ids[1]: "+447700900402"}


async def test_rows_for_many_contacts_take_each_contact_s_next_numbers(db, settings):
    first, second = await people(
        db, [("telegram", "501", False, False)], [("sms", "+447700900502", True, False)]
    )
    later = NOW + timedelta(hours=9)
    async with db.sessions.begin() as session:
        loaded = (
            await session.execute(select(Contact).where(Contact.participant_id == first))
        ).scalar_one()
        other = (await contacts.contacts_of(session, [second]))[second][0]
        written = await outbox.write(
            session,
            [
                outbox.Message(loaded, "a1"),
                outbox.Message(other, "b1", not_before=later, kind="broadcast"),
                outbox.Message(loaded, "a2", part=2, parts=2),
                outbox.Message(other, "b2", status=OutboxStatus.CANCELLED, error="why"),
            ],
            now=NOW,
        )
        # The loaded contact knows its new number: a reply in the same transaction follows.
        assert loaded.next_seq == 3
        participant = await session.get(Participant, first)
        await outgoing.enqueue(
            session, settings, participant, loaded, [Outbound(text="a3")], prompt_id=None, now=NOW
        )
    assert written == 4
    async with db.sessions() as session:
        rows = (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        got = [(r.text, r.seq, r.status, r.not_before, r.error) for r in rows]
        next_seqs = dict(
            (await session.execute(select(Contact.participant_id, Contact.next_seq))).all()
        )
    assert got == [
        ("a1", 1, "queued", NOW, None),
        ("b1", 1, "queued", later, None),
        ("a2", 2, "queued", NOW, None),
        ("b2", 2, "cancelled", NOW, "why"),
        ("a3", 3, "queued", NOW, None),
    ]
    assert next_seqs == {first: 4, second: 3}


async def test_nothing_to_write_writes_nothing(db):
    async with db.sessions.begin() as session:
        assert await outbox.write(session, [], now=NOW) == 0
