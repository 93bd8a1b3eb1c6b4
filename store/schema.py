"""The whole schema: every module that defines tables, imported here so that `METADATA`
knows them all (migrations compare against it; the tests check the personal-data map
covers it)."""

from importlib import import_module

from store.models import Base

TABLE_MODULES = tuple(
    import_module(f"store.{name}")
    for name in (
        "ballots",
        "belenios",
        "calendar",
        "checkpoints",
        "deliberation",
        "draw_records",
        "facilitation",
        "groups",
        "models",
        "organiser_signin",
        "organisers",
        "personal_data",
        "polls",
        "recommendations",
        "recruitment",
        "respondents",
        "results",
        "statements",
        "unhandled",
    )
)
METADATA = Base.metadata
