"""Everything held
about one person (access and portability, GDPR Art. 15 and 20), read from the inventory."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.polls.own import own_answers
from store.draw_records import DrawRun
from store.groups import GroupRun
from store.models import Contact, Participant
from store.personal_data import BY_CONTACT, INVENTORY, KEEP, Place


async def contact_ids(session: AsyncSession, participant_id: str) -> list[int]:
    return list(
        (
            await session.execute(
                select(Contact.id).where(Contact.participant_id == participant_id)
            )
        ).scalars()
    )


def _where(place: Place, participant_id: str, contacts: list[int]):
    table = place.table
    if place.by == BY_CONTACT:
        return table.c.contact_id.in_(contacts)
    column = table.c.id if place.name == "participants" else table.c.participant_id
    return column == participant_id


async def rows_held(session: AsyncSession, participant_id: str) -> dict[str, tuple[int, str]]:
    """Per table: how many rows hold something of the person, and what erasure does."""
    contacts = await contact_ids(session, participant_id)
    held = {}
    for place in INVENTORY:
        count = await session.scalar(
            select(func.count())
            .select_from(place.table)
            .where(_where(place, participant_id, contacts))
        )
        held[place.name] = (count or 0, place.action)
    return held


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def export_person(session: AsyncSession, participant_id: str, key: bytes) -> dict[str, Any]:
    """Everything held about one person, table by table, as plain JSON data; `key` is the
    server secret their poll answers' pseudonyms are made with."""
    contacts = await contact_ids(session, participant_id)
    tables: dict[str, Any] = {}
    for place in INVENTORY:
        rows = await session.execute(
            select(place.table)
            .where(_where(place, participant_id, contacts))
            .order_by(*place.table.primary_key.columns)
        )
        tables[place.name] = {
            "what": place.what,
            "after_erasure": place.why_kept if place.action == KEEP else place.action,
            "rows": [{k: _plain(v) for k, v in row._mapping.items()} for row in rows],
        }
    tables["draw_runs"] = {
        "what": "what each draw was given about you (by your participant id)",
        "after_erasure": "kept: the draw's record, so anyone can re-run and check it",
        "rows": await _draw_inputs(session, participant_id),
    }
    tables["group_runs"] = {
        "what": "what each small-group allocation was given about you (language, the "
        "categories it mixes, any table you were pinned to) and organisers' moves of you",
        "after_erasure": "kept: the allocation's record, so anyone can re-run and check it",
        "rows": await _group_inputs(session, participant_id),
    }
    person = await session.get(Participant, participant_id)
    language = person.language if person is not None else "en"
    tables["poll_answers"] = {
        "what": "your answers to the assembly's questionnaires, as you gave them (kept under "
        "a code of each questionnaire, not your participant id)",
        "after_erasure": "kept under that code for the questionnaire's report, as the "
        "draw's record",
        "rows": await own_answers(session, key, participant_id, language),
    }
    return {"participant_id": participant_id, "tables": tables}


async def _draw_inputs(session: AsyncSession, participant_id: str) -> list[dict[str, Any]]:
    found = []
    for run in (await session.execute(select(DrawRun).order_by(DrawRun.id))).scalars():
        for respondent in (run.payload or {}).get("input", {}).get("respondents", []):
            if respondent.get("id") == participant_id:
                found.append({"draw_id": run.draw_id, "kind": run.kind, "input": respondent})
    return found


async def _group_inputs(session: AsyncSession, participant_id: str) -> list[dict[str, Any]]:
    found = []
    for run in (await session.execute(select(GroupRun).order_by(GroupRun.id))).scalars():
        payload = run.payload or {}
        member = next((m for m in payload.get("members", []) if m["id"] == participant_id), None)
        if member is None:
            continue
        found.append(
            {
                "run_id": run.run_id,
                "status": run.status,
                "input": member,
                "pins": [p for p in payload.get("pins", []) if p[0] == participant_id],
                "moves": [m for m in run.moves or [] if m.get("member") == participant_id],
            }
        )
    return found
