"""Participation by category: per value of each quota category, how many were invited,
responded, registered, were selected and confirmed, small counts hidden (suppression.py).

A person's value is their registration answer, else their pool attribute, else
"(no answer)",
so the values of a category always add up to the "(all)" row, which every category
shares: a hidden count cannot be recovered from it, nor from another category's rows.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from bot.services.publish.context import Context
from bot.services.publish.package import Field, Resource
from bot.services.publish.suppression import SUPPRESSED, suppress
from bot.services.recruitment.funnel import NO_VALUE, funnel_categories
from flows.i18n import N_
from store.draw_records import completed_selection
from store.recruitment import (
    CONFIRMED,
    CONSENTED,
    DECLINED,
    FAILED,
    REGISTERED,
    RESPONDED,
    SELECTED,
    Invitation,
    PoolEntry,
    RegistrationAnswer,
    Selection,
)

STAGES = ("invited", "responded", "registered", "selected", "confirmed")
ALL = "(all)"


async def categories(session, context: Context) -> dict[str, list[str]]:
    """The recorded draw's quota categories and values, else those `concorder status`
    shows (the assembly's quotas, else its registration questions)."""
    run = await completed_selection(session)
    if run is not None:
        return {c: list(v) for c, v in run.payload.get("input", {}).get("quotas", {}).items()}
    return funnel_categories(context.assembly) if context.assembly else {}


async def stages_by_person(session) -> dict[str, set[str]]:
    reached: dict[str, set[str]] = {}
    for pid, status, responded, registered in (
        await session.execute(
            select(
                Invitation.participant_id,
                Invitation.status,
                Invitation.responded_at,
                Invitation.registered_at,
            )
        )
    ).all():
        stages = reached.setdefault(pid, set())
        if status != FAILED:
            stages.add("invited")
        # The times say who got this far, though they withdrew later; the status covers
        # rows written without them (an imported registration).
        if responded is not None or status in (RESPONDED, CONSENTED, REGISTERED):
            stages.add("responded")
        if registered is not None or status == REGISTERED:
            stages.add("registered")
    for pid, status, rank in (
        await session.execute(
            select(Selection.participant_id, Selection.status, Selection.reserve_rank)
        )
    ).all():
        stages = reached.setdefault(pid, set())
        if status in (SELECTED, CONFIRMED) or (status == DECLINED and rank is None):
            stages.add("selected")
        if status == CONFIRMED:
            stages.add("confirmed")
    return reached


async def values_by_person(session) -> dict[str, dict[str, str]]:
    values: dict[str, dict[str, str]] = {}
    for pid, attributes in (
        await session.execute(select(PoolEntry.participant_id, PoolEntry.attributes))
    ).all():
        values[pid] = {k: str(v) for k, v in (attributes or {}).items()}
    for pid, question, answer in (
        await session.execute(
            select(
                RegistrationAnswer.participant_id,
                RegistrationAnswer.question_id,
                RegistrationAnswer.answer,
            )
        )
    ).all():
        values.setdefault(pid, {})[question] = answer
    return values


def counts(
    reached: dict[str, set[str]], values: dict[str, dict[str, str]], chosen: dict[str, list[str]]
) -> Counter:
    """(category, value, stage) -> people; (ALL, ALL, stage) the totals."""
    table: Counter = Counter()
    for pid, stages in reached.items():
        for stage in stages:
            table[(ALL, ALL, stage)] += 1
            for category in chosen:
                value = values.get(pid, {}).get(category) or NO_VALUE
                table[(category, value, stage)] += 1
    return table


def table_rows(table: Counter, chosen: dict[str, list[str]], min_cell: int) -> list[dict]:
    """The published rows: one per category and value (those declared, then any other
    met), then the totals, hidden as needed."""
    value_lists = {
        c: declared + sorted({k[1] for k in table if k[0] == c} - set(declared))
        for c, declared in chosen.items()
    }
    cells = {
        (c, v, s): table[(c, v, s)]
        for c, values in value_lists.items()
        for v in values
        for s in STAGES
    } | {(ALL, ALL, s): table[(ALL, ALL, s)] for s in STAGES}
    sums = [
        ([(c, v, s) for v in values], (ALL, ALL, s))
        for c, values in value_lists.items()
        for s in STAGES
    ]
    hidden = suppress(cells, sums, min_cell)
    keys = [(c, v) for c, values in value_lists.items() for v in values] + [(ALL, ALL)]
    return [
        {"category": c, "value": v}
        | {s: SUPPRESSED if (c, v, s) in hidden else cells[(c, v, s)] for s in STAGES}
        for c, v in keys
    ]


async def participation(session, context: Context) -> list[Resource]:
    chosen = await categories(session, context)
    table = counts(await stages_by_person(session), await values_by_person(session), chosen)
    rows = table_rows(table, chosen, context.min_cell)
    meaning = {
        "invited": "Sent an invitation.",
        "responded": "Replied to it.",
        "registered": "Consented and answered the registration questions.",
        "selected": "Drawn for the panel.",
        "confirmed": "Confirmed their place on the panel.",
    }
    return [
        Resource(
            "participation",
            N_("Participation by category"),
            f"People at each step, per value of each quota category, and in all ('{ALL}'). "
            f"Counts from 1 to {context.min_cell - 1} read '{SUPPRESSED}', and so does "
            "another count of the same column wherever a total would give one away.",
            [
                Field("category", "string", "The quota category.", required=True),
                Field("value", "string", f"Its value ('{NO_VALUE}': not given).", required=True),
                *(Field(stage, "integer", meaning[stage]) for stage in STAGES),
            ],
            rows,
            ["category", "value"],
        )
    ]
