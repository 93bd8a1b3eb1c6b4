"""Translations from the gettext catalogs in locales/, compiled with Babel when first used.

The catalogs are read as the `locales` package's resources, so an installed copy of the
service (a wheel, not the source tree) finds them too."""

from __future__ import annotations

import functools
import io
from datetime import datetime
from importlib.resources import files
from importlib.resources.abc import Traversable

from babel import Locale
from babel.dates import format_date, format_datetime, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES = files("locales")
DOMAIN = "messages"
SOURCE_LANGUAGE = "en"


@functools.cache
def shipped_languages() -> tuple[str, ...]:
    """Every language with a catalog, the source language first. Read once: the engine
    asks on every free-text message, and a turn should touch no disk."""
    found = sorted(entry.name for entry in LOCALES.iterdir() if _catalog(entry.name).is_file())
    return (SOURCE_LANGUAGE, *[code for code in found if code != SOURCE_LANGUAGE])


def _catalog(language: str) -> Traversable:
    return LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def _translations(language: str) -> NullTranslations:
    path = _catalog(language)
    if not path.is_file():
        return NullTranslations()
    with path.open("rb") as fp:
        catalog = read_po(fp, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


class Translator:
    """gettext, plurals and locale-aware dates for one language."""

    def __init__(self, language: str):
        self.language = language
        self.locale = Locale.parse(language)
        self._t = _translations(language)

    def gettext(self, message: str, **values: object) -> str:
        text = self._t.gettext(message)
        return text.format(**values) if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        text = self._t.ngettext(singular, plural, n)
        return text.format(n=n, **values)

    def datetime(self, value: datetime, fmt: str = "full") -> str:
        """A date and time as people of this locale write it ('mardi 3 mars 2026 à 18:30')."""
        if fmt == "full":
            date = format_date(value, format="full", locale=self.locale)
            time = format_time(value, format="short", locale=self.locale)
            return self.gettext("{date} at {time}", date=date, time=time)
        return format_datetime(value, format=fmt, locale=self.locale)

    def date(self, value: datetime, fmt: str = "full") -> str:
        return format_date(value, format=fmt, locale=self.locale)

    def time(self, value: datetime) -> str:
        return format_time(value, format="short", locale=self.locale)

    def language_name(self, code: str) -> str:
        """The name of a language in that language itself ('Français')."""
        name = Locale.parse(code).get_display_name(code) or code
        return name[:1].upper() + name[1:]


@functools.cache
def translator(language: str) -> Translator:
    return Translator(language)


def N_(message: str) -> str:
    """Mark a string for extraction where it is translated later."""
    return message
