"""The points where features join the one-transaction turn in `bot.services.turns`.

Each feature's `register(...)` adds its functions here; the composition root
(`bot.bootstrap`) calls those in a visible order, which is the order they run in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from flows.model import Event
from store.models import Contact, Participant

# Facts a flow may need about the world (the assembly, its deadlines).
FactsProvider = Callable[[AsyncSession, Participant], Awaitable[dict[str, Any] | None]]
# The same facts for a group of inbound messages handled together (`bot.services.batch`):
# given the group's participants, reads what their turns need in a few queries and returns
# the facts of one of them, made from those rows and the participant as it is at its turn
# (a person's second message sees the language their first one chose). Its facts must
# equal the provider's; a provider registered without one is called once per turn.
FactsForGroup = Callable[
    [AsyncSession, Sequence[Participant]],
    Awaitable[Callable[[Participant], dict[str, Any] | None]],
]
# Turns a flow event into rows of its own (a consent, an answer), inside the turn's
# transaction, after the participant's new state is set.
EventHandler = Callable[[AsyncSession, Participant, Event, datetime], Awaitable[None]]
# Before an inbound message finds its contact: may bind the address to an existing
# participant (a Telegram /start link carrying an invitation code). Called as
# `hook(session, *, record_id, channel, address, text, language, now)`, where `record_id`
# is the stored inbound message's row.
InboundHook = Callable[..., Awaitable[None]]
# What lets inbound messages be handled in batches (`bot.services.batch`) beside an inbound
# hook: given the batch's messages as (channel, address, text) and the (channel, address)
# pairs that already have a contact, each to its contact and participant (locked), the
# positions of the messages the hook may act on; those take the one-message path. A hook
# registered without one sends every message there.
InboundScreen = Callable[
    [
        AsyncSession,
        Sequence[tuple[str, str, str]],
        Mapping[tuple[str, str], tuple[Contact, Participant]],
    ],
    Awaitable[Collection[int]],
]
# A value read in the query that finds and locks an inbound message's contact and
# participant (a correlated scalar subquery on `Contact` and `Participant`), so the facts
# it serves cost no round trip of their own. Providers find it with `read_with_person`.
PersonColumn = ColumnElement[Any]
# After a turn's state, messages and events are written, in the same transaction, with
# what event handlers do not get: the contact and the message text (an organiser's SEND
# turns the text they previewed into a broadcast). Called as
# `hook(session, settings, *, participant, contact, text, turn, now)`; returns rows queued.
TurnHook = Callable[..., Awaitable[int]]


class Hooks:
    def __init__(self) -> None:
        self.facts: list[FactsProvider] = []
        self.facts_for_group: list[FactsForGroup | None] = []  # beside `facts`, in order
        self.events: dict[str, list[EventHandler]] = {}
        self.inbound: list[InboundHook] = []
        self.inbound_screens: list[InboundScreen | None] = []
        self.turns: list[TurnHook] = []
        self.person_columns: dict[str, PersonColumn] = {}

    def provide_facts(
        self, provider: FactsProvider, for_group: FactsForGroup | None = None
    ) -> None:
        self.facts.append(provider)
        self.facts_for_group.append(for_group)

    def on_event(self, kind: str, handler: EventHandler) -> None:
        self.events.setdefault(kind, []).append(handler)

    def before_inbound(self, hook: InboundHook, screen: InboundScreen | None = None) -> None:
        self.inbound.append(hook)
        self.inbound_screens.append(screen)

    def after_turn(self, hook: TurnHook) -> None:
        self.turns.append(hook)

    def read_with_person(self, name: str, column: PersonColumn) -> None:
        self.person_columns[name] = column

    def handlers(self, kind: str) -> list[EventHandler]:
        return self.events.get(kind, [])
