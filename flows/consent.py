"""Consent to the assembly's data text, in the person's language, before any question."""

from __future__ import annotations

import hashlib

from flows import events
from flows.engine import Answer, Conversation, Flow
from flows.invitation import (
    assembly_name,
    in_language,
    is_start_command,
    recruitment_facts,
    reopened,
)


def text_digest(text: str) -> str:
    """The first 16 hex digits of the SHA-256 of the text as shown (UTF-8)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Consent(Flow):
    name = "consent"

    def enter(self, conv: Conversation) -> None:
        self.ask(conv, "agree")

    def ask(self, conv: Conversation, step: str) -> None:
        _ = conv._
        text = in_language(conv, recruitment_facts(conv).consent_text)
        conv.ask(
            "agree",
            "\n\n".join([text, _("Do you agree?")]),
            conv.choices(("agree", _("I agree")), ("disagree", _("I do not agree"))),
        )

    def reply(self, conv: Conversation, step: str, answer: Answer) -> None:
        facts = recruitment_facts(conv)
        if answer.choice == "agree":
            # The version and language say which text was agreed to, and its digest exactly
            # which words: the periods in it come from [retention] and can change on their own.
            conv.emit(
                events.CONSENT_GIVEN,
                version=facts.consent_version,
                language=conv.state.language,
                channel=conv.ctx.channel,
                text_sha256=text_digest(in_language(conv, facts.consent_text)),
            )
            conv.goto("registration")
        elif answer.choice == "disagree":
            conv.emit(events.CONSENT_REFUSED, version=facts.consent_version)
            conv.say(
                conv._(
                    "Without your agreement we cannot register you. Thank you for "
                    "your interest in {assembly}.",
                    assembly=assembly_name(conv),
                )
            )
            conv.finish()
        elif is_start_command(answer):
            reopened(conv)
        else:
            conv.not_understood()
