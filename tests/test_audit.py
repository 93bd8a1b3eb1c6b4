"""The audit trail is a hash chain anyone can recompute; tampering is pinpointed."""

from sqlalchemy import update

from store import audit
from store.models import AuditEvent


async def test_chain_verifies_and_names_the_first_altered_event(db):
    async with db.sessions.begin() as session:
        for n in range(5):
            await audit.append(
                session, "ballot.cast", {"n": n, "word": "élu"}, participant_id=f"P{n}"
            )
    async with db.sessions() as session:
        result = await audit.verify(session)
    assert result.ok and result.checked == 5

    async with db.sessions.begin() as session:
        await session.execute(
            update(AuditEvent).where(AuditEvent.seq == 3).values(data={"n": 99, "word": "élu"})
        )
    async with db.sessions() as session:
        result = await audit.verify(session)
    assert not result.ok
    assert result.first_bad_seq == 3
    assert result.reason == "content altered"


async def test_deleted_event_breaks_the_chain(db):
    async with db.sessions.begin() as session:
        for n in range(3):
            await audit.append(session, "x", {"n": n})
    await audit.sequence_all(db.sessions)  # a linked event is gone, not one still waiting
    async with db.sessions.begin() as session:
        await session.delete(await session.get(AuditEvent, 2))
    async with db.sessions() as session:
        result = await audit.verify(session)
    assert (result.ok, result.first_bad_seq) == (False, 2)
