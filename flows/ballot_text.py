"""A ballot in the voter's words: its options in their language, a typed reply read as a
vote ("2", "bus", "3 1 2"), and a vote said back to them. Pure.

Votes have the counting package's shapes, as JSON stores them: yes_no and single an option
key; approval a list of keys (declared order); ranking a list of keys (most preferred
first, partial allowed); scale a level (1..levels); majority_judgment {option: grade
index}, 0 being the worst grade (the definition lists grades best first, as voters read
them: grade 1 of 4 is index 3).
"""

from __future__ import annotations

import re
from typing import Any

from babel.lists import format_list

from flows.ballot_spec import option_words
from flows.i18n import Translator
from flows.text import fold

MULTI = ("approval", "ranking", "majority_judgment")  # a vote of several marks
_SPLIT = re.compile(r"[\s,;/>\-]+")


class NotAVote(ValueError):
    """A reply that is not a vote; `reason` says why, in the voter's language."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def localised(texts: dict[str, str], language: str) -> str:
    return texts.get(language) or texts.get("en") or next(iter(texts.values()), "")


def options(definition: dict[str, Any], t: Translator) -> list[tuple[str, str]]:
    """(key, label) of each option in the voter's language, in the declared order."""
    language = t.language
    if definition["method"] == "scale":
        labels = definition.get("level_labels") or []
        return [
            (str(n), localised(labels[n - 1], language) if labels else str(n))
            for n in range(1, definition["levels"] + 1)
        ]
    if definition["method"] == "yes_no" and not definition.get("options"):
        return [("yes", t.gettext("Yes")), ("no", t.gettext("No"))]
    return [(o["key"], localised(o["label"], language)) for o in definition["options"]]


def grades(definition: dict[str, Any], t: Translator) -> list[str]:
    return [localised(g, t.language) for g in definition.get("grades", [])]


def title(definition: dict[str, Any], t: Translator) -> str:
    return localised(definition["title"], t.language)


def question(definition: dict[str, Any], t: Translator) -> str:
    return localised(definition["question"], t.language)


def _option_of(definition: dict[str, Any], t: Translator, token: str) -> str | None:
    keys = [k for k, _ in options(definition, t)]
    if token.isdigit():
        n = int(token)
        return keys[n - 1] if 1 <= n <= len(keys) else None
    word = fold(token)
    for option in definition.get("options", []):
        if word in option_words(option, t.language):
            return option["key"]
    for key, label in options(definition, t):
        if word in (fold(key), fold(label)):
            return key
    return None


def parse(definition: dict[str, Any], t: Translator, text: str) -> Any:
    """The vote a typed reply makes, or NotAVote saying what to write."""
    method = definition["method"]
    whole = _option_of(definition, t, text.strip()) if text.strip() else None
    if method in ("yes_no", "single", "scale"):
        if whole is None:
            raise NotAVote(t.gettext("Reply with the number of one option."))
        return int(whole) if method == "scale" else whole
    tokens = [tok for tok in _SPLIT.split(text.strip()) if tok]
    if method == "majority_judgment":
        return _grades_of(definition, t, tokens)
    picked = [whole] if whole is not None else [_option_of(definition, t, tok) for tok in tokens]
    if not picked or None in picked:
        raise NotAVote(t.gettext("Reply with the numbers of the options, e.g. 3 1 2."))
    if len(set(picked)) != len(picked):
        raise NotAVote(t.gettext("Each option may appear only once."))
    if method == "approval":
        limit = definition.get("max_choices") or len(options(definition, t))
        if len(picked) > limit:
            raise NotAVote(t.gettext("Choose at most {n} options.", n=limit))
        order = [k for k, _ in options(definition, t)]
        return sorted(picked, key=order.index)
    return picked


def _grades_of(definition: dict[str, Any], t: Translator, tokens: list[str]) -> dict[str, int]:
    keys = [k for k, _ in options(definition, t)]
    count = len(definition.get("grades", []))
    if len(tokens) != len(keys) or not all(
        tok.isdigit() and 1 <= int(tok) <= count for tok in tokens
    ):
        raise NotAVote(
            t.gettext(
                "Reply with one grade (1 to {grades}) for each of the {options} options, "
                "in order, e.g. {example}.",
                grades=count,
                options=len(keys),
                example=" ".join(str(min(n, count)) for n in range(1, len(keys) + 1)),
            )
        )
    return {key: count - int(tok) for key, tok in zip(keys, tokens, strict=True)}


def describe(definition: dict[str, Any], t: Translator, vote: Any) -> str:
    """A vote as the voter reads it back ('Bus', '1. Bus, 2. Tram', 'Bus: Good; ...')."""
    labels = dict(options(definition, t))
    method = definition["method"]
    if vote is None or vote == [] or vote == {}:
        return t.gettext("a blank vote")
    if method == "scale":
        return f"{vote} {labels[str(vote)]}" if labels[str(vote)] != str(vote) else str(vote)
    if method == "approval":
        return format_list([labels[k] for k in vote], locale=t.locale)
    if method == "ranking":
        return ", ".join(f"{n}. {labels[k]}" for n, k in enumerate(vote, start=1))
    if method == "majority_judgment":
        names = grades(definition, t)
        return "; ".join(f"{labels[k]}: {names[len(names) - 1 - g]}" for k, g in vote.items())
    return labels[vote]


def numbered(definition: dict[str, Any], t: Translator) -> str:
    return "\n".join(f"{n} {label}" for n, (_, label) in enumerate(options(definition, t), 1))


def how_to_reply(definition: dict[str, Any], t: Translator) -> str:
    """What to type for a vote of several marks."""
    method = definition["method"]
    if method == "ranking":
        return t.gettext(
            "Reply with the numbers in your order of preference, most preferred first, "
            "e.g. 3 1 2. You need not rank them all."
        )
    if method == "approval":
        limit = definition.get("max_choices") or len(options(definition, t))
        return t.gettext(
            "Reply with the numbers of the options you approve of (up to {n}), e.g. 1 3.",
            n=limit,
        )
    names = grades(definition, t)
    scale = ", ".join(f"{n} {name}" for n, name in enumerate(names, start=1))
    return t.gettext(
        "Give each option a grade ({grades}): reply with one grade per option, in order, "
        "e.g. 1 3 2.",
        grades=scale,
    )
