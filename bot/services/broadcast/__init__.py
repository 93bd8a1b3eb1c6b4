"""Organiser broadcasts: who gets them (`audience`), how each person's copy reads and what it
will cost (`content`, a dry run), when they may go out (`timing`), putting them all in the
outbox at once (`queueing`), how far they got (`status`), and releasing scheduled ones
with the running service (`running`).
"""

from bot.services.broadcast.audience import (
    AUDIENCE_FORMS,
    DRAWN,
    Audience,
    AudienceCount,
    ContactRef,
    Member,
    audience_counts,
    load_members,
    parse_audience,
    preferred,
)
from bot.services.broadcast.common import BroadcastError
from bot.services.broadcast.content import (
    MAX_TEXT,
    SESSION_MOVED,
    TEMPLATES,
    Content,
    content_of,
    gsm_spaces,
    session_moved,
    text_content,
)
from bot.services.broadcast.queueing import DryRun, create, discard, dry_run, queue, release_due
from bot.services.broadcast.running import RELEASE_EVERY, install, release_once
from bot.services.broadcast.status import STATUS_GROUPS, Status, recent, status
from bot.services.broadcast.timing import DEFAULT_QUIET, Timing, timing_of

__all__ = [
    "AUDIENCE_FORMS",
    "Audience",
    "AudienceCount",
    "BroadcastError",
    "ContactRef",
    "Content",
    "DEFAULT_QUIET",
    "DRAWN",
    "DryRun",
    "MAX_TEXT",
    "Member",
    "RELEASE_EVERY",
    "SESSION_MOVED",
    "STATUS_GROUPS",
    "Status",
    "TEMPLATES",
    "Timing",
    "audience_counts",
    "content_of",
    "create",
    "discard",
    "dry_run",
    "gsm_spaces",
    "install",
    "load_members",
    "parse_audience",
    "preferred",
    "queue",
    "recent",
    "release_due",
    "release_once",
    "session_moved",
    "status",
    "text_content",
    "timing_of",
]
