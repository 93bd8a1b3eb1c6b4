"""Chat commands: organisers broadcast, look at the schedule and ask for a sign-in link;
participants say LATE or CAN'T COME.

These are engine commands, not a flow a person is put in: they work whatever conversation
someone is in, and leave it where it was. Everything they know comes from ctx.facts
(filled by bot.services.organisers): `organiser` (a registered organiser), `audiences` (counts per
audience), `pending_broadcast`, `sessions` (all, in time order), `timezone`, `panel` (the
participant holds a seat). They emit events; the service turns
"broadcast.previewed" into a stored preview, "broadcast.confirmed" into the broadcast
itself and "attendance.reported" into a notice to every organiser.

The command and audience words work in every shipped language, whatever the organiser's own
(ORGANISER_WORDS): `DIFFUSER pour:reserve ...` is `/broadcast to:reserve ...`, PROGRAMA is
SCHEDULE. The schedule word takes nothing after it unless slashed, so a sentence starting
with "Programme" is left to the conversation.

SEND and DISCARD answer a preview (CANCEL would opt the organiser out: it is a global
keyword), on the channel the preview was made on. A preview lapses after PREVIEW_MINUTES.
A broadcast waits for the end of each person's quiet hours, unless its text starts with URGENT.

A sender number can be forged, so a preview made by SMS carries a one-time code, sent only
to the organiser's phone (`confirmation_code` in the facts, made by the service): SEND
without it sends nothing. MAX_CODE_FAILURES wrong codes lock the organiser's SMS commands
for LOCK_MINUTES ("organiser.sms_locked"; the service tells the other organisers). The
organiser facts carry `sms_failures` and `sms_locked_until`; the pending preview its
`origin` and `code_hash`. A Telegram organiser is known by their user id: plain SEND.

LINK (LIEN, ENLACE) on its own asks for a one-time sign-in link to the organiser page
("organiser.link_asked"); the service makes it and sends it to the organiser's own chat
(their Telegram, else their registered phone), so someone forging their number as an SMS
sender never receives it.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flows import events
from flows.briefing import reminded_session
from flows.engine import Conversation
from flows.facts import OrganiserFacts, PendingBroadcast, ScheduledSession
from flows.model import Inbound
from flows.text import fold, words

PREVIEW_MINUTES = 30
CODE_DIGITS = 6
MAX_CODE_FAILURES = 3
LOCK_MINUTES = 30
# The organisers' command and audience words in each shipped language, by what they mean
# (the English word, which is what is stored and audited). Any language's word works for
# everyone, as with the other keywords; messages name the reader's. No accents, so an SMS
# naming them stays in the cheaper alphabet; fold() accepts them typed with accents.
ORGANISER_WORDS = {
    "broadcast": {"en": "broadcast", "fr": "diffuser", "es": "difundir"},
    "schedule": {"en": "schedule", "fr": "programme", "es": "programa"},
    "to": {"en": "to", "fr": "pour", "es": "para"},  # the audience prefix: to:reserve
    "all": {"en": "all", "fr": "tous", "es": "todos"},
    "selected": {"en": "selected", "fr": "selection", "es": "seleccion"},
    "reserve": {"en": "reserve", "fr": "reserve", "es": "reserva"},
    "group": {"en": "group", "fr": "groupe", "es": "grupo"},
    "lang": {"en": "lang", "fr": "langue", "es": "idioma"},
}
MEANINGS = {fold(word): meaning for meaning, by in ORGANISER_WORDS.items() for word in by.values()}
COMMANDS = ("broadcast", "schedule")
AUDIENCE_KINDS = ("all", "selected", "reserve")
NAMED_AUDIENCES = ("group", "lang")  # group:NAME, lang:CODE
# LINK on its own asks for a one-time sign-in link to the organiser page.
LINK_WORDS = {"link", "lien", "enlace"}
LINK_MINUTES = 15

URGENT_WORDS = {"urgent", "urgente"}

# Answers to a preview: the English words the messages name, and their translations.
PREVIEW_ANSWERS = {
    "send": "send",
    "envoyer": "send",
    "enviar": "send",
    "discard": "discard",
    "abandonner": "discard",
    "descartar": "discard",
}

# Whole-message starts that report lateness or absence, in every shipped language.
LATE_PHRASES = {
    "late",
    "runninglate",
    "illbelate",
    "imlate",
    "retard",
    "enretard",
    "jesuisenretard",
    "jeseraienretard",
    "tarde",
    "llegotarde",
    "llegaretarde",
    "voyallegartarde",
}
ABSENT_PHRASES = {
    "cantcome",
    "cannotcome",
    "cantmakeit",
    "absent",
    "jenepeuxpasvenir",
    "jenepourraipasvenir",
    "nopuedoir",
    "nopuedovenir",
    "ausente",
}


def split_command(text: str) -> tuple[str, str] | None:
    """('broadcast', 'rest of the message') for '/broadcast@Bot rest' or 'BROADCAST rest'."""
    parts = text.strip().split(maxsplit=1)
    if not parts:
        return None
    head = parts[0].lstrip("/").split("@", 1)[0]
    return fold(head), (parts[1].strip() if len(parts) > 1 else "")


def meaning(word: str) -> str | None:
    """What an organiser's word means in any shipped language: 'Pour' -> 'to'."""
    return MEANINGS.get(fold(word))


