"""Keeping addresses from crossing a table: what a member writes is relayed with every
phone number, e-mail address, @username, messaging link (t.me, wa.me, ...) and any
address the service knows of the table's members replaced by a localised "[removed]".

Pure: the caller passes the placeholder (in the reader's language) and the table's known
addresses. The stored contribution keeps the original text for the synthesis; only what
other members receive is scrubbed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import phonenumbers

# Regions whose national formats are tried besides international ones: the shipped
# languages' countries and the common others (a number is a number wherever it is from).
REGIONS = ("GB", "FR", "ES", "US", "DE", "IT", "BE", "CH", "MX", "AR", "CO", "CA")

LINK = re.compile(
    r"(?:https?://|www\.)\S+"  # any web link: a profile page, a form, a chat invite
    r"|\b(?:t|telegram|wa|signal|m)\.me/\S*"  # messaging links without a scheme
    r"|\b(?:chat\.whatsapp|api\.whatsapp|signal)\.(?:com|org|group)/\S*"
    r"|\b[\w.-]+\.(?:com|org|net|me|io|fr|es|uk|co|eu|info)(?:/\S*)?\b",
    re.IGNORECASE,
)
EMAIL = re.compile(
    r"[\w.+-]+\s*(?:@|\(at\)|\[at\])\s*[\w-]+(?:\s*(?:\.|\(dot\)|\[dot\])\s*[\w-]+)+"
    # spelt out: "jo dot b at mail dot com", "jo arobase mail point fr"
    r"|[\w.+-]+(?:\s+(?:dot|point|punto)\s+[\w-]+)*\s+(?:at|arobase|arroba)\s+[\w-]+"
    r"(?:\s+(?:dot|point|punto)\s+[\w-]+)+",
    re.IGNORECASE,
)
HANDLE = re.compile(r"(?<![\w@])@\s?[A-Za-z][\w.]{2,}")
# Seven digits or more with spaces, dots, dashes, slashes or brackets between them: a phone
# number however it is written, a Telegram id, a number spelt out digit by digit.
DIGITS = re.compile(r"\+?\(?\d(?:[\s().\-/]{0,3}\d){6,}\)?")
# Dates and times are not addresses: left alone.
DATE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$")

MIN_KNOWN = 4  # shorter known strings would remove ordinary words
MIN_DIGITS = 5  # no phone number has fewer: the matcher is not run on such text


def _spans(text: str, known: Iterable[str]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    digits = sum(ch.isdigit() for ch in text)
    for region in REGIONS if digits >= MIN_DIGITS else ():
        matcher = phonenumbers.PhoneNumberMatcher(
            text, region, leniency=phonenumbers.Leniency.VALID
        )
        spans.extend((m.start, m.end) for m in matcher)
    for pattern in (EMAIL, LINK, HANDLE):
        spans.extend(m.span() for m in pattern.finditer(text))
    for m in DIGITS.finditer(text):
        if not DATE.match(m.group().strip()):
            spans.append(m.span())
    lowered = text.casefold()
    for item in known:
        needle = item.strip().lstrip("@").casefold()
        if len(needle) < MIN_KNOWN:
            continue
        start = lowered.find(needle)
        while start != -1:
            spans.append((start, start + len(needle)))
            start = lowered.find(needle, start + 1)
    return spans


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def scrub(text: str, placeholder: str, known: Iterable[str] = ()) -> tuple[str, int]:
    """`text` with every address replaced by `placeholder`, and how many were removed."""
    spans = _merged(_spans(text, tuple(known)))
    if not spans:
        return text, 0
    out, last = [], 0
    for start, end in spans:
        out.append(text[last:start])
        out.append(placeholder)
        last = end
    out.append(text[last:])
    return "".join(out), len(spans)
