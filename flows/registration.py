"""Registration: the assembly's questions one at a time, BACK to change the last answer,
then a summary to confirm. Answers are option keys; free text is never kept."""

from __future__ import annotations

from typing import Any

from flows import events
from flows.engine import Answer, Conversation, Flow
from flows.invitation import (
    assembly_name,
    in_language,
    is_start_command,
    recruitment_facts,
    reopened,
    wait,
)
from flows.text import fold

BACK_WORDS = {"back", "retour", "volver", "atras"}


def _questions(conv: Conversation) -> list[dict[str, Any]]:
    """The questions still to ask: those whose answer the pool does not already know."""
    facts = recruitment_facts(conv)
    known = facts.known or {}
    return [q for q in facts.questions if q["id"] not in known]


def _progress(conv: Conversation) -> dict[str, Any]:
    return conv.state.data.setdefault("registration", {"answers": {}, "order": []})


def _closed(conv: Conversation) -> bool:
    deadline = recruitment_facts(conv).registration_deadline
    return deadline is not None and conv.ctx.now > deadline


class Registration(Flow):
    name = "registration"

    def enter(self, conv: Conversation) -> None:
        if recruitment_facts(conv).invitation_status == "registered":
            self.ask(conv, "done")
            return
        if _closed(conv):
            self.closed(conv)
            return
        _progress(conv)
        if _questions(conv):
            conv.say(
                conv._(
                    "Thank you. A few short questions help us draw a group that "
                    "looks like everyone. Reply BACK at any time to change your "
                    "last answer."
                )
            )
        self.next_step(conv)

    def closed(self, conv: Conversation) -> None:
        conv.say(
            conv._(
                "Registration for {assembly} has closed. Thank you for your interest.",
                assembly=assembly_name(conv),
            )
        )
        conv.state.data.pop("registration", None)
        conv.finish()

    def next_step(self, conv: Conversation) -> None:
        answers = _progress(conv)["answers"]
        questions = _questions(conv)
        for question in questions:
            if question["id"] not in answers:
                self.ask(conv, "q:" + question["id"])
                return
        if not questions:  # nothing asked (none, or the pool knew every answer): no summary
            self.complete(conv)
            return
        self.ask(conv, "summary")

    def complete(self, conv: Conversation) -> None:
        conv.emit(events.REGISTRATION_COMPLETED, questions=len(_progress(conv)["answers"]))
        conv.say(
            conv._(
                "Thank you, you are registered for {assembly}. If you are drawn "
                "we will write to you.",
                assembly=assembly_name(conv),
            )
        )
        wait(conv, self.name, "done")

    def ask(self, conv: Conversation, step: str) -> None:
        _ = conv._
        if step == "done":
            conv.say(
                _(
                    "You are registered for {assembly}. We will write to you after the draw.",
                    assembly=assembly_name(conv),
                )
            )
            wait(conv, self.name, "done")
            return
        questions = _questions(conv)
        if step.startswith("q:"):
            index = next((i for i, q in enumerate(questions) if "q:" + q["id"] == step), None)
            if index is None:  # the assembly file changed under a waiting question
                self.next_step(conv)
                return
            question = questions[index]
            heading = _("Question {n} of {total}", n=index + 1, total=len(questions))
            conv.ask(
                step,
                f"{heading}\n{in_language(conv, question['text'])}",
                tuple(
                    conv.choices((o["key"], in_language(conv, o["label"])))[0]
                    for o in question["options"]
                ),
            )
            return
        answers = _progress(conv)["answers"]
        lines = [_("Your answers:")]
        for question in questions:
            labels = {o["key"]: in_language(conv, o["label"]) for o in question["options"]}
            chosen = labels.get(answers.get(question["id"], ""), "-")
            lines.append(f"- {in_language(conv, question['text'])} {chosen}")
        lines.append(_("Is this right?"))
        conv.ask(
            "summary",
            "\n".join(lines),
            conv.choices(
                ("confirm", _("Yes, register me")),
                ("back", _("Change the last answer")),
                ("restart", _("Start again")),
            ),
        )

    def reply(self, conv: Conversation, step: str, answer: Answer) -> None:
        progress = _progress(conv)
        if step == "done":  # registered, waiting for the draw
            self.ask(conv, "done")
            return
        if _closed(conv):
            self.closed(conv)
            return
        if answer.choice == "back" or (answer.choice is None and fold(answer.text) in BACK_WORDS):
            self.back(conv)
        elif step == "summary" and answer.choice == "confirm":
            self.complete(conv)
        elif step == "summary" and answer.choice == "restart":
            progress["answers"], progress["order"] = {}, []
            self.next_step(conv)
        elif step.startswith("q:") and answer.choice is not None:
            question_id = step[2:]
            progress["answers"][question_id] = answer.choice
            progress["order"] = [q for q in progress["order"] if q != question_id]
            progress["order"].append(question_id)
            self.next_step(conv)
        elif is_start_command(answer):
            reopened(conv)
        else:
            conv.not_understood()

    def back(self, conv: Conversation) -> None:
        """Forget the last answer and ask its question again."""
        progress = _progress(conv)
        if not progress["order"]:
            conv.repeat()
            return
        last = progress["order"].pop()
        progress["answers"].pop(last, None)
        self.ask(conv, "q:" + last)
