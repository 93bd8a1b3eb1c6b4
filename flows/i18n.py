"""Translations from the gettext catalogs in locales/, compiled with Babel when first used.

The catalogs are read as the `locales` package's resources, so an installed copy of the
service (a wheel, not the source tree) finds them too."""

from __future__ import annotations

import functools
import io
import re
from datetime import datetime
from importlib.resources import files
from importlib.resources.abc import Traversable
from string import Formatter

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


class ProperName(str):
    """A name set into sentences with the article its language gives it in running text
    (French "le Jury citoyen...", Spanish "el Jurado..."): written before it, capitalised at
    the start of a sentence, and merged with the preposition before it where the language
    does ("à" + "le" is "au", "de" + "el" is "del"). Elsewhere (a heading) it is the bare
    name. Without an article it is an ordinary string."""

    article: str | None

    def __new__(cls, text: str, article: str | None = None) -> ProperName:
        name = super().__new__(cls, text)
        name.article = article or None
        return name


# A preposition and an article that the language writes as one word.
CONTRACTIONS = {
    "fr": {("à", "le"): "au", ("à", "les"): "aux", ("de", "le"): "du", ("de", "les"): "des"},
    "es": {("a", "el"): "al", ("de", "el"): "del"},
}
_LAST_WORD = re.compile(r"(\S+) $")
_SENTENCE_START = re.compile(r"(^|[.!?¡¿]\s+|\n)$")


def with_article(before: str, name: ProperName, language: str) -> tuple[str, str]:
    """The text before a proper name and the name, as the language writes them together."""
    article = name.article
    if _SENTENCE_START.search(before):
        return before, f"{article[:1].upper()}{article[1:]}{_space(article)}{name}"
    word = _LAST_WORD.search(before)
    if word:
        merged = CONTRACTIONS.get(language, {}).get((word[1].lower(), article.lower()))
        if merged:
            if word[1][:1].isupper():
                merged = merged[:1].upper() + merged[1:]
            return before[: word.start(1)] + merged + " ", str(name)
    return before, f"{article}{_space(article)}{name}"


def _space(article: str) -> str:
    return "" if article.endswith(("'", "’")) else " "


def fill(template: str, values: dict[str, object], language: str) -> str:
    """`template.format(**values)`, a proper name with an article set in as the language
    writes it (`with_article`)."""
    if not any(isinstance(v, ProperName) and v.article for v in values.values()):
        return template.format(**values)
    out = ""
    for literal, field, spec, conversion in Formatter().parse(template):
        out += literal
        if field is None:
            continue
        value = values[field]
        if isinstance(value, ProperName) and value.article and not spec and not conversion:
            out, placed = with_article(out, value, language)
            out += placed
        else:
            out += Formatter().format_field(
                Formatter().convert_field(value, conversion), spec or ""
            )
    return out


class Translator:
    """gettext, plurals and locale-aware dates for one language."""

    def __init__(self, language: str):
        self.language = language
        self.locale = Locale.parse(language)
        self._t = _translations(language)

    def gettext(self, message: str, **values: object) -> str:
        text = self._t.gettext(message)
        return fill(text, values, self.language) if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        text = self._t.ngettext(singular, plural, n)
        return fill(text, {"n": n, **values}, self.language)

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
