"""The whole schema: every module that defines tables, so that `METADATA` knows them all
(migrations compare against it; the tests check the personal-data map covers it)."""

from store import (
    ballots,
    belenios,
    calendar,
    checkpoints,
    deliberation,
    draw_records,
    facilitation,
    groups,
    models,
    organiser_signin,
    organisers,
    personal_data,
    polls,
    recommendations,
    recruitment,
    respondents,
    results,
    statements,
    unhandled,
)

TABLE_MODULES = (
    ballots,
    belenios,
    calendar,
    checkpoints,
    deliberation,
    draw_records,
    facilitation,
    groups,
    models,
    organiser_signin,
    organisers,
    personal_data,
    polls,
    recommendations,
    recruitment,
    respondents,
    results,
    statements,
    unhandled,
)
METADATA = models.Base.metadata
