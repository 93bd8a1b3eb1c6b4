"""The assembly, its calendar (with the sessions as moved) and the latest signed audit
checkpoint: what a reader needs to place the rest and to check the audit trail."""

from __future__ import annotations

from sqlalchemy import select

from bot.services.publish.context import Context
from bot.services.publish.package import Field, Resource
from flows.i18n import N_
from store.calendar import SessionMove
from store.checkpoints import latest


async def assembly(session, context: Context) -> list[Resource]:
    a = context.assembly
    tz = context.calendar.schedule.timezone if context.calendar else None
    rows = []
    if a is not None:
        rows.append(
            {
                "name": a.name,
                "names": a.names,
                "organiser": a.organiser_in(a.assembly.default_language),
                "organisers": a.organisers or None,
                "languages": list(a.languages),
                "default_language": a.assembly.default_language,
                "timezone": tz,
                "published_at": context.now,
            }
        )
    return [
        Resource(
            "assembly",
            N_("The assembly"),
            "Its name, who commissioned it, its languages and time zone, and when this "
            "package was made.",
            [
                Field(
                    "name", "string", "The assembly's name (its default language's).", required=True
                ),
                Field("names", "object", "Its name in each of its languages."),
                Field(
                    "organiser",
                    "string",
                    "The body that runs or commissioned it (in the default language).",
                ),
                Field("organisers", "object", "That body's name in each language."),
                Field("languages", "array", "Languages participants could use."),
                Field("default_language", "string", "The language used when none is known."),
                Field("timezone", "string", "The calendar's time zone (IANA name)."),
                Field("published_at", "datetime", "When this package was made (UTC)."),
            ],
            rows,
        ),
        await _calendar(session, context),
    ]


async def _calendar(session, context: Context) -> Resource:
    moves = {m.session_id: m for m in (await session.execute(select(SessionMove))).scalars()}
    rows = []
    for item in context.calendar.sessions if context.calendar else []:
        start, end = item.start, item.end
        move = moves.get(item.id)
        if move is not None and move.original_start == start:  # moved from the command line
            start, end = move.start, move.end
        rows.append(
            {
                "session": item.id,
                "title": dict(item.title) if isinstance(item.title, dict) else item.title,
                "start": start,
                "end": end,
                "place": dict(item.place) if isinstance(item.place, dict) else item.place,
                "moved": move is not None and move.original_start == item.start,
            }
        )
    return Resource(
        "calendar",
        N_("The calendar"),
        "Every session of the assembly, with the times as they stand (a moved session "
        "shows its new time).",
        [
            Field("session", "string", "The session's id.", required=True),
            Field("title", "object", "Its title in each language."),
            Field("start", "datetime", "When it starts (UTC).", required=True),
            Field("end", "datetime", "When it ends (UTC)."),
            Field("place", "object", "Where it is held, in each language."),
            Field("moved", "boolean", "Whether the organisers moved it after announcing it."),
        ],
        rows,
        ["session"],
    )


async def checkpoint(session, context: Context) -> list[Resource]:
    row = await latest(session)
    rows = []
    if row is not None:
        rows.append(
            {
                "at": row.at,
                "origin": row.origin,
                "size": row.size,
                "head": row.head,
                "key_id": row.key_id,
                "signed_note": row.text,
            }
        )
    return [
        Resource(
            "audit_checkpoint",
            N_("The latest audit checkpoint"),
            "The size and head hash of the audit trail's hash chain, signed with the "
            "assembly's key (a C2SP signed note): `concorder audit verify --checkpoint` "
            "checks that nothing before it was removed or rewritten.",
            [
                Field("at", "datetime", "When it was signed (UTC).", required=True),
                Field("origin", "string", "The signed note's origin line."),
                Field("size", "integer", "Events in the chain."),
                Field("head", "string", "SHA-256 of the last event (hex)."),
                Field("key_id", "string", "The signing key's id (hex)."),
                Field("signed_note", "string", "The signed checkpoint, as published."),
            ],
            rows,
        )
    ]