def command(name: str) -> str | None:
    """'broadcast' or 'schedule' for a command word in any language, else None."""
    said = meaning(name)
    return said if said in COMMANDS else None


def parse_broadcast(rest: str) -> tuple[str, str]:
    """('audience', 'text') from 'to:reserve Hello all', 'pour:langue:fr Bonjour' or
    'Hello all' (audience 'all'). A known audience comes back in English ('lang:fr'),
    an unknown one as typed."""
    first, _, body = rest.strip().partition(" ")
    prefix, sep, audience = first.partition(":")
    if not sep or meaning(prefix) != "to":
        return "all", rest.strip()
    kind, sep, value = audience.partition(":")
    said = meaning(kind)
    if said in AUDIENCE_KINDS and not sep:
        return said, body.strip()
    if said in NAMED_AUDIENCES and sep:
        return f"{said}:{value.casefold()}", body.strip()
    return audience.casefold(), body.strip()


def audience_words(audience: str, language: str) -> str:
    """An audience as a reader of `language` would write it: 'lang:fr' -> 'langue:fr'."""
    kind, sep, value = audience.partition(":")
    words_of = ORGANISER_WORDS.get(kind)
    if words_of is None:
        return audience
    return words_of.get(language, kind) + sep + value


def is_urgent(text: str) -> bool:
    """A broadcast whose text starts with URGENT goes out at once, even in quiet hours."""
    said = words(text)
    return bool(said) and said[0] in URGENT_WORDS


def valid_audience(audience: str) -> bool:
    """True for an audience parse_broadcast understood: 'reserve', 'group:north'."""
    kind, sep, value = audience.partition(":")
    return (kind in AUDIENCE_KINDS and not sep) or (kind in NAMED_AUDIENCES and bool(value))


def code_digest(salt: str, code: str) -> str:
    """What is stored of a confirmation code: "salt$sha256(salt:code)"."""
    return f"{salt}${hashlib.sha256(f'{salt}:{code}'.encode()).hexdigest()}"


def code_matches(stored: str | None, given: str) -> bool:
    if not stored or "$" not in stored:
        return False
    return hmac.compare_digest(stored, code_digest(stored.split("$", 1)[0], given.strip()))


def attendance_report(text: str) -> str | None:
    """'late' or 'absent' when a message starts by saying so ("CAN'T COME, sick")."""
    said = words(text)
    for length in range(min(len(said), 5), 0, -1):
        phrase = "".join(said[:length])
        if phrase in LATE_PHRASES:
            return "late"
        if phrase in ABSENT_PHRASES:
            return "absent"
    return None


def organiser_commands(conv: Conversation, inbound: Inbound) -> bool:
    if inbound.button is not None:
        return False
    facts = conv.ctx.facts
    organiser = facts.organiser
    parsed = split_command(inbound.text)
    if parsed is None:
        return False
    name, rest = parsed
    asked = command(name)
    slashed = inbound.text.lstrip().startswith("/")
    if organiser is None:
        if asked == "broadcast" or (asked == "schedule" and slashed):
            # Not an organiser: the attempt is recorded and the conversation answers as usual.
            conv.emit(events.COMMAND_REFUSED, command=asked, channel=inbound.channel)
            return False
        return _attendance(conv, inbound)
    on_sms = inbound.channel == "sms"
    pending = facts.pending_broadcast
    answer = PREVIEW_ANSWERS.get(name)
    # Over SMS, SEND carries the preview's code ("SEND 482193"); on Telegram it is bare.
    answers_preview = bool(answer) and pending is not None and (on_sms or not rest)
    asks_link = name in LINK_WORDS and not rest
    # The schedule takes nothing after it: "Programme de demain ?" is not asking for it.
    if asked == "schedule" and rest and not slashed:
        asked = None
    if asked is None and not answers_preview and not asks_link:
        return False
    if on_sms and _sms_locked(conv, organiser, asked or (answer if answers_preview else "link")):
        return True
    if asks_link:
        conv.emit(events.SIGNIN_LINK_ASKED, organiser=organiser.id, channel=inbound.channel)
        conv.say(
            conv._(
                "A sign-in link for the organiser page is on its way to your chat. It works "
                "once, within {minutes} minutes.",
                minutes=LINK_MINUTES,
            )
        )
    elif asked == "broadcast":
        _broadcast(conv, organiser.id, rest)
    elif asked == "schedule":
        _schedule(conv, organiser.id)
    else:
        _answer_preview(conv, organiser, answer, pending, rest)
    return True


