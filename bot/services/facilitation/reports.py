"""A member's REPORT, to the facilitators of their table: which seat asked, where, and the
table's last lines with the numbers HIDE takes, each in their own language, on the chat or
number they were named by. A table without facilitators reports to the organisers, as
the conversation does by default."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.deliberation import Report
from bot.services.facilitation.roles import facilitator_contacts
from bot.services.outgoing import enqueue
from bot.settings import Settings
from flows.deliberation import FACILITATOR, passed_line, post_line, relay_line
from flows.i18n import Translator, translator
from flows.model import Outbound

KIND = "facilitation"


def report_text(t: Translator, report: Report) -> str:
    lines = [
        t.gettext(
            "REPORT from Member {letter} at table {table} (round {round}). The last messages "
            "there (HIDE followed by the number removes one):",
            letter=report.letter,
            table=report.table,
            round=report.round,
        )
    ]
    for line in report.lines:
        if line.kind == "pass":
            said = passed_line(t, line.letter)
        elif line.letter == FACILITATOR:
            said = post_line(t, line.text)
        else:
            said = relay_line(line.letter, line.text)
        lines.append(f"#{line.id} {said}")
    return "\n".join(lines)


async def report_to_facilitators(
    session: AsyncSession, settings: Settings, report: Report, now: datetime
) -> int:
    """The ReportSink the conversation calls inside the member's turn."""
    from bot.services.deliberation.wiring import tell_organisers_sink

    found = await facilitator_contacts(
        session, settings.default_language, report.round, report.table
    )
    if not found:
        return await tell_organisers_sink(session, settings, report, now)
    queued = 0
    for participant, contact in found:
        text = report_text(translator(participant.language), report)
        queued += await enqueue(
            session,
            settings,
            participant,
            contact,
            [Outbound(text=text, kind=KIND)],
            prompt_id=None,
            now=now,
        )
    return queued
