"""Facilitating the small-group tables: who may (roles.py: organisers every table, the
facilitators organisers name for one), their chat commands' facts (facts.py) and actions
(acting.py, through bot.services.deliberation in the turn's own transaction), and where a
member's REPORT goes (reports.py: the table's facilitators, else the organisers)."""

from __future__ import annotations

from functools import partial

from bot.relay import Relay
from bot.services.facilitation.acting import act
from bot.services.facilitation.facts import commands_in, facilitation_facts, mark_command
from bot.services.facilitation.reports import report_to_facilitators
from bot.services.facilitation.roles import (
    FacilitationError,
    Rights,
    Role,
    list_roles,
    name_facilitator,
    remove_facilitator,
    report_recipients,
    rights_of,
)

__all__ = [
    "FacilitationError",
    "Rights",
    "Role",
    "list_roles",
    "name_facilitator",
    "register",
    "remove_facilitator",
    "report_to_facilitators",
    "report_recipients",
    "rights_of",
]


def register(relay: Relay) -> None:
    """Join the conversations: which messages are facilitators' commands, what they know,
    what they do. (A member's REPORT reaches their table's facilitators through
    `deliberation.register(relay, reports=report_to_facilitators)`, in the root.)"""
    relay.hooks.before_inbound(mark_command, commands_in)
    relay.hooks.provide_facts(facilitation_facts)
    relay.hooks.after_turn(partial(act, relay))
