"""The members' side of a small-group conversation, pure: the words a seated member may
use while a prompt is open at their table, and every text a member reads.

While a prompt is open at their table (`Facts.table`), whatever a member writes is for
the table, except the words everyone has (STOP, HELP, a language's name, WITHDRAW,
MYDATA) and these, in every shipped language:

- REPEAT: what was said at the table since their last message, in one message;
- PASS: they have nothing to add (it counts as an answer for the fair share and closing);
- REPORT: the table's last messages go to the facilitator, privately;
- EVERY / DIGEST: each message as it is sent, or the table's messages grouped every few
  minutes (the default for SMS).

The service (bot/services/deliberation) stores and relays, from the events emitted here.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from babel.lists import format_list

from flows import events
from flows.ballot import answers_ballot
from flows.engine import Conversation
from flows.i18n import Translator
from flows.invitation import WITHDRAW_WORDS
from flows.model import Inbound
from flows.poll import answers_poll
from flows.rights import MYDATA_WORDS
from flows.statements import answers_statement
from flows.text import fold

REPEAT_WORDS = {"repeat", "repeter", "repetez", "repetir", "repite", "repetirlo"}
PASS_WORDS = {"pass", "ipass", "passe", "jepasse", "paso", "yopaso", "pasar"}
REPORT_WORDS = {"report", "signaler", "reportar"}
EVERY_WORDS = {"every", "chaque", "cada"}
DIGEST_WORDS = {"digest", "resume", "resumen"}
MEMBER_WORDS = REPEAT_WORDS | PASS_WORDS | REPORT_WORDS | EVERY_WORDS | DIGEST_WORDS

EVERY, DIGEST = "every", "digest"
MODE_KEY = "relay_mode"  # in State.data: the member's own choice, kept across prompts
FACILITATOR = "*"  # the letter a facilitator's post is stored under
# How long after a close a message to the table is answered as such, not out of context.
AFTER_CLOSE = timedelta(hours=1)


def relay_mode(chosen: str | None, channel: str) -> str:
    """What a member gets: their own choice, else each message on Telegram and a digest
    by SMS (one message fans out to the whole table: a digest costs far less)."""
    if chosen in (EVERY, DIGEST):
        return chosen
    return DIGEST if channel == "sms" else EVERY


def text_digest(text: str) -> str:
    """What the audit trail may hold of a text: a short hash, never the words."""
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


def heard_elsewhere(conv: Conversation, inbound: Inbound) -> bool:
    """Whether a member's message belongs to something other than their table: WITHDRAW
    and MYDATA, or the answer to the ballot, questionnaire or opinion statement they were
    just asked (or VOTE, OPINIONS). Neither the open table nor a table just closed takes
    it, so it reaches its flow: a vote typed as "4" is never lost to the table."""
    word = fold(inbound.text)
    if word in WITHDRAW_WORDS or word in MYDATA_WORDS:
        return True
    return (
        answers_ballot(conv, inbound)
        or answers_poll(conv, inbound)
        or answers_statement(conv, inbound)
    )


def member_words(conv: Conversation, inbound: Inbound) -> bool:
    """Take a seated member's message while their table's prompt is open."""
    table = conv.ctx.facts.table
    if table is None or table.closed_at is not None or inbound.button is not None:
        return False
    word = fold(inbound.text)
    if heard_elsewhere(conv, inbound):
        return False
    seat = {"table_prompt": table.table_prompt, "table": table.table, "letter": table.letter}
    if word in REPEAT_WORDS:
        conv.emit(events.REPEAT_ASKED, **seat)
    elif word in PASS_WORDS:
        conv.emit(events.PASSED, **seat)
        conv.say(conv._("Noted: you pass on this question."))
    elif word in REPORT_WORDS:
        conv.emit(events.REPORTED, **seat)
        conv.say(report_thanks(conv.t))
    elif word in EVERY_WORDS or word in DIGEST_WORDS:
        mode = EVERY if word in EVERY_WORDS else DIGEST
        conv.state.data[MODE_KEY] = mode
        conv.emit(events.RELAY_MODE_CHANGED, mode=mode, **seat)
        conv.say(mode_text(conv.t, mode))
    elif not inbound.text.strip() and inbound.media is not None:
        conv.say(
            conv._(
                "I can only read written messages, so this one did not reach your table: "
                "please write what you want to say."
            )
        )
    elif not inbound.text.strip():
        conv.say(conv._("Only written messages reach your table."))
    else:
        conv.emit(
            events.CONTRIBUTED,
            chars=len(inbound.text),
            sha=text_digest(inbound.text),
            **seat,
        )
        if table.paused:
            conv.say(paused_note(conv.t))
    return True


def after_the_close(conv: Conversation, inbound: Inbound) -> bool:
    """A message to the table just after its prompt closed (checked after every other
    command): say plainly it went nowhere, rather than answer as if out of context."""
    table = conv.ctx.facts.table
    if table is None or table.closed_at is None or inbound.button is not None:
        return False
    if conv.ctx.now - table.closed_at > AFTER_CLOSE:
        return False
    if not inbound.text.strip() or heard_elsewhere(conv, inbound):
        return False
    conv.emit(events.AFTER_CLOSE, table_prompt=table.table_prompt, letter=table.letter)
    conv.say(
        conv._(
            "This question is closed, so your message was not passed on to your table. "
            "The next question will come here."
        )
    )
    return True


# --------------------------------------------------------------------------- what members read


def prompt_text(
    t: Translator,
    *,
    round_no: int,
    table: int,
    letter: str,
    others: list[str],
    text: str,
    minutes: int,
    mode: str | None,
) -> str:
    """The prompt as one member gets it: their seat, the question, how to answer."""
    seat = (
        t.gettext(
            "Round {round}, table {table}: you are Member {letter}, with {others}.",
            round=round_no,
            table=table,
            letter=letter,
            others=format_list(sorted(others), locale=t.locale),
        )
        if others
        else t.gettext(
            "Round {round}, table {table}: you are Member {letter}, on your own for now.",
            round=round_no,
            table=table,
            letter=letter,
        )
    )
    lines = [
        seat,
        t.gettext("Question: {text}", text=text),
        t.gettext(
            'Reply here within {minutes} minutes: the others read you as "{letter}: ...". '
            "Reply PASS to pass, REPEAT to read what was said, REPORT to alert the "
            "facilitator privately.",
            minutes=minutes,
            letter=letter,
        ),
    ]
    if mode == EVERY:
        lines.append(t.gettext("You get each message as it is sent; reply DIGEST to group them."))
    elif mode == DIGEST:
        lines.append(
            t.gettext(
                "You get the table's messages grouped every few minutes; reply EVERY to "
                "get each one."
            )
        )
    return "\n".join(lines)


def table_help(conv: Conversation) -> str | None:
    """HELP while the member's table has a prompt open: the table's own words too."""
    table = conv.ctx.facts.table
    if table is None or table.closed_at is not None:
        return None
    return conv._(
        "At your table: reply PASS to pass, REPEAT to read what was said, REPORT to alert "
        "the facilitator privately, EVERY or DIGEST to choose how the table's messages "
        "reach you."
    )


def relay_line(letter: str, text: str) -> str:
    """'C: text' -- a member's seat letter, never their name or address."""
    return f"{letter}: {text}"


