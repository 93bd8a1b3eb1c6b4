"""What a typed reply means for each method, in each language (pure: flows/ballot_text.py),
and what loading a definition refuses."""

from __future__ import annotations

import pytest

from flows import ballot_text as bt
from flows.ballot_spec import BallotError, load_ballots, plain
from flows.i18n import translator
from tests.ballot_world import BALLOTS_FILE, LANGUAGES

DEFS = {b.id: plain(b) for b in load_ballots(str(BALLOTS_FILE), LANGUAGES)}

READ = [
    ("r1", "en", "1", "yes"),
    ("r1", "fr", "Non", "no"),
    ("r1", "es", "sí", "yes"),
    ("first", "en", "2", "bike"),
    ("first", "fr", "vélo", "bike"),
    ("first", "es", "Aceras más anchas", "walk"),
    ("order", "en", "3 1 2", ["night", "tram", "lanes"]),
    ("order", "fr", "3,1", ["night", "tram"]),
    ("order", "es", "2>3", ["lanes", "night"]),
    ("agree", "en", "4", 4),
    ("pick2", "en", "3 1", ["tram", "night"]),
    ("grades", "en", "1 3", {"a": 2, "b": 0}),
]
REFUSED = [
    ("r1", "en", "maybe", "Reply with the number of one option."),
    ("first", "en", "4", "Reply with the number of one option."),
    ("order", "en", "3 3", "Each option may appear only once."),
    ("order", "fr", "3 9", "Répondez par les numéros des options, par exemple 3 1 2."),
    ("pick2", "en", "1 2 3", "Choose at most 2 options."),
    ("grades", "es", "1 4", "Responda una nota (de 1 a 3) para cada una de las 2 opciones"),
    ("agree", "en", "", "Reply with the number of one option."),
]


@pytest.mark.parametrize(("ballot", "language", "text", "vote"), READ)
def test_a_reply_reads_as_a_vote(ballot, language, text, vote):
    assert bt.parse(DEFS[ballot], translator(language), text) == vote


@pytest.mark.parametrize(("ballot", "language", "text", "reason"), REFUSED)
def test_a_reply_that_is_not_a_vote_says_what_to_write(ballot, language, text, reason):
    with pytest.raises(bt.NotAVote) as refused:
        bt.parse(DEFS[ballot], translator(language), text)
    assert refused.value.reason.startswith(reason)


def test_a_vote_is_read_back_in_the_voters_words():
    fr, es = translator("fr"), translator("es")
    assert bt.describe(DEFS["order"], fr, ["night", "tram"]) == "1. Bus de nuit, 2. Ligne de tram"
    assert bt.describe(DEFS["pick2"], es, ["tram", "night"]) == (
        "Línea de tranvía y Autobuses nocturnos"
    )
    assert bt.describe(DEFS["agree"], fr, 4) == "4 D'accord"
    assert bt.describe(DEFS["grades"], translator("en"), {"a": 2, "b": 0}) == (
        "Plan A: Good; Plan B: Poor"
    )


@pytest.mark.parametrize(
    ("option", "problem"),
    [
        ('{ key = "more", label = { en = "More" } }', "'more' is a reply word"),
        ('{ key = "x", label = { en = "12" } }', "'12' is a number"),
        ('{ key = "yes", label = { en = "Yes" } }', "option key 'yes' is a reply word"),
        ('{ key = "b", label = { en = "A" } }', "'a' names both 'a' and 'b'"),
    ],
)
def test_an_option_that_would_be_misread_is_refused(tmp_path, option, problem):
    path = tmp_path / "b.toml"
    path.write_text(
        '[[ballots]]\nid = "x"\ntitle = { en = "T" }\nquestion = { en = "Q" }\n'
        f'method = "single"\noptions = [{{ key = "a", label = {{ en = "A" }} }}, {option}]\n'
    )
    with pytest.raises(BallotError) as refused:
        load_ballots(str(path), ["en"])
    assert problem in " ".join(refused.value.problems)
