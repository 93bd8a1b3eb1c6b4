"""The first conversation of anyone who writes without an invitation."""

from __future__ import annotations

from flows import events
from flows.engine import Answer, Conversation, Flow, help_text
from flows.i18n import shipped_languages


class Welcome(Flow):
    name = "welcome"

    def enter(self, conv: Conversation) -> None:
        conv.emit(events.CONVERSATION_STARTED, flow=self.name)
        self.ask(conv, "menu")

    def ask(self, conv: Conversation, step: str) -> None:
        _ = conv._
        if step == "language":
            conv.ask(
                "language",
                _("Which language would you like?"),
                tuple(
                    conv.choices((code, conv.t.language_name(code)))[0]
                    for code in shipped_languages()
                ),
            )
            return
        conv.ask(
            "menu",
            _(
                "Hello, this is Concorder Relay. We send invitations, briefings and ballots "
                "for citizens' assemblies. We have no invitation for you at the moment."
            ),
            conv.choices(("about", _("About")), ("language", _("Language"))),
        )

    def reply(self, conv: Conversation, step: str, answer: Answer) -> None:
        if step == "language":
            if answer.choice is None:
                conv.not_understood()
                return
            previous, conv.state.language = conv.state.language, answer.choice
            conv.emit(events.LANGUAGE_CHANGED, previous=previous, language=answer.choice)
            conv.say(conv._("From now on I will write to you in English."))
            self.ask(conv, "menu")
            return
        if answer.choice == "about":
            conv.say(help_text(conv))
            self.ask(conv, "menu")
        elif answer.choice == "language":
            self.ask(conv, "language")
        else:
            conv.not_understood()