def passed_line(t: Translator, letter: str) -> str:
    return t.gettext("{letter} passes.", letter=letter)


def post_line(t: Translator, text: str) -> str:
    return t.gettext("Facilitator: {text}", text=text)


def removed_placeholder(t: Translator) -> str:
    return t.gettext("[removed]")


def hidden_notice(t: Translator, letter: str) -> str:
    return t.gettext("A message from {letter} was removed by the facilitator.", letter=letter)


def fair_share_note(t: Translator, limit: int) -> str:
    return t.ngettext(
        "Thank you! You have had your {n} message: let the others answer first. Yours is "
        "kept and reaches the table once everyone has had a say.",
        "Thank you! You have had your {n} messages: let the others answer first. Yours is "
        "kept and reaches the table once everyone has had a say.",
        limit,
    )


def paused_note(t: Translator) -> str:
    return t.gettext(
        "The facilitator has paused the table. Your message is kept and reaches the table "
        "when it resumes."
    )


def paused_notice(t: Translator) -> str:
    return t.gettext("The facilitator has paused the table for a moment.")


def resumed_notice(t: Translator) -> str:
    return t.gettext("The table resumes.")


def nudge_text(t: Translator, letter: str) -> str:
    return t.gettext(
        "Member {letter}, your table would like to hear from you: reply with your view, or PASS.",
        letter=letter,
    )


def closed_text(t: Translator) -> str:
    return t.gettext(
        "This question is now closed. Thank you! What your table said is kept for the assembly."
    )


def digest_text(t: Translator, table: int, lines: list[str]) -> str:
    return "\n".join([t.gettext("Table {table}, since last time:", table=table), *lines])


def repeat_text(t: Translator, lines: list[str]) -> str:
    if not lines:
        return t.gettext("Nothing new at your table since your last message.")
    return "\n".join([t.gettext("Said at your table since your last message:"), *lines])


def report_thanks(t: Translator) -> str:
    return t.gettext(
        "Thank you. The facilitator has been sent your table's last messages, privately."
    )


def mode_text(t: Translator, mode: str) -> str:
    if mode == EVERY:
        return t.gettext("From now on you get each message from your table as it is sent.")
    return t.gettext("From now on you get your table's messages grouped every few minutes.")


def report_text(
    t: Translator, *, who: str, letter: str, round_no: int, table: int, lines: list[str]
) -> str:
    """What an organiser or facilitator reads when a member sends REPORT."""
    head = t.gettext(
        "REPORT from Member {letter} ({who}), table {table}, round {round}. The table's "
        "last messages:",
        letter=letter,
        who=who,
        table=table,
        round=round_no,
    )
    return "\n".join([head, *(lines or ["-"])])
