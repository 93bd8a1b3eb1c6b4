"""Calendar tables: due work, briefing reads, briefing times, session moves, attendance.

`calendar_jobs` holds work that becomes due at a time. Its unique key (kind, participant,
subject, occurrence) makes each briefing or reminder exist once; a job is claimed by
locking its row (FOR UPDATE SKIP LOCKED on PostgreSQL) in the transaction that queues its
messages and marks it done, so no two service instances send it and a crash repeats nothing.
Other features may queue their own kinds here (participant_id "" for work about no one).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, BigId, utcnow

# Job statuses: pending -> done | skipped | cancelled.
PENDING, DONE, SKIPPED, CANCELLED = "pending", "done", "skipped", "cancelled"


class CalendarJob(Base):
    __tablename__ = "calendar_jobs"
    __table_args__ = (
        UniqueConstraint("kind", "participant_id", "subject", "occurrence", name="uq_calendar_job"),
        Index("ix_calendar_jobs_due", "status", "send_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))  # "briefing" | "reminder" | ...
    participant_id: Mapped[str] = mapped_column(String(16), default="", index=True)
    subject: Mapped[str] = mapped_column(String(64))  # briefing id, session id, ...
    occurrence: Mapped[str] = mapped_column(String(64), default="")
    # When it is meant for (e.g. 08:00 local), and when it may go (after quiet hours).
    due_at: Mapped[datetime]
    send_at: Mapped[datetime]
    # Past this it is pointless (its session has started): skipped, never sent late.
    expires_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    result: Mapped[str | None] = mapped_column(String(64))  # why skipped or cancelled
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]
    done_by: Mapped[str | None] = mapped_column(String(64))  # the instance that ran it


class CalendarPreference(Base):
    """A participant's own daily briefing time (local, in their time zone)."""

    __tablename__ = "calendar_preferences"

    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), primary_key=True)
    briefing_time: Mapped[str] = mapped_column(String(5))  # "07:30"
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class BriefingRead(Base):
    """How far a participant got with a briefing: SMS pages sent, and 'read' confirmed."""

    __tablename__ = "briefing_reads"
    __table_args__ = (UniqueConstraint("participant_id", "briefing", name="uq_briefing_read"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    briefing: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    pages_sent: Mapped[int] = mapped_column(Integer, default=0)
    pages: Mapped[int] = mapped_column(Integer, default=1)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]  # the participant pressed "read" (Telegram)


class SessionMove(Base):
    """A session moved from the command line; applies while the file still says `original`."""

    __tablename__ = "calendar_session_moves"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    original_start: Mapped[datetime]
    start: Mapped[datetime]
    end: Mapped[datetime | None]
    moved_at: Mapped[datetime] = mapped_column(default=utcnow)


class AttendanceNotice(Base):
    """A participant said LATE or CAN'T COME for a session; organisers are told."""

    __tablename__ = "attendance_notices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    session_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # "late" | "absent"
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set by whoever tells the organisers (the broadcast feature), so each goes out once.
    forwarded_at: Mapped[datetime | None]
