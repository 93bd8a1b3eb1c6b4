"""Every message the code can say is translated in every shipped language.

The messages are extracted from the code as `pybabel extract` does (locales/babel.cfg;
keywords gettext, ngettext:1,2, N_ and _). To regenerate locales/messages.pot after adding
messages, run from the repository root:

    .venv/bin/python -m tests.test_locales

(the same as `pybabel extract -F locales/babel.cfg --no-location --sort-output
--no-default-keywords -k gettext -k ngettext:1,2 -k N_ -k _ -o locales/messages.pot .`),
then append the French and Spanish translations of the new messages to the end of
locales/fr/LC_MESSAGES/messages.po and locales/es/LC_MESSAGES/messages.po.
"""

from __future__ import annotations

import io
import string
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import PoFileParser, read_po, write_po

from flows import i18n

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "locales"
POT = LOCALES / "messages.pot"
KEYWORDS = {"gettext": None, "ngettext": (1, 2), "N_": None, "_": None}
TRANSLATED = [code for code in i18n.shipped_languages() if code != i18n.SOURCE_LANGUAGE]
SKIPPED_DIRS = {"node_modules", "tests", "__pycache__"}

MsgId = str | tuple[str, ...]


def _walk_into(dirname: str) -> bool:
    name = Path(dirname).name
    return not name.startswith((".", "_")) and name not in SKIPPED_DIRS


def extract_messages() -> dict[MsgId, list[str]]:
    """Every message id in the code, with where it is used ('flows/welcome.py:23')."""
    with (LOCALES / "babel.cfg").open() as fp:
        method_map, options_map = parse_mapping_cfg(fp)
    found: dict[MsgId, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        ROOT,
        method_map,
        options_map,
        keywords=KEYWORDS,
        directory_filter=_walk_into,
    ):
        found.setdefault(message, []).append(f"{filename}:{lineno}")
    return found


def regenerate_pot() -> int:
    """Write locales/messages.pot from the code; returns the number of messages."""
    catalog = Catalog(
        project="Concorder Relay", version="0.1", copyright_holder="Concorder Relay contributors"
    )
    for msgid in extract_messages():
        catalog.add(msgid)
    buffer = io.BytesIO()
    write_po(buffer, catalog, omit_header=False, no_location=True, sort_output=True)
    POT.write_bytes(buffer.getvalue())
    return len(catalog)