def _sms_locked(conv: Conversation, organiser: OrganiserFacts, command: str) -> bool:
    """Refuse the command while wrong codes keep this organiser's SMS commands locked."""
    until = organiser.sms_locked_until
    if not until or conv.ctx.now >= datetime.fromisoformat(until):
        return False
    left = datetime.fromisoformat(until) - conv.ctx.now
    minutes = max(1, -(-int(left.total_seconds()) // 60))
    conv.emit(
        events.COMMAND_REFUSED,
        command=command,
        channel="sms",
        reason="locked",
        organiser=organiser.id,
    )
    conv.say(
        conv.t.ngettext(
            "Organiser commands by SMS from this number are locked for {n} more minute, "
            "after too many wrong codes. Telegram still works.",
            "Organiser commands by SMS from this number are locked for {n} more minutes, "
            "after too many wrong codes. Telegram still works.",
            minutes,
        )
    )
    return True


def _broadcast(conv: Conversation, organiser_id: int, rest: str) -> None:
    _ = conv._
    audience, text = parse_broadcast(rest)
    if not text:
        conv.say(
            _(
                "To send a message to the assembly, write /broadcast followed by the "
                "text. Start with to:selected, to:reserve, to:group:NAME or to:lang:CODE "
                "to reach fewer people."
            )
        )
        return
    if not valid_audience(audience):
        conv.say(
            _(
                'I do not know the audience "{audience}". Use all, selected, reserve, '
                "group:NAME or lang:CODE.",
                audience=audience,
            )
        )
        return
    counts = (conv.ctx.facts.audiences or {}).get(audience)
    shown = audience_words(audience, conv.state.language)
    if not counts or not counts.reachable:
        conv.say(
            _(
                'Nobody in "{audience}" can be reached, so there is nothing to send.',
                audience=shown,
            )
        )
        return
    people = conv.t.ngettext("{n} person", "{n} people", counts.reachable)
    lines = [
        _(
            "Preview of your broadcast to {audience}: {people} ({telegram} on Telegram, "
            "{sms} by SMS).",
            audience=shown,
            people=people,
            telegram=counts.telegram,
            sms=counts.sms,
        ),
    ]
    if is_urgent(text):
        lines.append(_("It starts with URGENT, so it goes out at once, even during quiet hours."))
    elif counts.held:
        lines.append(
            conv.t.ngettext(
                "{n} of them is in quiet hours and will get it when they end.",
                "{n} of them are in quiet hours and will get it when they end.",
                counts.held,
            )
        )
    if conv.ctx.channel == "sms":
        code = conv.ctx.facts.confirmation_code
        if not code:
            conv.say(
                _(
                    "A broadcast by SMS needs a confirmation code and none could be "
                    "made, so nothing was prepared. Use Telegram or the command line."
                )
            )
            return
        answer = _(
            "Reply SEND {code} to send it to {people}, or DISCARD to drop it. The "
            "code works once, for {minutes} minutes.",
            code=code,
            people=people,
            minutes=PREVIEW_MINUTES,
        )
    else:
        answer = _("Reply SEND to send it, or DISCARD to drop it.")
    lines += ["", text, "", answer]
    conv.say("\n".join(lines))
    conv.emit(
        events.BROADCAST_PREVIEWED,
        organiser=organiser_id,
        audience=audience,
        recipients=counts.reachable,
        urgent=is_urgent(text),
        channel=conv.ctx.channel,
    )


def _answer_preview(
    conv: Conversation,
    organiser: OrganiserFacts,
    answer: str,
    pending: PendingBroadcast,
    given_code: str,
) -> None:
    _ = conv._
    organiser_id = organiser.id
    origin = pending.origin or conv.ctx.channel
    if origin != conv.ctx.channel:
        # Answered only where it was made: a forged SMS must not confirm a Telegram
        # preview, nor Telegram send a preview someone made with the organiser's number.
        conv.say(
            _("The broadcast waiting for your answer was previewed by SMS: answer it there.")
            if origin == "sms"
            else _(
                "The broadcast waiting for your answer was previewed on Telegram: answer it there."
            )
        )
        return
    if conv.ctx.now >= datetime.fromisoformat(pending.expires_at):
        conv.emit(events.BROADCAST_DISCARDED, organiser=organiser_id, reason="expired")
        conv.say(_("That preview has expired and was not sent. Write /broadcast again."))
        return
    if answer == "discard":
        conv.emit(events.BROADCAST_DISCARDED, organiser=organiser_id, reason="organiser")
        conv.say(_("Discarded. Nothing was sent."))
        return
    if conv.ctx.channel == "sms":
        given_code = "".join(given_code.split())  # "SEND 482 193" is a code too
        if not given_code.isdigit():
            conv.say(
                _("To send it, reply SEND followed by the code from the preview. Nothing was sent.")
            )
            return
        if not code_matches(pending.code_hash, given_code):
            _wrong_code(conv, organiser)
            return
    conv.emit(
        events.BROADCAST_CONFIRMED,
        organiser=organiser_id,
        audience=pending.audience,
        channel=conv.ctx.channel,
    )
    conv.say(
        conv.t.ngettext(
            "Sending your broadcast to {n} person.",
            "Sending your broadcast to {n} people.",
            pending.recipients,
        )
    )


def _wrong_code(conv: Conversation, organiser: OrganiserFacts) -> None:
    """Count a wrong SMS code; the last allowed one locks SMS commands and drops the preview."""
    failures = organiser.sms_failures + 1
    if failures < MAX_CODE_FAILURES:
        conv.emit(events.CODE_REJECTED, organiser=organiser.id, failures=failures)
        conv.say(
            conv.t.ngettext(
                "That code is wrong, so nothing was sent. {n} more try before SMS commands "
                "are locked.",
                "That code is wrong, so nothing was sent. {n} more tries before SMS commands "
                "are locked.",
                MAX_CODE_FAILURES - failures,
            )
        )
        return
    until = conv.ctx.now + timedelta(minutes=LOCK_MINUTES)
    conv.emit(events.SMS_LOCKED, organiser=organiser.id, failures=failures, until=until.isoformat())
    conv.emit(events.BROADCAST_DISCARDED, organiser=organiser.id, reason="locked")
    conv.say(
        conv._(
            "That code is wrong, so nothing was sent and the preview is dropped. "
            "Organiser commands by SMS from this number are locked for {minutes} "
            "minutes, and the other organisers have been told.",
            minutes=LOCK_MINUTES,
        )
    )


def _schedule(conv: Conversation, organiser_id: int) -> None:
    _ = conv._
    conv.emit(events.SCHEDULE_VIEWED, organiser=organiser_id)
    sessions = coming(conv.ctx.facts.sessions or [], conv.ctx.now)
    if not sessions:
        conv.say(_("No sessions are coming up."))
        return
    zone = ZoneInfo(conv.ctx.facts.timezone or "UTC")
    language = conv.state.language
    lines = [_("Coming up:")]
    for session in sessions:
        line = _(
            "Session {number}: {title}, {start}",
            number=session.number,
            title=_pick(session.title, language),
            start=conv.t.datetime(session.start.astimezone(zone)),
        )
        place = _pick(session.place, language) or session.call_in or ""
        lines.append(f"{line} ({place})" if place else line)
    conv.say("\n".join(lines))


def _attendance(conv: Conversation, inbound: Inbound) -> bool:
    calendar = conv.ctx.facts.calendar
    if not (calendar or conv.ctx.facts.panel):
        return False
    report = attendance_report(inbound.text)
    if report is None:
        return False
    if calendar:  # the session the buttons under a reminder would name
        chosen = reminded_session(conv, calendar)
        session = chosen.id if chosen else None
    else:
        upcoming = coming(conv.ctx.facts.sessions or [], conv.ctx.now)
        session = upcoming[0].id if upcoming else None
    conv.emit(events.ATTENDANCE_REPORTED, report=report, session=session)
    conv.say(conv._("Thank you for letting us know. The organisers have been told."))
    return True


def coming(sessions: list[ScheduledSession], now: datetime) -> list[ScheduledSession]:
    """The sessions that have not ended by `now`."""
    return [s for s in sessions if s.end >= now]


def _pick(texts: dict[str, str] | str | None, language: str) -> str:
    if not texts:
        return ""
    if isinstance(texts, str):
        return texts
    return (
        texts.get(language) or texts.get("*") or texts.get("en") or next(iter(texts.values()), "")
    )
