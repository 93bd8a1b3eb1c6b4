"""A wave's work: opening it (the roll fixed and the wave open in one transaction), asking
everyone on the roll a hundred per transaction (what a crash interrupts the next tick
finishes: the roll says who was asked), one reminder to whoever has not finished, and
the close. Each takes its rows for update (SKIP LOCKED for the roll), so two instances
never do one piece of work twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update

from bot.relay import Relay
from bot.services.people import lock_participant
from bot.services.polls.records import PollProblem, get_poll
from bot.services.turns import start_flow
from flows import events
from flows.poll import NAME
from scheduler.audience import confirmed_panel
from scheduler.plan import after_quiet_hours
from store import audit
from store.models import utcnow
from store.polls import CLOSED, OPEN, PENDING, PollRoll, PollWave

CHUNK = 100


@dataclass
class Opened:
    poll: str
    wave: str
    respondents: int
    asked: int = 0
    not_asked: list[str] = field(default_factory=list)  # opted out


def _not_before(relay: Relay, now: datetime) -> datetime | None:
    """A wave or a reminder due in the calendar's quiet hours waits for their end."""
    calendar = relay.calendar
    if calendar is None:
        return None
    later = after_quiet_hours(now, calendar.zone, calendar.schedule.quiet_hours)
    return later if later > now else None


def _place(participant, poll_id: str, wave_id: str, *, fresh: bool) -> None:
    """Where they are in the questionnaire, set before the flow starts: its facts (the
    wave, open or not) are read from it."""
    state = participant.state or {}
    data = dict(state.get("data", {}))
    place = data.get(NAME) or {}
    if fresh or (place.get("id"), place.get("wave")) != (poll_id, wave_id):
        data[NAME] = {"id": poll_id, "wave": wave_id, "q": 0}
    participant.state = {**state, "data": data}


async def open_wave(
    relay: Relay,
    poll_id: str,
    wave_id: str,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
) -> Opened:
    """Open a wave now: the confirmed panel is its roll; then ask them all."""
    now = now or utcnow()
    async with relay.sessions.begin() as session:
        poll = await get_poll(session, poll_id)
        wave = (
            await session.execute(
                select(PollWave)
                .where(PollWave.poll_id == poll_id, PollWave.wave_id == wave_id)
                .with_for_update()
            )
        ).scalar_one_or_none()
        if wave is None:
            known = ", ".join(w["id"] for w in poll.definition["waves"])
            raise PollProblem(f"Poll {poll_id} has no wave {wave_id!r} (waves: {known}).")
        if wave.status != PENDING:
            raise PollProblem(f"Wave {wave_id} of {poll_id} is already {wave.status}.")
        panel = sorted(await confirmed_panel(session))
        if not panel:
            raise PollProblem(f"Nobody to ask in {poll_id}: no confirmed panel member yet.")
        opened = Opened(poll_id, wave_id, len(panel))
        if dry_run:
            return opened
        # An earlier wave still open closes: the same questions are not asked twice at once.
        await session.execute(
            update(PollWave)
            .where(PollWave.poll_id == poll_id, PollWave.status == OPEN)
            .values(status=CLOSED)
        )
        wave.status, wave.opened_at = OPEN, now
        wave.closes_at = now + timedelta(hours=poll.definition["open_hours"])
        await session.execute(
            insert(PollRoll),
            [
                {"poll_id": poll_id, "wave_id": wave_id, "participant_id": p, "asked": False}
                for p in panel
            ],
        )
        await audit.append(
            session,
            events.POLL_WAVE_OPENED,
            {"poll": poll_id, "wave": wave_id, "respondents": len(panel)},
            at=now,
        )
    await ask_roll(relay, poll_id, wave_id, opened, now=now)
    return opened


