"""The invitation: would you like to take part? Then consent, then registration.

Facts come in ctx.facts.recruitment (see bot/services/recruitment/facts.py): the assembly's name and
texts, this person's invitation status, and at sending time the Telegram link to include.
WITHDRAW works at every stage (an engine command, flows/rights.py): it leaves, gives up any
place on the panel and asks for the data to be erased.
"""

from __future__ import annotations

from flows import events
from flows.assembly import localised
from flows.engine import Answer, Conversation, Flow
from flows.facts import RecruitmentFacts

NO_RECRUITMENT = RecruitmentFacts()  # no assembly: every recruitment fact is empty
WITHDRAW_WORDS = {"withdraw", "retirer", "retirarme", "retiro"}


def recruitment_facts(conv: Conversation) -> RecruitmentFacts:
    return conv.ctx.facts.recruitment or NO_RECRUITMENT


def assembly_name(conv: Conversation) -> str:
    """The assembly's name in this person's language."""
    names = recruitment_facts(conv).name
    return in_language(conv, names) if names else conv._("the citizens' assembly")


def in_language(conv: Conversation, texts: dict[str, str]) -> str:
    facts = recruitment_facts(conv)
    return localised(texts, conv.state.language, facts.default_language)


def withdraw(conv: Conversation, by: str = "participant") -> None:
    """Leave the recruitment for good: no more messages, data marked for erasure, and a
    place on the panel given up. `by` is "participant" or "organiser" (`concorder
    withdraw`); the service frees the place and tells the organisers from the event."""
    conv.emit(events.WITHDREW, channel=conv.ctx.channel, by=by)
    name = assembly_name(conv)
    if by == "organiser":
        text = conv._(
            "The organisers have withdrawn you from {assembly}. We will send you no more "
            "messages and will delete your details.",
            assembly=name,
        )
    else:
        text = conv._(
            "You have withdrawn from {assembly}. We will send you no more messages and "
            "will delete your details.",
            assembly=name,
        )
    selection = recruitment_facts(conv).selection
    if selection is not None and selection.status in ("selected", "confirmed"):
        text += " " + conv._("Your place on the panel will be offered to someone else.")
    conv.say(text, compliance=True)
    conv.state.opted_out = True
    conv.state.data.pop("registration", None)
    conv.finish()


def refusal(conv: Conversation, reason: str) -> str:
    """Why a Telegram link did not bind (the service decided; the flow explains)."""
    if reason == "other":
        return conv._(
            "This Telegram account is already linked to another invitation. "
            "Please open your link from your own account."
        )
    if reason == "used":
        return conv._(
            "This invitation link has already been used from another account. "
            "Please use the account you first opened it with."
        )
    if reason == "expired" and conv.ctx.channel == "sms":
        return conv._("This invitation has expired. Thank you for your interest.")
    return conv._("This invitation link is not valid or has expired.")


def reopened(conv: Conversation) -> None:
    """'/start <code>' in the middle of a conversation: say if the link was refused, then
    ask the current question again."""
    reason = conv.state.data.pop("invitation_refused", None)
    if reason is not None:
        conv.say(refusal(conv, reason))
    conv.repeat()


def wait(conv: Conversation, flow: str, step: str) -> None:
    """Stay at a step with no question, so a later WITHDRAW still reaches the flow."""
    conv.finish()
    conv.state.flow, conv.state.step = flow, step


def is_start_command(answer: Answer) -> bool:
    """Telegram's '/start <code>' when someone opens their link again."""
    return answer.choice is None and answer.text.strip().lower().startswith("/start")


class Invitation(Flow):
    name = "invitation"

    def enter(self, conv: Conversation) -> None:
        refused = conv.state.data.pop("invitation_refused", None)
        if refused is None and recruitment_facts(conv).invitation_status == "lapsed":
            refused = "expired"
        if refused is not None:
            self.refuse(conv, refused)
            return
        self.ask(conv, "respond")

    def refuse(self, conv: Conversation, reason: str) -> None:
        conv.say(refusal(conv, reason))
        conv.finish()
        if recruitment_facts(conv).invitation_status is None:
            # Nobody we invited: show what anyone writing to us can do.
            conv.goto("welcome")

    def ask(self, conv: Conversation, step: str) -> None:
        _ = conv._
        name = assembly_name(conv)
        if step == "reminder":
            text = _(
                "A reminder: you are invited to take part in {assembly}. Would you like "
                "to take part?",
                assembly=name,
            )
        else:
            text = _(
                "You are invited to take part in {assembly}, a citizens' assembly chosen "
                "by lot. Taking part is voluntary. Would you like to take part?",
                assembly=name,
            )
            link = recruitment_facts(conv).invite_link
            if link and conv.ctx.channel == "sms":
                text += " " + _("You can also reply on Telegram: {link}", link=link)
            if conv.ctx.channel == "sms":
                text += " " + _("Reply STOP at any time to get no more messages.")
        conv.ask(
            "respond",
            text,
            conv.choices(("yes", _("Yes, tell me more")), ("no", _("No, thank you"))),
        )

    def reply(self, conv: Conversation, step: str, answer: Answer) -> None:
        if recruitment_facts(conv).invitation_status == "lapsed" and (
            answer.choice or is_start_command(answer)
        ):
            self.refuse(conv, "expired")
        elif answer.choice == "yes":
            conv.emit(events.INVITATION_ACCEPTED, channel=conv.ctx.channel)
            conv.goto("consent")
        elif answer.choice == "no":
            conv.emit(events.INVITATION_DECLINED, channel=conv.ctx.channel)
            conv.say(
                conv._(
                    "Thank you for letting us know. We will not contact you about "
                    "{assembly} again.",
                    assembly=assembly_name(conv),
                )
            )
            conv.finish()
        elif is_start_command(answer):
            reopened(conv)
        else:
            conv.not_understood()
