"""The assembly file: the example loads; every problem is reported with its place; the
calendar's tables are accepted untouched."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from flows.assembly import AssemblyError, load_assembly, parse_assembly
from flows.i18n import ProperName, fill, translator

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "citizens-jury" / "assembly.toml"
DEMO = ROOT / "bot" / "services" / "demo" / "example" / "assembly.toml"

MINIMAL = """
[assembly]
name = "Test Jury"

[consent]
version = "v1"
text = { en = "We keep your answers." }

[[questions]]
id = "age"
text = { en = "How old are you?" }
options = [
  { key = "young", label = { en = "Under 40" } },
  { key = "older", label = { en = "40 or over" } },
]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(AssemblyError) as caught:
        parse_assembly(text, "jury.toml")
    return caught.value.problems


def test_the_example_loads():
    assembly = load_assembly(EXAMPLE)
    assert assembly.name == "Riverside Citizens' Jury on Transport"
    assert assembly.languages == ["en", "fr", "es"]
    assert [q.id for q in assembly.questions] == ["age", "travel", "gender"]
    assert assembly.recruitment.remind_after == timedelta(days=3)
    facts = assembly.facts()
    assert facts["consent_version"] == "2026-12-v2"
    assert facts["questions"][0]["options"][3] == {
        "key": "65+",
        "label": {"en": "65 or over", "fr": "65 ans ou plus", "es": "65 o más"},
    }


def test_defaults_and_the_calendar_tables_are_kept_untouched():
    text = (
        MINIMAL
        + """
[[sessions]]
id = "s1"
starts = 2027-02-01T10:00:00Z
anything = { the = "calendar decides" }

[briefings]
folder = "briefings/"

[schedule]
reminders = ["1d", "2h"]
"""
    )
    assembly = parse_assembly(text)
    assert assembly.languages == ["en"]
    assert assembly.recruitment.lapse_after == timedelta(days=4)
    assert assembly.sessions[0]["anything"] == {"the": "calendar decides"}
    assert assembly.briefings == {"folder": "briefings/"}
    assert assembly.schedule == {"reminders": ["1d", "2h"]}


def test_missing_translations_are_named_by_place():
    text = MINIMAL.replace('name = "Test Jury"', 'name = "Test Jury"\nlanguages = ["en", "fr"]')
    found = problems(text)
    assert "consent > text: no text in 'fr'" in found
    assert "questions #1 (id 'age') > text: no text in 'fr'" in found
    assert "questions #1 (id 'age') > options #2 > label: no text in 'fr'" in found


def test_type_and_shape_errors_are_named_by_place():
    text = (
        MINIMAL.replace('key = "older"', 'key = "Older Ones!"')
        + """
[recruitment]
remind_after = "three days"
registration_deadline = 2027-01-15T18:00:00
colour = "blue"
"""
    )
    found = problems(text)
    # Each mistake names its place and the line of the file it is on.
    assert any(
        p.startswith(
            "questions #1 (id 'age') > options #2 > key (line 12): String should match pattern"
        )
        for p in found
    )
    assert any(
        p.startswith("recruitment > remind_after (line 18): write a duration") for p in found
    )
    assert any(
        p.startswith("recruitment > registration_deadline (line 19): give the time zone")
        for p in found
    )
    assert (
        "recruitment > colour (line 20): unknown setting (check its spelling and its table)"
    ) in found


def test_language_and_option_rules():
    text = MINIMAL.replace('name = "Test Jury"', 'name = "Test Jury"\nlanguages = ["en", "de"]')
    assert any("language 'de' has no translation catalog" in p for p in problems(text))
    text = MINIMAL.replace('key = "older"', 'key = "back"')
    assert any("'back' is a reply word the service keeps" in p for p in problems(text))
    text = MINIMAL.replace('label = { en = "40 or over" }', 'label = { en = "under 40" }')
    assert any("repeats another option" in p for p in problems(text))
    assert problems(MINIMAL.replace("[consent]", "[consent_]")) == [
        "consent: Field required",
        "consent_ (line 5): unknown setting (check its spelling and its table)",
    ]


def test_syntax_errors_and_missing_files():
    assert problems("[assembly\nname = 1")[0].startswith("not valid TOML: ")
    with pytest.raises(AssemblyError, match="file not found"):
        load_assembly("/nonexistent/jury.toml")


