"""Normalising what people type, so keywords and choices match however they are written."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


# A message's text is folded by each matcher in turn (keywords, choices, commands...).
@lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """Fold case, width and accents: 'ＳＴＯＰ', ' Stop! ' and 'stop' all give 'stop'.

    Everything that is not a letter or digit goes, spaces included, so the result
    suits whole-message keyword matching.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _NOT_ALNUM.sub("", text)


def words(text: str) -> list[str]:
    """The folded words of a message, in order ('TIME 7:30' -> ['time', '7', '30'])."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return [w for w in _NOT_ALNUM.split(text) if w]
