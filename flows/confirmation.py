"""After the draw: the selected CONFIRM or DECLINE by a deadline; reserves and everyone
else registered hear the outcome."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flows import events
from flows.engine import Answer, Conversation, Flow
from flows.invitation import (
    assembly_name,
    is_start_command,
    recruitment_facts,
    reopened,
    wait,
)


def _deadline(conv: Conversation):
    selection = recruitment_facts(conv).selection
    return selection.confirm_by if selection is not None else None


def _local(conv: Conversation, moment: datetime) -> datetime:
    """A moment in the assembly's (or the person's) time zone, as they read clocks."""
    try:
        return moment.astimezone(ZoneInfo(recruitment_facts(conv).timezone or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        return moment


class Confirmation(Flow):
    name = "confirmation"

    def enter(self, conv: Conversation) -> None:
        self.ask(conv, "confirm")

    def ask(self, conv: Conversation, step: str) -> None:
        _ = conv._
        name = assembly_name(conv)
        if step == "reserve":
            conv.say(
                _(
                    "Thank you for registering for {assembly}. You have been drawn as a "
                    "reserve: if a place opens, we will write to you.",
                    assembly=name,
                )
            )
            wait(conv, self.name, "reserve")
            return
        if step == "thanks":
            conv.say(
                _(
                    "Thank you for registering for {assembly}. The draw has taken place "
                    "and you were not selected this time.",
                    assembly=name,
                )
            )
            conv.finish()
            return
        deadline = _deadline(conv)
        if deadline is not None:
            when = conv.t.datetime(_local(conv, deadline))
            text = _(
                "Good news: you have been selected for {assembly}. Reply CONFIRM by "
                "{deadline} to take your place, or DECLINE to give it to someone else.",
                assembly=name,
                deadline=when,
            )
        else:
            text = _(
                "Good news: you have been selected for {assembly}. Reply CONFIRM to take "
                "your place, or DECLINE to give it to someone else.",
                assembly=name,
            )
        conv.ask(
            "confirm", text, conv.choices(("confirm", _("Confirm")), ("decline", _("Decline")))
        )

    def reply(self, conv: Conversation, step: str, answer: Answer) -> None:
        name = assembly_name(conv)
        if step == "reserve":
            self.ask(conv, "reserve")
            return
        deadline = _deadline(conv)
        late = deadline is not None and conv.ctx.now > deadline
        if answer.choice in ("confirm", "decline") and late:
            conv.emit(events.SELECTION_LATE_REPLY, choice=answer.choice)
            conv.say(
                conv._(
                    "Sorry, the deadline to reply has passed and your place has been "
                    "offered to someone else."
                )
            )
            conv.finish()
        elif answer.choice == "confirm":
            conv.emit(events.SELECTION_CONFIRMED)
            conv.say(
                conv._(
                    "Thank you, your place in {assembly} is confirmed. We will send "
                    "you the dates and the practical details.",
                    assembly=name,
                )
            )
            conv.finish()
        elif answer.choice == "decline":
            conv.emit(events.SELECTION_DECLINED)
            conv.say(conv._("Thank you for letting us know. Your place will go to someone else."))
            conv.finish()
        elif is_start_command(answer):
            reopened(conv)
        else:
            conv.not_understood()


class Outcome(Flow):
    """What anyone the draw has decided about hears when they write in afterwards."""

    name = "outcome"

    def enter(self, conv: Conversation) -> None:
        self.ask(conv, "status")

    def ask(self, conv: Conversation, step: str) -> None:
        _ = conv._
        name = assembly_name(conv)
        outcome = recruitment_facts(conv).outcome
        if outcome == "confirmed":
            text = _(
                "You are a member of {assembly}. Briefings and reminders will come here; "
                "reply HELP at any time.",
                assembly=name,
            )
        elif outcome == "reserve":
            text = _(
                "You are on the reserve list for {assembly}: if a place opens, we will "
                "write to you.",
                assembly=name,
            )
        elif outcome == "declined":
            text = _(
                "You have given up your place in {assembly}. Thank you for taking part "
                "in the draw.",
                assembly=name,
            )
        else:
            text = _(
                "The draw for {assembly} has taken place and you were not selected this "
                "time. Thank you for registering.",
                assembly=name,
            )
        conv.say(text)
        wait(conv, self.name, "status")

    def reply(self, conv: Conversation, step: str, answer: Answer) -> None:
        self.ask(conv, "status")
