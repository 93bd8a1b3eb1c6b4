"""The message a panel member gets when the commissioning authority responds to one of the
assembly's recommendations. Pure: the caller gives the texts and the translator."""

from __future__ import annotations

from datetime import date

from flows.i18n import N_, Translator

# How each response status reads in a sentence, translated when the message is built.
STATUS_WORDS = {
    "accepted": N_("accepted"),
    "partly": N_("partly accepted"),
    "rejected": N_("rejected"),
    "pending": N_("not decided yet"),
}


def pick(texts: dict[str, str], language: str) -> str:
    """The text in `language`, else the first one given."""
    return texts.get(language) or next(iter(texts.values()), "")


def status_word(t: Translator, status: str) -> str:
    return t.gettext(STATUS_WORDS[status])


def response_message(
    t: Translator,
    *,
    number: int,
    title: dict[str, str],
    status: str,
    on: date,
    text: dict[str, str],
    version: int,
) -> str:
    """'Recommendation 2, "Night buses": the authority's response of 20 December 2026 is
    accepted.' then the authority's own words; a later version says it changed."""
    values = {
        "number": number,
        "title": pick(title, t.language),
        "date": t.date(on, "long"),
        "status": status_word(t, status),
    }
    if version == 1:
        head = t.gettext(
            'The authority has responded to the assembly\'s recommendation {number}, "{title}",'
            " on {date}: {status}.",
            **values,
        )
    else:
        head = t.gettext(
            "The authority has changed its response to the assembly's recommendation {number},"
            ' "{title}", on {date}: now {status}.',
            **values,
        )
    return f"{head}\n{pick(text, t.language)}"
