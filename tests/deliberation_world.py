"""A seated table for the conversation's tests: six (or any number of) confirmed panel
members with one contact each, one current allocation, one organiser; and reading what
each person was sent, in order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select

from bot.services import turns
from store.groups import GroupRun, GroupSeat
from store.models import Contact, OutboxMessage, Participant
from store.organisers import Organiser
from store.recruitment import CONFIRMED, REGISTERED, Invitation, PoolEntry, Selection, hash_code
from tests.transcript_harness import attachment

START = datetime(2027, 2, 6, 10, 15, tzinfo=UTC)
ORGANISER_CHAT = "990001"


@dataclass
class Member:
    letter: str
    channel: str
    language: str
    participant_id: str
    address: str
    handle: str

    @property
    def label(self) -> str:
        return f"{self.letter} ({self.channel})"


@dataclass
class World:
    relay: object
    members: dict[str, Member]
    seen: dict[str, int] = field(default_factory=dict)  # participant -> last outbox id read
    provider: int = 0

    def member(self, letter: str) -> Member:
        return self.members[letter]

    async def send(self, letter: str, text: str, now: datetime) -> None:
        """`text` may begin with an attachment: "[voice note]", "[photo] its caption"."""
        m = self.members[letter]
        self.provider += 1
        text, media = attachment(text)
        await turns.receive(
            self.relay,
            channel=m.channel,
            address=m.address,
            text=text,
            provider_id=f"in-{self.provider}",
            now=now,
            media=media,
        )

    async def read(self, participant_id: str) -> list[str]:
        """What was queued to one person since the last read (every part joined)."""
        async with self.relay.sessions() as session:
            rows = (
                await session.execute(
                    select(OutboxMessage)
                    .where(
                        OutboxMessage.participant_id == participant_id,
                        OutboxMessage.id > self.seen.get(participant_id, 0),
                    )
                    .order_by(OutboxMessage.id)
                )
            ).scalars()
            out: list[str] = []
            for row in rows:
                self.seen[participant_id] = row.id
                if row.part > 1 and out:
                    out[-1] += row.text
                else:
                    out.append(row.text)
        return out

    async def organiser_id(self) -> str | None:
        async with self.relay.sessions() as session:
            return (
                await session.execute(
                    select(Contact.participant_id).where(Contact.address == ORGANISER_CHAT)
                )
            ).scalar_one_or_none()


def phone(n: int) -> str:
    return f"+4477009{n:05d}"


async def seat_table(
    relay,
    seats: list[tuple[str, str, str]],
    *,
    rounds: int = 1,
    tables: int = 1,
    telegram_ids: bool = False,
    invited: bool = False,
) -> World:
    """Seat (letter, channel, language) members at table 1 of round 1 of a current run
    (and at further tables of their own, `tables` of them, one member each); `invited`:
    each came through an invitation, so WITHDRAW gives up their place."""
    members: dict[str, Member] = {}
    async with relay.sessions.begin() as session:
        session.add(Organiser(name="Org", telegram_id=ORGANISER_CHAT))
        run = GroupRun(
            run_id="GTEST",
            seed="1",
            algorithm="test",
            input_sha256="0" * 64,
            payload={"rounds": rounds, "members": []},
            result={},
            moves=[],
        )
        session.add(run)
        await session.flush()
        for n, (letter, channel, language) in enumerate(seats, start=1):
            pid = f"P{n:011d}"
            chat = 5880000000 + n if telegram_ids else 880000 + n  # real ids are this long
            address = phone(n) if channel == "sms" else str(chat)
            session.add(Participant(id=pid, language=language))
            await session.flush()
            session.add(
                Contact(participant_id=pid, channel=channel, address=address, sms_consent=True)
            )
            handle = f"member_handle_{n}"
            session.add(PoolEntry(participant_id=pid, telegram_handle=handle, attributes={}))
            session.add(Selection(participant_id=pid, draw_id="D1", status=CONFIRMED))
            if invited:
                session.add(
                    Invitation(
                        participant_id=pid,
                        code_hash=hash_code(f"seat-{pid}"),
                        channel=channel,
                        language=language,
                        status=REGISTERED,
                    )
                )
            for r in range(1, rounds + 1):
                session.add(
                    GroupSeat(
                        run_id="GTEST", round=r, table_no=1, letter=letter, participant_id=pid
                    )
                )
            members[letter] = Member(letter, channel, language, pid, address, handle)
        for extra in range(2, tables + 1):
            pid = f"X{extra:011d}"
            session.add(Participant(id=pid, language="en"))
            await session.flush()
            session.add(Selection(participant_id=pid, draw_id="D1", status=CONFIRMED))
            session.add(
                Contact(participant_id=pid, channel="telegram", address=str(770000 + extra))
            )
            for r in range(1, rounds + 1):
                session.add(
                    GroupSeat(
                        run_id="GTEST", round=r, table_no=extra, letter="A", participant_id=pid
                    )
                )
    return World(relay, members)
