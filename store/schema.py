"""Imports every module that defines tables, so Base.metadata is complete."""

import store.organisers  # noqa: F401
import store.recruitment  # noqa: F401
from store import (
    ballots,  # noqa: F401
    belenios,  # noqa: F401
    calendar,  # noqa: F401
    checkpoints,  # noqa: F401
    deliberation,  # noqa: F401
    draw_records,  # noqa: F401
    facilitation,  # noqa: F401
    groups,  # noqa: F401
    models,  # noqa: F401
    organiser_signin,  # noqa: F401
    personal_data,  # noqa: F401
    polls,  # noqa: F401
    recommendations,  # noqa: F401
    respondents,  # noqa: F401
    results,  # noqa: F401
    statements,  # noqa: F401
    unhandled,  # noqa: F401
)
