"""Respondents who registered outside the chat: read (reading.py), written beside the
chat's registrations (importing.py), and who of the drawn the organisers must contact."""

from bot.services.respondents.importing import (
    OUTSIDE,
    ImportRefused,
    ImportResult,
    OrganisersToContact,
    import_respondents,
    to_contact,
)
from bot.services.respondents.reading import (
    OutsideRow,
    Problem,
    RespondentsFileError,
    RespondentsParse,
    column_name,
    parse_respondents,
)

__all__ = [
    "OUTSIDE",
    "ImportRefused",
    "ImportResult",
    "OrganisersToContact",
    "OutsideRow",
    "Problem",
    "RespondentsFileError",
    "RespondentsParse",
    "column_name",
    "import_respondents",
    "parse_respondents",
    "to_contact",
]
