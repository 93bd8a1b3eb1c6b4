"""Ballot results and receipt lists as each closed ballot published them, and the
recommendations tracker: each recommendation, its vote and the authority's responses."""

from __future__ import annotations

import json

from sqlalchemy import select

from bot.services.publish.context import Context
from bot.services.publish.package import Field, Resource
from bot.services.recommendations import tracker
from flows.i18n import N_
from store.ballots import CLOSED, Ballot


async def ballots(session, context: Context) -> list[Resource]:
    closed = list(
        (
            await session.execute(select(Ballot).where(Ballot.status == CLOSED).order_by(Ballot.id))
        ).scalars()
    )
    results, receipts = [], []
    for ballot in closed:
        published = ballot.results or {}
        tally = published.get("tally") or {}
        definition = ballot.definition
        results.append(
            {
                "ballot": ballot.id,
                "title": definition.get("title"),
                "question": definition.get("question"),
                "options": {o["key"]: o["label"] for o in definition.get("options") or []},
                "method": published.get("method"),
                "opened_at": ballot.opened_at,
                "closed_at": ballot.closed_at,
                "voters": published.get("voters"),
                "voted": published.get("voted"),
                "quorum": published.get("quorum"),
                "quorum_met": published.get("quorum_met"),
                "winners": list(tally.get("winners") or []),
                "tally": tally,
                "results_sha256": published.get("results_sha256"),
                "receipts_sha256": published.get("trackers_sha256"),
            }
        )
        for tracker_code, choice, status in published.get("trackers", []):
            receipts.append(
                {"ballot": ballot.id, "receipt": tracker_code, "choice": choice, "status": status}
            )
    return [
        Resource(
            "ballot_results",
            N_("Ballot results"),
            "Every closed ballot as published at its close: turnout, quorum and the "
            "method's tally; the SHA-256 digests are in the audit trail (ballot.tallied).",
            [
                Field("ballot", "string", "The ballot's id.", required=True),
                Field("title", "object", "Its title in each language."),
                Field("question", "object", "Its question in each language."),
                Field("options", "object", "Each option's label by its key (none: Yes, No)."),
                Field("method", "string", "How it was counted."),
                Field("opened_at", "datetime", "When it opened (UTC)."),
                Field("closed_at", "datetime", "When it closed (UTC)."),
                Field("voters", "integer", "People on the roll."),
                Field("voted", "integer", "People who voted."),
                Field("quorum", "integer", "Votes needed for the result to stand."),
                Field("quorum_met", "boolean", "Whether the quorum was reached."),
                Field("winners", "array", "The winning option keys (several on a tie)."),
                Field("tally", "object", "The method's full tally."),
                Field("results_sha256", "string", "SHA-256 of the published results."),
                Field("receipts_sha256", "string", "SHA-256 of the receipt list."),
            ],
            results,
            ["ballot"],
        ),
        Resource(
            "ballot_receipts",
            N_("Ballot receipts"),
            "Every receipt code with the choice it carries, sorted by code: each voter "
            "finds theirs, anyone can recount. A replaced vote carries no choice.",
            [
                Field("ballot", "string", "The ballot's id.", required=True),
                Field("receipt", "string", "The receipt code.", required=True),
                Field("choice", "string", "The choice, as JSON (an option, a ranking, marks)."),
                Field("status", "string", "counted or replaced."),
            ],
            [r | {"choice": None if r["choice"] is None else _json(r["choice"])} for r in receipts],
            ["ballot", "receipt"],
        ),
    ]


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


async def recommendations(session, context: Context) -> list[Resource]:
    tracked = await tracker(session)
    recs, responses = [], []
    for item in tracked:
        r, vote = item.recommendation, item.ballot or {}
        recs.append(
            {
                "recommendation": r.id,
                "number": r.number,
                "title": r.title,
                "text": r.text,
                "ballot": r.ballot_id,
                "ballot_voted": vote.get("voted"),
                "ballot_voters": vote.get("voters"),
                "ballot_winners": vote.get("winners"),
                "ballot_results_sha256": vote.get("results_sha256"),
                "response": item.status,
                "responded_on": item.responded_on,
            }
        )
        for response in item.responses:
            responses.append(
                {
                    "recommendation": r.id,
                    "version": response.version,
                    "status": response.status,
                    "responded_on": response.responded_on,
                    "text": response.text,
                    "recorded_at": response.created_at,
                }
            )
    return [
        Resource(
            "recommendations",
            N_("Recommendations tracker"),
            "The assembly's final recommendations, the vote that adopted each, and the "
            "commissioning authority's latest response.",
            [
                Field("recommendation", "string", "Its id.", required=True),
                Field("number", "integer", "Its number in the assembly's report."),
                Field("title", "object", "Its title in each language."),
                Field("text", "object", "Its text in each language."),
                Field("ballot", "string", "The ballot that adopted it (see ballot_results)."),
                Field("ballot_voted", "integer", "People who voted in that ballot."),
                Field("ballot_voters", "integer", "People on that ballot's roll."),
                Field("ballot_winners", "array", "That ballot's winning options."),
                Field("ballot_results_sha256", "string", "SHA-256 of that ballot's results."),
                Field(
                    "response",
                    "string",
                    "accepted, partly, rejected, pending, or awaiting (none yet).",
                ),
                Field("responded_on", "date", "The date of the latest response."),
            ],
            recs,
            ["recommendation"],
        ),
        Resource(
            "recommendation_responses",
            N_("The authority's responses"),
            "Every response the commissioning authority gave, each change a new version.",
            [
                Field("recommendation", "string", "The recommendation.", required=True),
                Field(
                    "version",
                    "integer",
                    "1 for the first response, then each change.",
                    required=True,
                ),
                Field("status", "string", "accepted, partly, rejected or pending."),
                Field("responded_on", "date", "The authority's date."),
                Field("text", "object", "Its text in each language."),
                Field("recorded_at", "datetime", "When the organisers recorded it (UTC)."),
            ],
            responses,
            ["recommendation", "version"],
        ),
    ]
