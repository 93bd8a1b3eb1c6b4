"""The values that cross the boundary between the engine and the rest of the service."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flows.facts import Facts


@dataclass(frozen=True)
class Choice:
    """One option offered to the participant: a stable key and a localised label."""

    key: str
    label: str


@dataclass(frozen=True)
class Inbound:
    """What a participant sent: free text, or the key of a button they pressed."""

    channel: str  # "sms" | "telegram"
    text: str = ""
    button: str | None = None  # callback data of a pressed inline button
    # The kind of attachment that came with it ("photo", "voice", ...), if any: the service
    # reads none, so an attachment without words is answered as such.
    media: str | None = None


@dataclass(frozen=True)
class Outbound:
    """A message to send. `to_channel` None means: reply on the channel the turn came in on."""

    text: str
    choices: tuple[Choice, ...] = ()
    urgent: bool = True  # replies are urgent; scheduled, non-urgent sends respect quiet hours
    # The one message allowed after an opt-out (its confirmation).
    compliance: bool = False
    markdown: bool = False
    to_channel: str | None = None
    kind: str = "reply"


@dataclass(frozen=True)
class Event:
    """An audit event. `data` must be JSON-serialisable and hold no personal data."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class State:
    """Everything the engine knows about one participant's conversation."""

    language: str = "en"
    opted_out: bool = False
    flow: str | None = None
    step: str | None = None
    # The choices offered by the last prompt, as [key, label] pairs: how replies are matched.
    offered: list[list[str]] = field(default_factory=list)
    # A short token naming the prompt that offered the choices (stale button detection).
    prompt_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "opted_out": self.opted_out,
            "flow": self.flow,
            "step": self.step,
            "offered": list(self.offered),
            "prompt_id": self.prompt_id,
            "data": self.data,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None, *, language: str = "en") -> State:
        raw = raw or {}
        return cls(
            language=raw.get("language", language),
            opted_out=bool(raw.get("opted_out", False)),
            flow=raw.get("flow"),
            step=raw.get("step"),
            offered=[list(pair) for pair in raw.get("offered", [])],
            prompt_id=raw.get("prompt_id"),
            # A deep copy: changes to nested data must not reach the stored row's own dict,
            # or the ORM sees no change when the state is assigned back and drops them.
            data=copy_json(raw.get("data", {})),
        )

    def copy(self) -> State:
        """A copy whose changes do not reach this state (the engine works on one)."""
        return State(
            language=self.language,
            opted_out=self.opted_out,
            flow=self.flow,
            step=self.step,
            offered=[list(pair) for pair in self.offered],
            prompt_id=self.prompt_id,
            data=copy_json(self.data),
        )


def copy_json(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars): several times cheaper than
    `copy.deepcopy`, which every turn paid. Anything else is deep-copied as before."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    if value is None or isinstance(value, str | int | float):
        return value
    return copy.deepcopy(value)


@dataclass
class Turn:
    """The result of handling one inbound message."""

    state: State
    outbound: list[Outbound] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


@dataclass(frozen=True)
class Context:
    """What a flow may know about the world, passed in so flows stay pure."""

    now: datetime
    participant_id: str
    channel: str
    # Assembly configuration and facts loaded by the service.
    facts: Facts = field(default_factory=Facts)
