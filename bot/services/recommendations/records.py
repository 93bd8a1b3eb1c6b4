"""Recording recommendations and the authority's responses, and telling the panel.

A response, the messages that tell every confirmed panel member who has not opted out
(in their language, held until their quiet hours end) and its audit event commit in one
transaction; the unique (recommendation, version) pair lets only one of two organisers
answering at once record it, so the panel is told once.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.relay import Relay
from bot.services.broadcast.audience import load_members
from bot.services.broadcast.content import Renderer
from bot.services.broadcast.timing import timing_of
from bot.services.recommendations.spec import RecommendationDef, Response
from flows.i18n import translator
from flows.recommendation import response_message
from store import audit
from store import outbox as outbox_writer
from store.ballots import Ballot
from store.models import utcnow
from store.recommendations import Recommendation, RecommendationResponse
from store.recruitment import CONFIRMED

ADDED, RESPONDED = "recommendation.added", "recommendation.responded"
KIND = "recommendation"  # the outbox rows' kind


class RecommendationProblem(ValueError):
    """What an organiser asked cannot be done; the message says why and what to do."""


def digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


# ------------------------------------------------------------------------------- adding


async def add(
    session: AsyncSession, found: list[RecommendationDef], *, dry_run: bool = False, now=None
) -> list[Recommendation]:
    """Record new recommendations after those already there (numbered in file order)."""
    now = now or utcnow()
    problems = []
    known = {r for r in (await session.execute(select(Recommendation.id))).scalars()}
    ballots = {b for b in (await session.execute(select(Ballot.id))).scalars()}
    for item in found:
        if item.id in known:
            problems.append(f"{item.id}: already recorded (see `recommendation show {item.id}`)")
        if item.ballot and item.ballot not in ballots:
            problems.append(f"{item.id}: no ballot {item.ballot!r} (see `ballot status`)")
    if problems:
        raise RecommendationProblem("; ".join(problems))
    start = await session.scalar(select(func.max(Recommendation.number))) or 0
    rows = [
        Recommendation(
            id=item.id,
            number=start + n,
            title=dict(item.title),
            text=dict(item.text),
            ballot_id=item.ballot,
            created_at=now,
        )
        for n, item in enumerate(found, start=1)
    ]
    if dry_run:
        return rows
    session.add_all(rows)
    await session.flush()
    for row in rows:
        await audit.append(
            session,
            ADDED,
            {
                "recommendation": row.id,
                "number": row.number,
                "ballot": row.ballot_id,
                "text_sha256": digest({"title": row.title, "text": row.text}),
            },
            at=now,
        )
    return rows


# ---------------------------------------------------------------------------- responding


@dataclass(frozen=True)
class _Notice:
    """What the broadcast renderer needs of a text: each person's copy."""

    recommendation: Recommendation
    response: Response
    version: int
    template: str = KIND

    def for_person(self, language: str, tz: Any) -> str:
        return response_message(
            translator(language),
            number=self.recommendation.number,
            title=self.recommendation.title,
            status=self.response.status,
            on=self.response.on,
            text=self.response.text,
            version=self.version,
        )


@dataclass
class Responded:
    recommendation: str
    version: int
    recipients: int = 0  # panel members told
    not_reached: int = 0  # confirmed, but opted out or with no usable contact
    by_channel: Counter = field(default_factory=Counter)
    held: int = 0  # whose message waits for the end of their quiet hours
    messages: int = 0  # outbox rows (a long SMS makes several)
    sms_segments: int = 0
    samples: dict[str, str] = field(default_factory=dict)  # language -> their message


