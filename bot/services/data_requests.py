"""MYDATA: a person asks for a copy of the data held about them (GDPR Art. 15 and 20).

The flow (flows/rights.py) acknowledges it and emits "participant.data_requested", which
the audit trail keeps (the channel only). Here every organiser is told who asked, by which
channel and when, and by when the answer is due: one month at most (Art. 12(3)). The
README says how a request is answered (`concorder person export`).
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession

from bot.relay import Relay
from bot.services.notices import tell_organisers, who
from flows import events
from flows.i18n import Translator
from flows.model import Event
from flows.rights import one_month_after
from store.models import Participant

CHANNEL_NAMES = {"sms": "SMS", "telegram": "Telegram"}


def _zone(relay: Relay) -> ZoneInfo:
    name = relay.calendar.schedule.timezone if relay.calendar is not None else "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


async def _requested(
    relay: Relay, session: AsyncSession, participant: Participant, event: Event, now: datetime
) -> None:
    name = await who(session, participant.id)
    channel = str(event.data.get("channel") or "")
    zone = _zone(relay)
    local = now.astimezone(zone)

    def compose(t: Translator) -> str:
        return "\n".join(
            [
                t.gettext(
                    "{who} asks for a copy of the data held about them (MYDATA), by "
                    "{channel}, on {when} ({zone}).",
                    who=name,
                    channel=CHANNEL_NAMES.get(channel, channel),
                    when=t.datetime(local),
                    zone=zone.key,
                ),
                t.gettext(
                    "Answer by {date} at the latest: `concorder person export` writes "
                    "everything held about them (see the README).",
                    date=t.date(one_month_after(local), "long"),
                ),
                *(
                    [
                        t.gettext(
                            "They have replied STOP, so the service will not answer them: "
                            "reach them another way, or they can reply START first."
                        )
                    ]
                    if event.data.get("opted_out")
                    else []
                ),
            ]
        )

    await tell_organisers(session, relay.settings, compose, kind="data_request", now=now)


def register(relay: Relay) -> None:
    """Tell the organisers of each MYDATA request, in the turn that receives it."""
    relay.hooks.on_event(events.DATA_REQUESTED, partial(_requested, relay))