async def ask_roll(
    relay: Relay, poll_id: str, wave_id: str, opened: Opened | None = None, *, now=None
) -> Opened:
    """Ask everyone on the wave's roll not asked yet, a chunk per transaction."""
    now = now or utcnow()
    opened = opened or Opened(poll_id, wave_id, 0)
    while True:
        async with relay.sessions.begin() as session:
            chunk = list(
                (
                    await session.execute(
                        select(PollRoll)
                        .join(
                            PollWave,
                            (PollWave.poll_id == PollRoll.poll_id)
                            & (PollWave.wave_id == PollRoll.wave_id),
                        )
                        .where(
                            PollRoll.poll_id == poll_id,
                            PollRoll.wave_id == wave_id,
                            PollRoll.asked.is_(False),
                            PollWave.status == OPEN,
                        )
                        .order_by(PollRoll.participant_id)
                        .limit(CHUNK)
                        .with_for_update(skip_locked=True, of=PollRoll)
                    )
                ).scalars()
            )
            if not chunk:
                break
            for row in chunk:
                participant = await lock_participant(session, row.participant_id)
                row.asked, row.asked_at = True, now
                if participant.opted_out:
                    opened.not_asked.append(row.participant_id)
                    continue
                _place(participant, poll_id, wave_id, fresh=True)
                step = f"start:{poll_id}:{wave_id}"
                opened.asked += bool(
                    await start_flow(
                        session,
                        relay,
                        participant,
                        NAME,
                        step=step,
                        now=now,
                        not_before=_not_before(relay, now),
                    )
                )
        relay.outbox_signal.set()
    return opened


async def remind_due(relay: Relay, now: datetime | None = None) -> int:
    """One reminder to each person asked `reminder_hours` ago who has not finished, while
    the wave is open; returns how many were reminded."""
    now = now or utcnow()
    reminded = 0
    async with relay.sessions.begin() as session:
        waves = (await session.execute(select(PollWave).where(PollWave.status == OPEN))).scalars()
        for wave in list(waves):
            hours = (await get_poll(session, wave.poll_id)).definition["reminder_hours"]
            if not hours or (wave.closes_at and wave.closes_at <= now):
                continue
            rows = (
                await session.execute(
                    select(PollRoll)
                    .where(
                        PollRoll.poll_id == wave.poll_id,
                        PollRoll.wave_id == wave.wave_id,
                        PollRoll.asked.is_(True),
                        PollRoll.finished.is_(False),
                        PollRoll.reminded == 0,
                        PollRoll.asked_at <= now - timedelta(hours=hours),
                    )
                    .order_by(PollRoll.participant_id)
                    .limit(CHUNK)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
            for row in list(rows):
                row.reminded += 1
                participant = await lock_participant(session, row.participant_id)
                if participant.opted_out:
                    continue
                _place(participant, wave.poll_id, wave.wave_id, fresh=False)
                step = f"resume:{wave.poll_id}:{wave.wave_id}"
                if await start_flow(
                    session,
                    relay,
                    participant,
                    NAME,
                    step=step,
                    now=now,
                    not_before=_not_before(relay, now),
                ):
                    reminded += 1
                    await audit.append(
                        session,
                        events.POLL_REMINDED,
                        {"poll": wave.poll_id, "wave": wave.wave_id},
                        participant_id=participant.id,
                        at=now,
                    )
    if reminded:
        relay.outbox_signal.set()
    return reminded


async def close_due(relay: Relay, now: datetime | None = None) -> list[str]:
    now = now or utcnow()
    async with relay.sessions.begin() as session:
        due = list(
            (
                await session.execute(
                    select(PollWave)
                    .where(PollWave.status == OPEN, PollWave.closes_at <= now)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        for wave in due:
            wave.status = CLOSED
            await audit.append(
                session,
                events.POLL_WAVE_CLOSED,
                {"poll": wave.poll_id, "wave": wave.wave_id},
                at=now,
            )
    return [f"closed {w.poll_id}/{w.wave_id}" for w in due]
