"""Recommendations recorded and answered as the organisers' commands do it: what the
recommendation tests and transcripts share."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from bot.services import recommendations as recs
from tests.ballot_world import LANGUAGES, create_ballots

HERE = Path(__file__).resolve().parent / "recommendations"
RECOMMENDATIONS = HERE / "recommendations.toml"
ACCEPTED = HERE / "response-accepted.toml"
PARTLY = HERE / "response-partly.md"
DAYTIME = datetime(2026, 12, 21, 10, 0, tzinfo=UTC)  # outside everyone's quiet hours


async def recorded(sessions) -> None:
    """The ballots of tests/ballots/ballots.toml and the two recommendations."""
    await create_ballots(sessions)
    found = recs.load_recommendations(RECOMMENDATIONS, LANGUAGES)
    async with sessions.begin() as session:
        await recs.add(session, found)


def accepted() -> recs.Response:
    return recs.response_of(recs.load_response(ACCEPTED, LANGUAGES), None, None, None, LANGUAGES)


def partly() -> recs.Response:
    given = recs.load_response(PARTLY, LANGUAGES)
    return recs.response_of(given, "partly", date(2026, 12, 28), None, LANGUAGES)