def test_a_folder_given_for_the_file_names_the_file_inside(tmp_path):
    (tmp_path / "assembly.toml").write_text("")
    with pytest.raises(AssemblyError) as caught:
        load_assembly(str(tmp_path))
    assert caught.value.problems == [
        f"a folder, not a file: give the file, such as {tmp_path / 'assembly.toml'}"
    ]


def test_the_draw_rules_live_in_the_assembly_file():
    assembly = parse_assembly(
        MINIMAL
        + """
[selection]
panel_size = 10
reserve_size = 3
[selection.quotas.age]
young = { min = 4, max = 6 }
older = 0.5
[selection.quotas.region]
north = 0.5
south = 0.5
"""
    )
    assert (assembly.selection.panel_size, assembly.selection.reserve_size) == (10, 3)
    assert assembly.selection.one_per_household is True
    assert assembly.selection.quotas["age"]["older"] == 0.5


def test_impossible_or_misspelt_quotas_are_named_by_place():
    found = problems(
        MINIMAL
        + """
[selection]
panel_size = 10
[selection.quotas.age]
young = { min = 1, max = 2 }
older = { min = 1, max = 2 }
"""
    )
    assert found == [
        "selection (line 17): quotas > age: the minimums add up to 2 and the "
        "maximums to 4, so a panel of 10 cannot meet them"
    ]
    found = problems(
        MINIMAL
        + """
[selection]
panel_size = 10
[selection.quotas.age]
young = { min = 6, max = 4 }
elderly = 0.5
"""
    )
    assert found == ["selection > quotas > age > young (line 17): min (6) is more than max (4)"]
    found = problems(
        MINIMAL
        + """
[selection]
panel_size = 4
[selection.quotas.age]
young = 0.5
elderly = 0.5
"""
    )
    assert found == [
        "selection > quotas > age > elderly: not an option of question 'age' (older, young)"
    ]


def test_the_draw_takes_its_rules_from_the_example_assembly():
    from bot.services.draw import rules_from_assembly

    rules = rules_from_assembly(load_assembly(EXAMPLE))
    assert (rules.panel_size, rules.reserve_size, rules.one_per_household) == (12, 4, True)
    assert sorted(rules.quotas) == ["age", "gender", "region"]
    assert (rules.quotas["gender"]["woman"].min, rules.quotas["gender"]["woman"].max) == (5, 7)


def test_one_read_of_the_file_gives_the_assembly_and_the_calendar(tmp_path):
    import copy

    from flows.assembly import assembly_of
    from flows.config_file import AssemblyFile, ConfigError
    from scheduler.config import calendar_of, load_calendar

    file = AssemblyFile.read(EXAMPLE)
    before = copy.deepcopy(dict(file.raw))
    assembly, calendar = assembly_of(file), calendar_of(file)
    assert assembly == load_assembly(EXAMPLE) and calendar == load_calendar(EXAMPLE)
    assert file.has_calendar and dict(file.raw) == before  # neither reader changed it
    assert not AssemblyFile.parse(MINIMAL).has_calendar
    with pytest.raises(ConfigError, match="file not found"):
        AssemblyFile.read(tmp_path / "missing.toml")


BILINGUAL = """
[assembly]
name = "Test Jury"
languages = ["en", "fr"]

[consent]
version = "v1"
text = { en = "We keep your answers.", fr = "Nous gardons vos réponses." }
"""


def test_the_name_and_organiser_are_given_per_language():
    example = load_assembly(EXAMPLE)
    assert example.names == {
        "en": "Riverside Citizens' Jury on Transport",
        "fr": "Jury citoyen de Riverside sur les transports",
        "es": "Jurado ciudadano de Riverside sobre el transporte",
    }
    assert example.name_in("fr") == "Jury citoyen de Riverside sur les transports"
    assert example.organiser_in("es") == "Ayuntamiento de Riverside (ficticio)"
    assert example.facts()["name"] == example.names  # the flows pick the reader's
    # The bundled copy of the example says the same.
    assert load_assembly(DEMO).names == example.names
    assert load_assembly(DEMO).organisers == example.organisers


def test_one_name_serves_every_language():
    assembly = parse_assembly(BILINGUAL)
    assert assembly.name == "Test Jury"
    assert assembly.names == {"en": "Test Jury", "fr": "Test Jury"}
    assert assembly.organiser_in("fr") is None and assembly.organisers == {}
    text = BILINGUAL.replace('name = "Test Jury"', 'name = "Test Jury"\norganiser = "Ville"')
    assert parse_assembly(text).organisers == {"en": "Ville", "fr": "Ville"}


