"""Briefings rendered per language: the Telegram document, SMS pages, and what they cost.

An SMS page fills whole segments (the schedule's `sms_page_segments`) including its
"(1/3) Reply MORE for the next part." ending, so organisers can know the cost beforehand.
"""

from __future__ import annotations

from dataclasses import dataclass

from flows import segments
from flows.briefing import briefing_document, more_suffix
from flows.i18n import translator
from flows.sms_format import markdown_to_plain
from scheduler.config import Briefing, Calendar, pick


def sms_pages(text: str, language: str, page_segments: int) -> list[str]:
    """`text` cut between words into pages of at most `page_segments` segments each, every
    page but the last ending with the MORE suffix. Each page is as full as its own
    encoding allows (one accented letter makes only its page UCS-2)."""
    if segments.measure(text).segments <= page_segments:
        return [text]
    t = translator(language)
    widest = "\n" + more_suffix(t, 99, 99)  # bounds the room any page's suffix takes

    def fits(piece: str) -> bool:
        return segments.measure(piece + widest).segments <= page_segments

    pieces = _split(text, fits)
    # The last piece needs no suffix: merge it back if it then fits on the page before.
    if (
        len(pieces) > 1
        and segments.measure(pieces[-2] + "\n\n" + pieces[-1]).segments <= page_segments
    ):
        pieces[-2:] = [pieces[-2] + "\n\n" + pieces[-1]]
    total = len(pieces)
    return [
        piece if n == total else f"{piece}\n{more_suffix(t, n, total)}"
        for n, piece in enumerate(pieces, start=1)
    ]


def _split(text: str, fits) -> list[str]:
    """Pieces that each `fits`, cut at a paragraph or line break when one falls in the
    second half of the piece (pages stay full), else after a sentence in its last third,
    else between words. `fits` must stay false once false as a piece grows."""
    pieces: list[str] = []
    rest = text.strip()
    while rest:
        if fits(rest):
            pieces.append(rest)
            break
        lo, hi = 1, len(rest)
        while lo < hi:  # the longest prefix that fits
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if fits(rest[:mid]) else (lo, mid - 1)
        window, cut = rest[:lo], lo
        for sep, least in (("\n\n", lo // 2), ("\n", lo // 2), (". ", lo * 2 // 3), (" ", 1)):
            at = window.rfind(sep)
            if at >= least:
                cut = at + 1 if sep == ". " else at  # a sentence keeps its full stop
                break
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return pieces


@dataclass(frozen=True)
class Rendered:
    title: str
    document: str  # Markdown, for Telegram
    pages: tuple[str, ...]  # plain text, for SMS


@dataclass(frozen=True)
class SmsCost:
    pages: int
    first_page_segments: int  # what every SMS reader costs
    all_pages_segments: int  # what a reader who sends MORE to the end costs
    encoding: str


def _localised_list(items, language: str, default: str) -> list[dict[str, str]]:
    return [
        {
            k: pick(v, language, default) if isinstance(v, dict) else v
            for k, v in item.model_dump().items()
        }
        for item in items
    ]


def render_briefing(calendar: Calendar, briefing_id: str, language: str) -> Rendered:
    """The briefing as sent, rendered once per calendar (kept with the calendar it came
    from, so a reloaded calendar is rendered afresh)."""
    memo = calendar.memo()
    key = ("briefing", briefing_id, language)
    if key not in memo:
        memo[key] = _render(calendar, briefing_id, language)
    return memo[key]


def _render(calendar: Calendar, briefing_id: str, language: str) -> Rendered:
    briefing: Briefing = calendar.briefing(briefing_id)
    default = calendar.default_language
    t = translator(language)
    title = pick(briefing.title, language, default)
    document = briefing_document(
        t,
        title=title,
        text=pick(briefing.text, language, default),
        perspectives=_localised_list(briefing.perspectives, language, default),
        sources=_localised_list(briefing.sources, language, default),
        audio=pick(briefing.audio, language, default) or None,
    )
    pages = sms_pages(markdown_to_plain(document), language, calendar.schedule.sms_page_segments)
    return Rendered(title, document, tuple(pages))


def sms_cost(calendar: Calendar, briefing_id: str, language: str) -> SmsCost:
    """The SMS segments a briefing costs one reader in `language`."""
    pages = render_briefing(calendar, briefing_id, language).pages
    sizes = [segments.measure(page) for page in pages]
    encoding = segments.UCS2 if any(s.encoding == segments.UCS2 for s in sizes) else segments.GSM7
    return SmsCost(len(pages), sizes[0].segments, sum(s.segments for s in sizes), encoding)
