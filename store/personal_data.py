"""Where personal data lives: the one inventory that erasure and export both read.

Each `Place` is a table, how one person's rows are found in it, which columns say
something about them, and what erasure does there: delete the rows, blank those columns,
or keep the rows (with the reason, GDPR Art. 17(3)). A table that holds personal data and
is not listed here is a table that is neither erased nor exported:
tests/test_personal_data.py fails when a model gains a table missing from this list.

Erasure keeps the participant's pseudonymous id (P...): the draw's record, the selections,
consents and the audit chain name people by it and must still check afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, Table, cast, literal
from sqlalchemy.orm import Mapped, mapped_column

from store.ballots import Ballot, BallotRoll, BallotVote
from store.belenios import BeleniosBallot, BeleniosCredential, BeleniosElection
from store.calendar import AttendanceNotice, BriefingRead, CalendarJob, CalendarPreference
from store.deliberation import Contribution, DeliberationJob, PromptMember, TablePrompt
from store.draw_records import DrawRun
from store.facilitation import FacilitatorRole
from store.groups import GroupRun, GroupSeat
from store.models import (
    AuditEvent,
    Base,
    Contact,
    InboundMessage,
    OutboxMessage,
    Participant,
    ProcessedUpdate,
    utcnow,
)
from store.organiser_signin import OrganiserSession, OrganiserSignin
from store.organisers import Broadcast, BroadcastPreview, Organiser
from store.polls import Poll, PollAnswer, PollRoll, PollWave
from store.recommendations import Recommendation, RecommendationResponse
from store.recruitment import Consent, Invitation, PoolEntry, RegistrationAnswer, Selection
from store.respondents import OutsideRegistration
from store.results import ResultsPage
from store.statements import Statement, StatementVote
from store.unhandled import UnhandledInbound

DELETE, BLANK, KEEP = "delete", "blank", "keep"
# How rows of a person are found: by their participant id, or through their contacts.
BY_PARTICIPANT, BY_CONTACT = "participant", "contact"


class OptOutMark(Base):
    """A STOP that outlives erasure: a keyed hash (HMAC with the server secret) of an
    address that had opted out when it was erased, never the address itself. A message
    from that address later starts a new person who is already opted out."""

    __tablename__ = "opt_out_marks"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)


def opt_out_digest(key: bytes, channel: str, address: str) -> str:
    """The keyed hash an opted-out address is remembered by after erasure."""
    return hmac.new(key, f"opt-out:{channel}:{address}".encode(), hashlib.sha256).hexdigest()


def _erased(table: Table) -> ColumnElement[Any]:
    """A value unique per row that says nothing: 'erased:<row id>' (unique columns)."""
    return literal("erased:") + cast(table.c.id, String)


@dataclass(frozen=True)
class Place:
    table: Table
    by: str  # BY_PARTICIPANT (column participant_id) or BY_CONTACT (column contact_id)
    action: str  # DELETE | BLANK | KEEP
    what: str  # what the rows hold, for the README and the export
    # BLANK: the new value of each personal column (a SQL expression or a constant).
    blank: dict[str, Any] = field(default_factory=dict)
    why_kept: str = ""

    @property
    def name(self) -> str:
        return self.table.name

    def values(self) -> dict[str, Any]:
        return {
            column: value(self.table) if callable(value) else value
            for column, value in self.blank.items()
        }


INVENTORY: tuple[Place, ...] = (
    Place(
        Contact.__table__,
        BY_PARTICIPANT,
        BLANK,
        "phone numbers and Telegram chat ids",
        {"address": _erased},
    ),
    Place(
        InboundMessage.__table__,
        BY_CONTACT,
        BLANK,
        "every message received: its text, button, kind of attachment and the provider's id",
        {"text": "", "button": None, "media": None, "provider_id": _erased},
    ),
    Place(
        UnhandledInbound.__table__,
        BY_CONTACT,
        DELETE,
        "messages received and not handled yet: the address they came from, how often "
        "their turn failed (an erased person's are never handled)",
    ),
    Place(
        OutboxMessage.__table__,
        BY_PARTICIPANT,
        BLANK,
        "every message sent or queued: text, buttons, address, provider's id and error",
        {"text": "", "buttons": None, "address": "", "provider_id": None, "error": None},
    ),
    Place(
        RegistrationAnswer.__table__,
        BY_PARTICIPANT,
        DELETE,
        "registration answers",
    ),
    Place(
        PoolEntry.__table__,
        BY_PARTICIPANT,
        BLANK,
        "the pool file's row: reference, Telegram handle, household, attributes",
        {
            "external_id": None,
            "telegram_handle": None,
            "household_id": None,
            "attributes": {},
            "source_line": None,
        },
    ),
    Place(
        OutsideRegistration.__table__,
        BY_PARTICIPANT,
        BLANK,
        "a registration outside the chat: how (paper, call, web), the consent's reference, "
        "e-mail address, line of the respondents file",
        {"consent_ref": None, "email": None, "source_line": None},
    ),
    Place(
        Invitation.__table__,
        BY_PARTICIPANT,
        BLANK,
        "the invitation: its code's hash (the link) and its progress",
        {"code_hash": _erased},
    ),
    Place(
        Participant.__table__,
        BY_PARTICIPANT,
        BLANK,
        "conversation state (the question being asked, the answers on the way), time zone",
        {"state": {}, "timezone": None},
    ),
    Place(CalendarPreference.__table__, BY_PARTICIPANT, DELETE, "own briefing time"),
    Place(
        CalendarJob.__table__,
        BY_PARTICIPANT,
        BLANK,
        "briefings and reminders due to them: what each would say",
        {"payload": {}},
    ),
    Place(
        Consent.__table__,
        BY_PARTICIPANT,
        KEEP,
        "which consent text was agreed to, when, in which language",
        why_kept="proof of consent (Art. 7(1), 17(3)(e)); names no one once contacts are erased",
    ),
    Place(
        Selection.__table__,
        BY_PARTICIPANT,
        KEEP,
        "place on the panel or reserve list",
        why_kept="the draw's outcome: `select --verify` compares it with the recorded draw",
    ),
    Place(
        GroupSeat.__table__,
        BY_PARTICIPANT,
        KEEP,
        "seat at the small-group tables: round, table number, letter",
        why_kept="pseudonymous (the others know them only as a letter): `groups assign "
        "--verify` checks the allocation against it, and the table's other members keep "
        "their letters",
    ),
    Place(
        Contribution.__table__,
        BY_PARTICIPANT,
        BLANK,
        "what they wrote at their small-group table (letter, table, prompt, time, text)",
        {"text": None},
    ),
    Place(
        PromptMember.__table__,
        BY_PARTICIPANT,
        KEEP,
        "per prompt at their table: when they were nudged, how far their digest went",
        why_kept="pseudonymous marks (times and message numbers); no text",
    ),
    Place(
        DeliberationJob.__table__,
        BY_PARTICIPANT,
        BLANK,
        "nudges and digests due to them",
        {"payload": {}},
    ),
    Place(
        BriefingRead.__table__,
        BY_PARTICIPANT,
        KEEP,
        "briefings sent and read",
        why_kept="counts for the assembly's report; pseudonymous",
    ),
    Place(
        AttendanceNotice.__table__,
        BY_PARTICIPANT,
        KEEP,
        "LATE and CAN'T COME notices",
        why_kept="attendance counts; pseudonymous",
    ),
    Place(
        BallotRoll.__table__,
        BY_PARTICIPANT,
        KEEP,
        "the ballots they could vote in, and whether they voted (never how)",
        why_kept="turnout and quorum of each ballot; pseudonymous, and it holds no vote",
    ),
    Place(
        PollRoll.__table__,
        BY_PARTICIPANT,
        KEEP,
        "the poll waves they were asked, how many questions they answered, and reminders "
        "(never what they answered)",
        why_kept="response counts of each wave; pseudonymous, and it holds no answer",
    ),
    Place(
        StatementVote.__table__,
        BY_PARTICIPANT,
        DELETE,
        "their answers to the opinion map's statements (agree, disagree, pass)",
    ),
    Place(
        Statement.__table__,
        BY_PARTICIPANT,
        BLANK,
        "the statements they proposed for the opinion map (text, whether approved)",
        {"participant_id": None},
    ),
    Place(
        BeleniosCredential.__table__,
        BY_PARTICIPANT,
        DELETE,
        "their private credential in a Belenios ballot, only while it is open",
    ),
    Place(
        AuditEvent.__table__,
        BY_PARTICIPANT,
        KEEP,
        "the audit events about them (ids, kinds, counts; never text or numbers)",
        why_kept="the audit chain, which anyone can verify; its events name no one",
    ),
)

# Tables that hold no one's personal data, or only through the places above.
NOT_PERSONAL: dict[str, str] = {
    Recommendation.__tablename__: "the assembly's recommendations: the panel's own texts, "
    "voted as a body, naming no one",
    RecommendationResponse.__tablename__: "the commissioning authority's responses and how "
    "many members were told; no member is named",
    DrawRun.__tablename__: "the draw's pseudonymised input (participant ids, features, "
    "households) and result: kept so anyone can re-run and check it (Art. 17(3)(d), (e))",
    GroupRun.__tablename__: "the small-group allocation's pseudonymised input (participant "
    "ids, languages, category values) and tables: kept so anyone can re-run and check it, "
    "as the draw's record",
    Ballot.__tablename__: "ballot definitions, their times and published results",
    ResultsPage.__tablename__: "the open data package as published on the results page: "
    "pseudonyms, small counts hidden, quotes with every address removed (publish again "
    "after an erasure to take a quote off the page)",
    BallotVote.__tablename__: "votes with no voter and no time; a keyed link to the voter "
    "while the ballot is open, destroyed at its close",
    Poll.__tablename__: "poll definitions: the assembly's own questions",
    PollWave.__tablename__: "poll waves and their times",
    PollAnswer.__tablename__: "poll answers under a pseudonym of each poll (a keyed hash of "
    "the participant id with the server secret): no participant id and no text; kept for "
    "the poll's report, as the draw's record; the person's export finds theirs again with "
    "the secret (bot/services/polls/own.py)",
    BeleniosElection.__tablename__: "where a Belenios ballot's election files are",
    BeleniosBallot.__tablename__: "encrypted Belenios ballots with no voter and no time, as "
    "the published ballot box holds them; the credentials that tied them to voters are "
    "deleted at the close",
    TablePrompt.__tablename__: "prompts opened at each small-group table: the assembly's "
    "own texts and times, no one's words",
    ProcessedUpdate.__tablename__: "Telegram update ids already handled; name no one",
    Broadcast.__tablename__: "organisers' messages to an audience, not about one person",
    BroadcastPreview.__tablename__: "organisers' unsent previews: erased with the organisers",
    Organiser.__tablename__: "organisers' numbers and ids: erased by the organisers' period",
    OrganiserSignin.__tablename__: "hashes of the organisers' sign-in tokens and links: "
    "deleted with the organiser",
    OrganiserSession.__tablename__: "hashes of the organisers' page sessions: deleted with "
    "the organiser",
    FacilitatorRole.__tablename__: "facilitators' numbers and ids, named by the organisers "
    "for a table: staff, not members; removed with `groups facilitator --remove`",
    OptOutMark.__tablename__: "keyed hashes of opted-out addresses: they keep a STOP after "
    "erasure (Art. 21(3)); no address can be read from them",
    "audit_head": "the chain's last hash",
    "audit_checkpoints": "signed heads of the audit chain: sizes, hashes, times",
    "delivery_limits": "send rates",
    "key_fingerprint": "a keyed hash of a constant that tells whether a process has the "
    "service's secret key; neither the key nor anyone's data can be read from it",
    "calendar_session_moves": "session times",
    "alembic_version": "the schema's version",
}

# The organisers' own records, erased by the [retention] organisers period.
ORGANISER_BLANK = {"name": None, "telegram_id": None, "phone": None}
