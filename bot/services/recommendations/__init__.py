"""The assembly's recommendations and the commissioning authority's responses: reading
the organisers' files (`spec`), recording them and telling the panel (`records`)."""

from bot.services.recommendations import spec
from bot.services.recommendations.records import (
    ADDED,
    RESPONDED,
    RecommendationProblem,
    Responded,
    Tracked,
    add,
    ballot_summary,
    get,
    respond,
    tracker,
)
from bot.services.recommendations.spec import (
    RecommendationError,
    Response,
    load_recommendations,
    load_response,
    response_of,
)

__all__ = [
    "ADDED",
    "RESPONDED",
    "RecommendationError",
    "RecommendationProblem",
    "Responded",
    "Response",
    "Tracked",
    "add",
    "ballot_summary",
    "get",
    "load_recommendations",
    "load_response",
    "respond",
    "response_of",
    "spec",
    "tracker",
]