class _CountingCatalog(Catalog):
    """A catalog that remembers how often each message was defined (duplicates)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.definitions: Counter = Counter()

    def __setitem__(self, id, message: Message) -> None:
        self.definitions[self._key_for(id, message.context)] += 1
        super().__setitem__(id, message)


def load_catalog(language: str) -> _CountingCatalog:
    path = LOCALES / language / "LC_MESSAGES" / "messages.po"
    catalog = _CountingCatalog(locale=language)
    with path.open("rb") as fp:
        PoFileParser(catalog).parse(fp)
    return catalog


def _short(msgid: MsgId) -> str:
    text = msgid if isinstance(msgid, str) else msgid[0]
    return repr(text if len(text) <= 60 else text[:57] + "...")


def untranslated(catalog: Catalog, extracted: dict[MsgId, list[str]]) -> list[str]:
    """The messages of the code that `catalog` lacks, leaves empty or marks fuzzy."""
    problems = []
    for msgid, places in sorted(extracted.items(), key=lambda item: str(item[0])):
        key = msgid if isinstance(msgid, str) else msgid[0]
        message = catalog.get(key)
        where = places[0]
        if message is None:
            problems.append(f"missing: {_short(msgid)} ({where})")
        elif message.fuzzy:
            problems.append(f"fuzzy: {_short(msgid)} ({where})")
        elif isinstance(msgid, tuple) and not isinstance(message.id, tuple):
            problems.append(f"needs plural forms: {_short(msgid)} ({where})")
        elif not all(message.string) if isinstance(message.string, tuple) else not message.string:
            problems.append(f"empty translation: {_short(msgid)} ({where})")
    return problems


def placeholders(text: str) -> set[str]:
    """The `{name}` fields of a str.format template (ValueError if it is malformed)."""
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def placeholder_mismatches(catalog: Catalog) -> list[str]:
    problems = []
    for message in catalog:
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        try:
            expected = set().union(*(placeholders(i) for i in ids))
            for form in forms:
                if not form:
                    continue
                got = placeholders(form)
                # A singular form may say "one" instead of {n}; nothing else may differ.
                if got - expected or (expected - {"n"}) - got:
                    problems.append(
                        f"{_short(message.id)}: the translation has "
                        f"{sorted(got)}, the message {sorted(expected)}"
                    )
        except ValueError as exc:
            problems.append(f"{_short(message.id)}: malformed braces ({exc})")
    return problems


@pytest.fixture(scope="module")
def extracted() -> dict[MsgId, list[str]]:
    return extract_messages()


def test_messages_are_found_in_the_code(extracted):
    assert "Sorry, I did not understand that." in extracted
    assert any(place.startswith("flows/") for places in extracted.values() for place in places)
    assert TRANSLATED, "no translated catalog found in locales/"


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_is_translated(language, extracted):
    problems = untranslated(load_catalog(language), extracted)
    assert not problems, (
        f"locales/{language}/LC_MESSAGES/messages.po lacks {len(problems)} message(s); "
        "append their translations to the end of the file:\n  " + "\n  ".join(problems)
    )


@pytest.mark.parametrize("language", TRANSLATED)
def test_no_message_is_defined_twice(language):
    catalog = load_catalog(language)
    twice = [_short(key) for key, count in catalog.definitions.items() if count > 1]
    assert not twice, f"defined more than once in {language} (msgfmt refuses that): {twice}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_placeholders_match(language):
    problems = placeholder_mismatches(load_catalog(language))
    assert not problems, f"placeholders differ in {language}:\n  " + "\n  ".join(problems)


def test_a_missing_or_broken_translation_is_caught():
    catalog = Catalog(locale="fr")
    catalog.add("Hello {name}.", "Bonjour {nom}.")
    catalog.add("Bye.", "")
    catalog.add("Reply {numbers}.", "Répondez {numbers.")
    catalog.add(("{n} vote", "{n} votes"), ("un vote", "{n} votes"))
    extracted = {
        "Hello {name}.": ["a.py:1"],
        "Bye.": ["a.py:2"],
        "Missing.": ["a.py:3"],
        ("{n} vote", "{n} votes"): ["a.py:4"],
    }
    assert untranslated(catalog, extracted) == [
        "empty translation: 'Bye.' (a.py:2)",
        "missing: 'Missing.' (a.py:3)",
    ]
    problems = placeholder_mismatches(catalog)
    assert len(problems) == 2  # {nom} for {name}, and an unclosed brace; "un vote" is fine
    assert "'Hello {name}.'" in problems[0] and "malformed" in problems[1]


@pytest.mark.parametrize("language", i18n.shipped_languages())
def test_every_catalog_compiles_and_is_used(language):
    i18n._translations.cache_clear()
    t = i18n.Translator(language)
    said = t.gettext("Sorry, I did not understand that.")
    assert said and (language == i18n.SOURCE_LANGUAGE) == (
        said == "Sorry, I did not understand that."
    )
    if language != i18n.SOURCE_LANGUAGE:
        path = LOCALES / language / "LC_MESSAGES" / "messages.po"
        with path.open("rb") as fp:
            catalog = read_po(fp, locale=language)
        errors = [(m.id, e) for m, e in catalog.check() if e]
        assert not errors, errors


def test_template_is_up_to_date(extracted):
    with POT.open("rb") as fp:
        template = read_po(fp)
    in_template = {m.id if isinstance(m.id, str) else m.id[0] for m in template if m.id}
    in_code = {m if isinstance(m, str) else m[0] for m in extracted}
    assert in_template == in_code, (
        "locales/messages.pot is stale; regenerate it with `.venv/bin/python -m "
        f"tests.test_locales`. New: {sorted(in_code - in_template)}; "
        f"gone: {sorted(in_template - in_code)}"
    )


if __name__ == "__main__":
    print(f"Wrote {POT.relative_to(ROOT)} with {regenerate_pot()} messages.")
