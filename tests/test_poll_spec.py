"""`[[polls]]` in the assembly file: the example's poll loads, and every mistake is named
with its place and its line, nested tables ([[polls.waves]], [[polls.questions]]) too."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.assembly import AssemblyError, parse_assembly
from flows.config_file import AssemblyFile
from flows.poll_spec import PollError, check, poll_line, polls_of
from tests.poll_world import POLL_FILE

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "citizens-jury" / "assembly.toml"


def _example_with(replace: str, by: str) -> str:
    text = EXAMPLE.read_text()
    assert replace in text
    return text.replace(replace, by, 1)


def _problems(text: str) -> list[str]:
    with pytest.raises(AssemblyError) as caught:
        parse_assembly(text)
    return caught.value.problems


def _line(text: str, fragment: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_the_example_assembly_declares_a_poll_with_two_waves():
    file = AssemblyFile.read(EXAMPLE)
    [poll] = polls_of(file, ["en", "fr", "es"])
    assert poll.id == "views"
    assert [w.id for w in poll.waves] == ["before", "after"]
    assert [q.kind for q in poll.questions] == ["agree", "agree", "knowledge"]


def test_a_missing_translation_names_the_question_and_its_line():
    text = _example_with(
        'es = "El centro debería estar libre de coches los sábados." }', 'es = "" }'
    )
    problems = _problems(text)
    line = _line(text, "The town centre should be car-free on Saturdays.")
    assert (
        f"polls #1 (id 'views') > questions #2 (id 'car-free') > text (line {line}): "
        "no text in 'es'" in problems
    )


def test_a_wrong_answer_key_and_an_unknown_kind_are_named_by_line():
    text = _example_with('answer = "half"', 'answer = "most"')
    text = text.replace('id = "car-free"\nkind = "agree"', 'id = "car-free"\nkind = "opinion"')
    problems = _problems(text)
    # A question's own rule is named at its [[polls.questions]] line.
    fare = _header_before(text, 'answer = "most"')
    car = _header_before(text, 'kind = "opinion"')
    assert (
        f"polls #1 (id 'views') > questions #3 (id 'fare-share') (line {fare}): answer: give "
        "the key of the right option (tenth, half, all)" in problems
    )
    assert (
        f"polls #1 (id 'views') > questions #2 (id 'car-free') (line {car}): kind 'opinion': "
        "choose one of agree, knowledge" in problems
    )


def _header_before(text: str, fragment: str) -> int:
    lines = text.splitlines()
    at = _line(text, fragment)
    return max(n for n in range(1, at) if lines[n - 1].strip() == "[[polls.questions]]")


def test_a_wave_tied_to_a_session_that_does_not_exist():
    text = _example_with('session = "s3"\nhours = 7', 'session = "s9"\nhours = 7')
    problems = _problems(text)
    line = _line(text, 'session = "s9"')
    assert (
        f"polls #1 (id 'views') > waves #2 (id 'after') > session (line {line}): no session "
        "has the id 's9' (ids: s1, s2, s3)" in problems
    )


def test_an_unknown_setting_and_two_anchors_for_one_wave():
    text = _example_with('id = "before"\nsession = "s1"', 'id = "before"\nsesion = "s1"')
    problems = _problems(text)
    line = _line(text, 'sesion = "s1"')
    assert (
        f"polls #1 (id 'views') > waves #1 (id 'before') > sesion (line {line}): unknown "
        "setting (check its spelling and its table)" in problems
    )
    text = _example_with('session = "s3"\nhours = 7', 'session = "s3"\nat = 2027-02-06T17:00:00Z')
    assert any("give one of session, briefing or at" in p for p in _problems(text))


def test_the_same_question_id_twice_and_an_agree_question_with_options():
    text = POLL_FILE.read_text().replace('id = "car-lanes"', 'id = "free-buses"')
    file = AssemblyFile.parse(text, "poll.toml")
    with pytest.raises(PollError) as caught:
        check(file.raw["polls"], file.text, file.path, ["en", "fr", "es"], None)
    assert any("two questions have the id 'free-buses'" in p for p in caught.value.problems)
    text = POLL_FILE.read_text().replace(
        'id = "car-lanes"\nkind = "agree"', 'id = "car-lanes"\nkind = "agree"\nanswer = "a"'
    )
    file = AssemblyFile.parse(text, "poll.toml")
    with pytest.raises(PollError) as caught:
        check(file.raw["polls"], file.text, file.path, ["en"], None)
    [problem] = caught.value.problems
    assert "questions #3 (id 'car-lanes')" in problem
    assert "an agree question has the 1 to 5 scale: no options, no answer" in problem


def test_the_line_of_a_nested_table_key():
    text = POLL_FILE.read_text()
    lines = text.splitlines()
    at = poll_line(text, ("polls", 0, "waves", 1, "at"))
    assert lines[at - 1].startswith("at = 2026-12-10")
    options = poll_line(text, ("polls", 0, "questions", 1, "options"))
    assert lines[options - 1].startswith("options = [")
    title = poll_line(text, ("polls", 0, "title"))
    assert lines[title - 1].startswith("title = ")
