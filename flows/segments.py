"""SMS encoding and segment counting, and splitting long texts at word boundaries.

A message that fits GSM-7 costs 160 characters in one segment, 153 per segment when
concatenated; one character outside GSM-7 switches the whole message to UCS-2: 70, or 67
per segment. Extension characters (such as the euro sign) take two GSM-7 septets.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("^{}\\[~]|€\f")
_GSM7_ALL = frozenset(GSM7_BASIC | GSM7_EXTENSION)

GSM7 = "GSM-7"
UCS2 = "UCS-2"


@dataclass(frozen=True)
class SmsSize:
    encoding: str
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int


# What carriers' "smart encoding" does: typographic characters that look the same as a
# GSM-7 one are sent as that one, so one of them does not make a whole SMS UCS-2 (70
# characters a segment instead of 160). Babel's times carry narrow no-break spaces.
_LOOKALIKES = str.maketrans(
    {
        "\u00a0": " ",
        "\u202f": " ",
        "\u2009": " ",
        "\u2007": " ",
        "\u200b": "",
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u02bc": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u2026": "...",
        "\u2022": "-",
    }
)


def gsm_friendly(text: str) -> str:
    """`text` with typographic look-alikes replaced by their GSM-7 equivalents."""
    return text.translate(_LOOKALIKES)


def encoding_of(text: str) -> str:
    # Set operations, not a loop per character: every outgoing SMS is measured.
    return GSM7 if _GSM7_ALL.issuperset(text) else UCS2


def _units(text: str, encoding: str) -> int:
    if encoding == GSM7:
        return len(text) + sum(text.count(c) for c in GSM7_EXTENSION)
    return len(text.encode("utf-16-le")) // 2


def measure(text: str) -> SmsSize:
    encoding = encoding_of(text)
    units = _units(text, encoding)
    single, multi = (160, 153) if encoding == GSM7 else (70, 67)
    segments = 1 if units <= single else -(-units // multi)
    return SmsSize(encoding, units, segments)


def split(text: str, max_segments: int) -> list[str]:
    """Cut `text` into messages of at most `max_segments` segments each, between words."""
    size = measure(text)
    if size.segments <= max_segments:
        return [text]
    encoding = size.encoding
    per_segment = 153 if encoding == GSM7 else 67
    budget = per_segment * max_segments
    return split_to_budget(text, budget, lambda s: _units(s, encoding))


def split_to_budget(text: str, budget: int, size=len) -> list[str]:
    """Cut `text` into pieces of at most `budget` by `size`, preferring paragraph, then
    line, then word boundaries; a single word longer than the budget is cut inside."""
    parts: list[str] = []
    rest = text.strip()
    while rest:
        if size(rest) <= budget:
            parts.append(rest)
            break
        cut = _longest_prefix(rest, budget, size)
        window = rest[:cut]
        for sep in ("\n\n", "\n", " "):
            at = window.rfind(sep)
            if at > 0:
                cut = at
                break
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return parts


def _longest_prefix(text: str, budget: int, size) -> int:
    """The largest n such that size(text[:n]) <= budget (binary search; size grows with n)."""
    lo, hi = 1, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if size(text[:mid]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo
