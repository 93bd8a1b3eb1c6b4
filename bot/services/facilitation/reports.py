"""A member's REPORT, to the facilitators of their table (else the organisers): which seat
asked, where, and the table's last lines with the refs HIDE takes. Each is told in their
own language, on the chat or number they were named by."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.deliberation import Report
from bot.services.facilitation.roles import report_recipients
from bot.services.outgoing import enqueue
from bot.settings import Settings
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
        if line.hidden:
            said = t.gettext("(hidden)")
        elif line.kind == "pass":
            said = t.gettext("(passed)")
        else:
            said = line.text
        who = t.gettext("Facilitator") if line.letter == "*" else line.letter
        lines.append(f"#{line.id} {who}: {said}")
    return "\n".join(lines)


async def report_to_facilitators(
    session: AsyncSession, settings: Settings, report: Report, now: datetime
) -> int:
    """The ReportSink the conversation calls inside the member's turn."""
    queued = 0
    for participant, contact in await report_recipients(
        session, settings.default_language, report.round, report.table
    ):
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
