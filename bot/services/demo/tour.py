"""Where the visitor is in the journey, read from the database, and what the page says:
what is happening, what the organisers would do next and why, in the visitor's language.

Stages, in order: join, register, draw, call_up (not drawn), confirm, briefing, prompt,
ballot, vote, done; `left` when the visitor said no, STOP or WITHDRAW.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from bot.relay import Relay
from bot.services.demo import people, steps
from flows.i18n import N_, translator
from store.ballots import Ballot
from store.calendar import CalendarJob
from store.deliberation import TablePrompt
from store.draw_records import DrawRun, completed_selection
from store.models import Participant
from store.recruitment import (
    CONFIRMED,
    DECLINED,
    FAILED,
    LAPSED,
    NOT_INTERESTED,
    REGISTERED,
    SELECTED,
    WITHDRAWN,
    Invitation,
    Selection,
)

# What the visitor's table-mates say when the prompt opens (in the visitor's language).
CONTRIBUTIONS = (
    N_("More buses in the evening: the last one leaves before my shift ends."),
    N_("Bus lanes kept clear at rush hour. Parked cars in them make everyone late."),
    N_("One ticket for an hour, however many buses you take."),
)


@dataclass
class Stage:
    name: str
    visitor: people.Visitor | None = None
    facts: dict[str, Any] = field(default_factory=dict)


async def stage_of(relay: Relay) -> Stage:
    visitor = await people.visitor(relay)
    if visitor is None:
        return Stage("join")
    pid = visitor.participant_id
    async with relay.sessions() as session:
        person = await session.get(Participant, pid)
        invitation = await people.invitation_status(session, pid)
        seat = await session.scalar(select(Selection).where(Selection.participant_id == pid))
        done = await completed_selection(session)
        facts = await _draw_facts(session, done, pid) if done else {}
        if person.opted_out or (seat is not None and seat.status == DECLINED):
            return Stage("left", visitor, facts)
        if invitation != REGISTERED:
            return Stage("left" if invitation in _GONE else "register", visitor, facts)
        if done is None:
            registered = await session.scalar(
                select(func.count()).select_from(Invitation).where(Invitation.status == REGISTERED)
            )
            return Stage("draw", visitor, {"respondents": registered})
        if seat is None or seat.status not in (SELECTED, CONFIRMED):
            return Stage("call_up", visitor, facts)
        if seat.status == SELECTED:
            return Stage("confirm", visitor, facts)
        briefed = await session.scalar(
            select(CalendarJob.id).where(
                CalendarJob.participant_id == pid,
                CalendarJob.subject == steps.BRIEFING,
                CalendarJob.status == "done",
            )
        )
        if briefed is None:
            return Stage("briefing", visitor, facts)
        if await session.scalar(select(TablePrompt.id).limit(1)) is None:
            return Stage("prompt", visitor, facts)
        ballot = await session.get(Ballot, steps.BALLOT)
    if ballot is None or ballot.status == "draft":
        return Stage("ballot", visitor, facts)
    if ballot.status == "open":
        return Stage("vote", visitor, facts)
    return Stage("done", visitor, facts)


_GONE = (NOT_INTERESTED, WITHDRAWN, LAPSED, FAILED)


async def _draw_facts(session, done: DrawRun, pid: str) -> dict[str, Any]:
    result = done.result or {}
    chances = result.get("probabilities") or {}
    called_up = await session.scalar(
        select(DrawRun.draw_id).where(DrawRun.kind == "replace").limit(1)
    )
    return {
        "seed": done.seed,
        "respondents": len(chances),
        "chance": chances.get(pid),
        "called_up": called_up is not None,
    }


# The organisers' next step at each stage: (step, button, why).
ACTIONS = {
    "draw": (
        "draw",
        N_("Run the draw now"),
        N_(
            "A fair draw by lot: 12 jurors and 4 reserves among the {respondents} people "
            "registered, with quotas so the jury looks like Riverside (region, age, gender). "
            "People alike get the same chance, and anyone can run the draw again from its "
            "seed to check it."
        ),
    ),
    "call_up": (
        "call_up",
        N_("Call me up from the reserve"),
        N_(
            "When someone drawn declines, a replacement is drawn who keeps the quotas "
            "(concorder replace). A juror has just declined; in this demo the place goes "
            "to you."
        ),
    ),
    "briefing": (
        "briefing",
        N_("Send the briefing now"),
        N_(
            "Balanced information: before each session every juror gets the same briefing, "
            "with the facts and the views of each side, in their language."
        ),
    ),
    "prompt": (
        "prompt",
        N_("Open the group prompt now"),
        N_(
            "Small-group deliberation: the jury sits at tables of six and each table gets a "
            "question. Members read each other under a letter, so what counts is what is "
            "said, not who says it."
        ),
    ),
    "ballot": (
        "ballot",
        N_("Open the ballot now"),
        N_(
            "A secret ballot: each juror votes on a recommendation. The vote is stored "
            "apart from the voter, and each voter gets a receipt code to check it was "
            "counted."
        ),
    ),
    "vote": (
        "close",
        N_("Close the ballot now"),
        N_(
            "At the close the votes are counted, the receipt codes published with the vote "
            "each carries, and everyone on the roll is told the result."
        ),
    ),
}

# What the page says at each stage.
SAYS = {
    "join": N_(
        "Riverside is choosing a citizens' jury by lot, and you are invited. Your invitation "
        "arrives as a text message or on Telegram, as you choose; the conversation does the "
        "rest, and this panel shows what the organisers do between your steps."
    ),
    "register": N_(
        "Your invitation has arrived: answer it in the chat. Agree to how your answers are "
        "kept, then answer three short questions. The draw uses them to balance the jury."
    ),
    "draw": N_(
        "You are registered, one of {respondents} people. Next, the organisers draw the jury."
    ),
    "call_up": N_(
        "You were not drawn this time. Your chance was {chance}: 12 places for "
        "{respondents} people, shared out so that the jury looks like Riverside. Most people "
        "are not drawn; some are kept in reserve for when a juror cannot come."
    ),
    "confirm": N_(
        "You have been drawn. Your chance was {chance}: 12 places for {respondents} people, "
        "shared out so that the jury looks like Riverside. Reply CONFIRM in the chat to take "
        "your place."
    ),
    "called_up": N_(
        "A juror has declined, and you are called up from the reserve: the place is yours if "
        "you want it. Reply CONFIRM in the chat to take it."
    ),
    "briefing": N_("Your place is confirmed. The organisers prepare the first briefing."),
    "prompt": N_("Read the briefing in the chat. On the day, the jury meets at small tables."),
    "ballot": N_(
        "Your table's question is in the chat. Answer it there: the others read you under "
        "your letter. By SMS the table's messages come grouped every few minutes, to save "
        "texts: reply REPEAT to read what was said now."
    ),
    "vote": N_("Vote in the chat: choose a level, then confirm it. Keep your receipt code."),
    "done": N_(
        "That is the journey: invitation, consent, registration, the draw, a briefing, a "
        "table and a secret ballot. To run your own assembly, set CONCORDER_ASSEMBLY to its "
        "file (see examples/citizens-jury/) and use a new database."
    ),
    "left": N_(
        "You have left the assembly. To start the demo again, stop the service, delete its "
        "database (concorder.db) and start it again."
    ),
}


# The page's own words for the tour.
LABELS = {
    "title": N_("Guided tour: the journey of an invited citizen"),
    "join": N_("Join as an invited citizen"),
    "sms": N_("By text message (SMS)"),
    "telegram": N_("On Telegram"),
    "next": N_("What the organisers do next"),
    "working": N_("Working…"),
}


def described(stage: Stage, language: str) -> dict[str, Any]:
    """The stage as the page shows it, in `language`."""
    t = translator(language)
    values = {
        "respondents": stage.facts.get("respondents", 0),
        "chance": _percent(stage.facts.get("chance"), language),
        "seed": stage.facts.get("seed", steps.DRAW_SEED),
    }
    out: dict[str, Any] = {
        "demo": True,
        "stage": stage.name,
        "says": t.gettext(SAYS[_said(stage)]).format(**values),
        "action": None,
        "visitor": None,
        "labels": {key: t.gettext(text) for key, text in LABELS.items()},
    }
    if stage.visitor is not None:
        out["visitor"] = {
            "channel": stage.visitor.channel,
            "address": stage.visitor.address,
            "language": stage.visitor.language,
        }
    if stage.name in ACTIONS:
        step, label, why = ACTIONS[stage.name]
        out["action"] = {
            "step": step,
            "label": t.gettext(label),
            "why": t.gettext(why).format(**values),
        }
    return out


def _said(stage: Stage) -> str:
    """What the page says: at the confirmation, whether drawn or called up."""
    if stage.name == "confirm" and stage.facts.get("called_up"):
        return "called_up"
    return stage.name


def _percent(value: float | None, language: str) -> str:
    from babel.numbers import format_percent

    return format_percent(value or 0, locale=language)
