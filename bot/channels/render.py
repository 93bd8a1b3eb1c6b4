"""How an outbound message looks on each channel: buttons or numbered replies, and parts."""

from __future__ import annotations

from dataclasses import dataclass

from babel.lists import format_list

from flows import segments
from flows.engine import button_data
from flows.i18n import translator
from flows.model import Outbound
from flows.sms_format import markdown_to_plain

TELEGRAM_LIMIT = 4000  # under Telegram's 4,096, leaving room for entities


@dataclass(frozen=True)
class Part:
    text: str
    buttons: list[dict[str, str]] | None = None
    segments: int = 1
    encoding: str | None = None


def sms_text(message: Outbound, language: str) -> str:
    """The message as plain text (an SMS shows Markdown's marks as they are), with its
    choices as numbered replies ('Reply 1, 2 or 3')."""
    text = markdown_to_plain(message.text) if message.markdown else message.text
    if not message.choices:
        return text
    t = translator(language)
    lines = [text, ""]
    lines += [f"{n} {choice.label}" for n, choice in enumerate(message.choices, start=1)]
    numbers = [str(n) for n in range(1, len(message.choices) + 1)]
    lines.append(
        t.gettext("Reply {numbers}.", numbers=format_list(numbers, style="or", locale=t.locale))
    )
    return "\n".join(lines)


def render(
    message: Outbound,
    channel: str,
    language: str,
    prompt_id: str | None,
    sms_max_segments: int = 10,
) -> list[Part]:
    if channel == "sms":
        # Segments are counted on the very text that is sent.
        text = segments.gsm_friendly(sms_text(message, language))
        parts = []
        for piece in segments.split(text, sms_max_segments):
            size = segments.measure(piece)
            parts.append(Part(piece, None, size.segments, size.encoding))
        return parts
    pieces = segments.split_to_budget(message.text, TELEGRAM_LIMIT) or [""]
    buttons = [
        {"label": c.label, "data": button_data(prompt_id, c.key)} for c in message.choices
    ] or None
    return [
        Part(piece, buttons if i == len(pieces) - 1 else None) for i, piece in enumerate(pieces)
    ]
