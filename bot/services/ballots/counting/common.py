"""What every counting method shares: the result, the refusal of a bad vote, exact shares."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any


@dataclass(frozen=True)
class Tally:
    method: str
    options: tuple[str, ...]  # option keys in declared order
    ballots: int  # valid ballots counted
    abstentions: int  # blank/empty ballots
    winners: tuple[str, ...]  # () when nobody wins; ties: all tied
    ranking: tuple[tuple[str, ...], ...]  # full order, tied options grouped
    details: dict[str, Any]  # JSON-serialisable, method specifics


class InvalidVote(ValueError):
    """A vote the method cannot count. `reason` is a short code the voting flow can
    turn into a message in the voter's language."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# Reason codes (stable: the voting flow maps them to messages).
UNKNOWN_OPTION = "unknown_option"
DUPLICATE_OPTION = "duplicate_option"
TOO_MANY_CHOICES = "too_many_choices"
OUT_OF_RANGE = "out_of_range"
WRONG_SHAPE = "wrong_shape"


def fraction(value: Fraction | int | float | str, name: str) -> Fraction:
    """A parameter as an exact fraction. A float is read as the decimal it prints as
    (0.8 is 4/5), so a threshold written 0.8 is not 0.8000000000000000444."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, not {value!r}")
    if isinstance(value, float):
        return Fraction(repr(value))
    try:
        return Fraction(value)
    except (TypeError, ValueError, ZeroDivisionError):
        raise ValueError(f"{name} must be a fraction such as 2/3, not {value!r}") from None


def exact(value: Fraction) -> str:
    """A fraction as JSON can carry it without rounding: "2/3", "1", "0"."""
    return str(value)


def share(part: int, whole: int) -> Fraction:
    return Fraction(part, whole) if whole else Fraction(0)


def check_options(options: Sequence[str]) -> tuple[str, ...]:
    keys = tuple(options)
    if not keys:
        raise ValueError("a ballot needs at least one option")
    if len(set(keys)) != len(keys):
        raise ValueError("option keys must be distinct")
    if not all(isinstance(k, str) and k for k in keys):
        raise ValueError("option keys must be non-empty strings")
    return keys


def group_by(
    options: Sequence[str], key: Callable[[str], Any], reverse: bool = True
) -> tuple[tuple[str, ...], ...]:
    """Options ordered by `key` (best first when reverse), equal keys grouped, each group
    in declared order."""
    groups: list[tuple[Any, list[str]]] = []
    for option in sorted(options, key=key, reverse=reverse):  # sorted() is stable
        k = key(option)
        if groups and groups[-1][0] == k:
            groups[-1][1].append(option)
        else:
            groups.append((k, [option]))
    return tuple(tuple(members) for _, members in groups)