def test_a_name_missing_in_a_language_is_named_with_its_place_and_line():
    text = BILINGUAL.replace(
        'name = "Test Jury"',
        'name = { en = "Test Jury" }\norganiser.en = "Test Council"\norganiser.fr = " "',
    )
    assert problems(text) == [
        "assembly > name (line 3): no text in 'fr'",
        "assembly > organiser (line 4): no text in 'fr'",
    ]
    text = BILINGUAL.replace('name = "Test Jury"', 'name = { en = "Jury", fr = "Jury" }')
    assert parse_assembly(text).name_in("fr") == "Jury"


def test_a_name_must_be_a_short_text():
    long = "x" * 121
    assert problems(BILINGUAL.replace("Test Jury", long)) == [
        "assembly > name (line 3): longer than 120 characters"
    ]
    text = BILINGUAL.replace('name = "Test Jury"', f'name = {{ en = "Jury", fr = "{long}" }}')
    assert problems(text) == ["assembly > name (line 3): 'fr': longer than 120 characters"]
    assert problems(BILINGUAL.replace('"Test Jury"', '""')) == [
        "assembly > name (line 3): give the assembly's name"
    ]
    assert problems(BILINGUAL.replace('"Test Jury"', "12")) == [
        'assembly > name (line 3): give one text, or one per language: { en = "...", fr = "..." }'
    ]


def test_a_name_takes_its_article_in_running_text():
    example = load_assembly(EXAMPLE)
    french = translator("fr")
    name = example.names["fr"]
    asked = (
        "Do you want to withdraw from {assembly}? Your place on the panel would go to someone "
        "else and we would delete your details. This cannot be undone."
    )
    assert french.gettext(asked, assembly=name).startswith(
        "Voulez-vous vous retirer du Jury citoyen de Riverside sur les transports ?"
    )
    invited = (
        "You are invited to take part in {assembly}, a citizens' assembly chosen by lot. "
        "Taking part is voluntary. Would you like to take part?"
    )
    assert (
        translator("es")
        .gettext(invited, assembly=example.names["es"])
        .startswith(
            "Está invitado/a a participar en el Jurado ciudadano de Riverside sobre el transporte,"
        )
    )
    # Without an article (English here) the name goes in as it is; in a heading it is bare.
    assert (
        translator("en")
        .gettext(invited, assembly=example.names["en"])
        .startswith("You are invited to take part in Riverside Citizens' Jury on Transport,")
    )
    assert example.name_in("fr") == "Jury citoyen de Riverside sur les transports"


@pytest.mark.parametrize(
    ("language", "article", "template", "written"),
    [
        ("fr", "le", "participer à {a}.", "participer au Jury."),
        ("fr", "les", "À {a} !", "Aux Jury !"),
        ("fr", "le", "au sujet de {a}", "au sujet du Jury"),
        ("fr", "la", "participer à {a}", "participer à la Jury"),
        ("fr", "l'", "membre de {a}", "membre de l'Jury"),
        ("fr", "le", "{a} vous remercie. {a} aussi", "Le Jury vous remercie. Le Jury aussi"),
        ("fr", "le", "pour {a}", "pour le Jury"),
        ("es", "el", "retirarse de {a}", "retirarse del Jury"),
        ("es", "el", "vuelva a {a}", "vuelva al Jury"),
        ("es", "la", "en {a}", "en la Jury"),
    ],
)
def test_an_article_merges_with_the_word_before_it_as_the_language_writes_it(
    language, article, template, written
):
    assert fill(template, {"a": ProperName("Jury", article)}, language) == written


def test_an_article_is_one_short_word_of_an_assembly_language():
    def with_article(given: str) -> str:
        return BILINGUAL.replace('name = "Test Jury"', f'name = "Test Jury"\narticle = {given}')

    assert parse_assembly(with_article('{ fr = "le" }')).names["fr"].article == "le"
    assert problems(with_article('{ es = "el" }')) == [
        "assembly (line 2): article: 'es' is not one of the assembly's languages"
    ]
    assert problems(with_article('{ fr = "le jury" }')) == [
        "assembly > article > fr (line 4): an article is one short word, such as le, la, l' or el"
    ]
