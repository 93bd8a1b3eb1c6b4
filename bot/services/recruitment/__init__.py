"""Recruitment: pool import, invitations, Telegram links, reminders, the draw's outcome,
status, and how recruitment joins the conversations (`register`, `install`).

Flows stay pure: this package gives them facts, turns their events into rows, binds
Telegram invitation links, and does the bulk work the organiser commands start. Large jobs
run in chunks, one transaction each, so a run that stops carries on where it stopped.
"""

from bot.services.recruitment.common import PLACEHOLDER_BOT, RecruitmentError, check_one_assembly
from bot.services.recruitment.facts import recruitment_facts
from bot.services.recruitment.funnel import (
    NO_VALUE,
    CategoryFunnel,
    Funnel,
    funnel,
    funnel_by_category,
)
from bot.services.recruitment.invitations import (
    InvitePlan,
    InviteResult,
    invite_link,
    plan_invitations,
    quiet_hours_end,
    resolve_bot_username,
    send_invitations,
)
from bot.services.recruitment.links import bind_invitation_link
from bot.services.recruitment.pool import (
    BadRow,
    ImportResult,
    PoolRow,
    import_pool,
    parse_pool,
    pool_phone,
)
from bot.services.recruitment.reminders import (
    due_invitation_reminders,
    expire_selections,
    lapse_invitations,
    notify_draw_outcome,
    send_invitation_reminders,
)
from bot.services.recruitment.running import TICK_SECONDS, install, recruitment_tick, register
from store.recruitment import INVITATION_STATUSES, SELECTION_STATUSES

__all__ = [
    "BadRow",
    "CategoryFunnel",
    "Funnel",
    "INVITATION_STATUSES",
    "ImportResult",
    "InvitePlan",
    "InviteResult",
    "NO_VALUE",
    "PLACEHOLDER_BOT",
    "PoolRow",
    "RecruitmentError",
    "SELECTION_STATUSES",
    "TICK_SECONDS",
    "bind_invitation_link",
    "check_one_assembly",
    "due_invitation_reminders",
    "expire_selections",
    "funnel",
    "funnel_by_category",
    "import_pool",
    "install",
    "invite_link",
    "lapse_invitations",
    "notify_draw_outcome",
    "parse_pool",
    "plan_invitations",
    "pool_phone",
    "quiet_hours_end",
    "recruitment_facts",
    "recruitment_tick",
    "register",
    "resolve_bot_username",
    "send_invitation_reminders",
    "send_invitations",
]