async def get(session: AsyncSession, recommendation_id: str, *, lock: bool = False):
    query = select(Recommendation).where(Recommendation.id == recommendation_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise RecommendationProblem(
            f"no recommendation {recommendation_id!r} (see `recommendation list`)"
        )
    return row


async def respond(
    relay: Relay,
    recommendation_id: str,
    response: Response,
    *,
    replaces: int | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> Responded:
    """Record the authority's response as the next version and tell the panel.

    The first response needs no `replaces`; a later one must name the version it replaces,
    so an organiser who has not seen a colleague's answer cannot overwrite it unawares."""
    now = now or utcnow()
    try:
        async with relay.sessions.begin() as session:
            return await _respond(
                session, relay, recommendation_id, response, replaces, dry_run, now
            )
    except IntegrityError:
        raise RecommendationProblem(
            f"{recommendation_id}: another response was recorded at the same moment; "
            "see `recommendation show` and respond again with --replaces if it still applies"
        ) from None


async def _respond(session, relay, recommendation_id, response, replaces, dry_run, now):
    recommendation = await get(session, recommendation_id, lock=True)
    current = await session.scalar(
        select(func.max(RecommendationResponse.version)).where(
            RecommendationResponse.recommendation_id == recommendation_id
        )
    )
    if current is None and replaces is not None:
        raise RecommendationProblem(
            f"{recommendation_id} has no response yet: leave out --replaces"
        )
    if current is not None and replaces != current:
        raise RecommendationProblem(
            f"{recommendation_id} already has response version {current}: to record a new "
            f"one, give --replaces {current} (see `recommendation show {recommendation_id}`)"
        )
    version = (current or 0) + 1
    result = Responded(recommendation_id, version)
    notice = _Notice(recommendation, response, version)
    renderer = Renderer(notice, relay.settings, False, timing_of(relay.calendar), now)
    messages: list[outbox_writer.Message] = []
    for member in await load_members(session, lock=not dry_run):
        if member.selection != CONFIRMED:
            continue
        contact = member.contact
        if member.opted_out or contact is None:
            result.not_reached += 1
            continue
        result.recipients += 1
        result.by_channel[contact.channel] += 1
        result.samples.setdefault(member.language, renderer.text(member.language, None))
        not_before = renderer.not_before(member.timezone)
        result.held += not_before > now
        parts = renderer.parts(member.language, member.timezone, contact.channel)
        if contact.channel == "sms":
            result.sms_segments += sum(p.segments for p in parts)
        messages += [
            outbox_writer.Message(
                contact,
                part.text,
                buttons=part.buttons,
                kind=KIND,
                part=number,
                parts=len(parts),
                segments=part.segments,
                encoding=part.encoding,
                not_before=not_before,
            )
            for number, part in enumerate(parts, start=1)
        ]
    result.messages = len(messages)
    if dry_run:
        return result
    session.add(
        RecommendationResponse(
            recommendation_id=recommendation_id,
            version=version,
            status=response.status,
            text=dict(response.text),
            responded_on=response.on,
            recipients=result.recipients,
            created_at=now,
        )
    )
    await session.flush()  # a second response of this version fails here, before any message
    await outbox_writer.write(session, messages, now=now)
    await audit.append(
        session,
        RESPONDED,
        {
            "recommendation": recommendation_id,
            "version": version,
            "status": response.status,
            "on": response.on.isoformat(),
            "text_sha256": digest(response.text),
            "recipients": result.recipients,
            "messages": result.messages,
        },
        at=now,
    )
    return result


# ------------------------------------------------------------------------------ reading


@dataclass
class Tracked:
    """One recommendation as the tracker shows it: its vote and its responses."""

    recommendation: Recommendation
    responses: list[RecommendationResponse]
    ballot: dict[str, Any] | None  # the ballot's published result, summarised

    @property
    def latest(self) -> RecommendationResponse | None:
        return self.responses[-1] if self.responses else None

    @property
    def status(self) -> str:
        return self.latest.status if self.latest else "awaiting"

    @property
    def responded_on(self) -> date | None:
        return self.latest.responded_on if self.latest else None


def ballot_summary(ballot: Ballot | None) -> dict[str, Any] | None:
    """A ballot's state and, once closed, its published result in brief."""
    if ballot is None:
        return None
    summary: dict[str, Any] = {"id": ballot.id, "status": ballot.status}
    results = ballot.results or {}
    if results:
        tally = results.get("tally") or {}
        summary |= {
            "method": results.get("method"),
            "voters": results.get("voters"),
            "voted": results.get("voted"),
            "quorum_met": results.get("quorum_met"),
            "winners": list(tally.get("winners") or []),
            "results_sha256": results.get("results_sha256"),
        }
    return summary


async def tracker(session: AsyncSession) -> list[Tracked]:
    """Every recommendation in order, with its ballot and every response version."""
    from store.recommendations import all_recommendations, responses

    by_id: dict[str, list[RecommendationResponse]] = {}
    for row in await responses(session):
        by_id.setdefault(row.recommendation_id, []).append(row)
    ballots = {b.id: b for b in (await session.execute(select(Ballot))).scalars()}
    return [
        Tracked(r, by_id.get(r.id, []), ballot_summary(ballots.get(r.ballot_id)))
        for r in await all_recommendations(session)
    ]
