"""Signing in to the organiser page: tokens from the command line, one-time links sent to
an organiser's own chat, and the sessions they open.

Secrets are shown or sent once and stored only as SHA-256 hashes. Every refusal looks the
same from outside (unknown, expired, used, removed organiser); the audit trail records
sign-ins and refusals with the organiser's id at most, never a secret."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.organisers import OrganiserError, OrganiserInfo, organiser_contacts, record
from bot.services.outgoing import enqueue
from bot.settings import Settings
from flows.i18n import translator
from flows.model import Outbound
from flows.organiser import LINK_MINUTES
from store.organiser_signin import LINK, TOKEN, OrganiserSession, OrganiserSignin
from store.organisers import Organiser

LINK_LIFETIME = timedelta(minutes=LINK_MINUTES)
SESSION_LIFETIME = timedelta(hours=12)
# Where the organiser page lives, and the page a link opens (the secret in the query
# string, which the access log leaves out).
PAGE_PATH = "/organiser"
LINK_PATH = "/organiser/signin"
LOCAL_URL = "http://localhost:8080"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.strip().encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(24)


async def issue_token(
    session: AsyncSession, organiser: OrganiserInfo, lifetime: timedelta, now: datetime
) -> tuple[str, datetime]:
    """A sign-in token for the command line to show once, and when it expires."""
    if lifetime <= timedelta(0):
        raise OrganiserError("--expires must be longer than zero")
    secret, expires = new_secret(), now + lifetime
    session.add(
        OrganiserSignin(
            organiser_id=organiser.id,
            kind=TOKEN,
            secret_hash=digest(secret),
            created_at=now,
            expires_at=expires,
        )
    )
    await record(session, "organiser.token_issued", None, to=organiser.id, hours=_hours(lifetime))
    return secret, expires


def _hours(lifetime: timedelta) -> float:
    return round(lifetime.total_seconds() / 3600, 2)


def link_url(settings: Settings, secret: str) -> str:
    base = (settings.public_url or LOCAL_URL).rstrip("/")
    return f"{base}{LINK_PATH}?link={secret}"


async def send_link(
    session: AsyncSession,
    settings: Settings,
    organiser_id: int,
    now: datetime,
    *,
    asked_by: int | None = None,
) -> int:
    """Queue a one-time sign-in link to the organiser's own chat (Telegram, else SMS), in
    their language; the message lapses with the link. Returns the outbox rows written."""
    found = [
        (participant, contact)
        for info, participant, contact in await organiser_contacts(
            session, settings.default_language
        )
        if info.id == organiser_id
    ]
    if not found:
        raise OrganiserError(
            f"organiser {organiser_id} cannot be reached (no chat, or they opted out)"
        )
    participant, contact = found[0]
    secret, expires = new_secret(), now + LINK_LIFETIME
    session.add(
        OrganiserSignin(
            organiser_id=organiser_id,
            kind=LINK,
            secret_hash=digest(secret),
            created_at=now,
            expires_at=expires,
        )
    )
    t = translator(participant.language)
    text = t.gettext(
        "Your sign-in link for the organiser page: {url} It works once, within {minutes} "
        "minutes. If you did not ask for it, ignore this message.",
        url=link_url(settings, secret),
        minutes=int(LINK_LIFETIME.total_seconds() // 60),
    )
    queued = await enqueue(
        session,
        settings,
        participant,
        contact,
        [Outbound(text=text, kind="security")],
        prompt_id=None,
        now=now,
        expires_at=expires,
    )
    await record(session, "organiser.link_sent", asked_by, to=organiser_id, channel=contact.channel)
    return queued


@dataclass(frozen=True)
class SignedIn:
    organiser_id: int
    cookie: str  # the session's secret: set as the cookie, never stored
    expires_at: datetime


async def sign_in(
    session: AsyncSession, secret: str, now: datetime, *, via: str
) -> SignedIn | None:
    """A session for a good token or an unused link; None, and a refusal in the audit
    trail, for anything else. `via` is "token" (the form) or "link" (a link's page)."""
    await _forget_expired(session, now)
    secret = (secret or "").strip()
    row = None
    if 0 < len(secret) <= 200:
        row = (
            await session.execute(
                select(OrganiserSignin).where(OrganiserSignin.secret_hash == digest(secret))
            )
        ).scalar_one_or_none()
    if (
        row is None
        or row.kind != via
        or row.expires_at <= now
        or not await _take(session, row, now)
    ):
        await record(session, "organiser.sign_in_refused", None, via=via)
        return None
    cookie, expires = new_secret(), now + SESSION_LIFETIME
    session.add(
        OrganiserSession(
            organiser_id=row.organiser_id,
            secret_hash=digest(cookie),
            created_at=now,
            expires_at=expires,
        )
    )
    await record(session, "organiser.signed_in", row.organiser_id, via=via)
    return SignedIn(row.organiser_id, cookie, expires)


async def _forget_expired(session: AsyncSession, now: datetime) -> None:
    """Expired sessions, tokens and links are of no use: they go at the next sign-in."""
    for table in (OrganiserSession, OrganiserSignin):
        await session.execute(delete(table).where(table.expires_at <= now))


async def _take(session: AsyncSession, row: OrganiserSignin, now: datetime) -> bool:
    """A token may be used until it expires; a link once (two clicks racing: one wins)."""
    if row.kind == TOKEN:
        return True
    taken = await session.execute(
        update(OrganiserSignin)
        .where(OrganiserSignin.id == row.id, OrganiserSignin.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return taken.rowcount == 1


async def signed_in(
    session: AsyncSession, cookie: str | None, now: datetime
) -> OrganiserInfo | None:
    """The organiser a session cookie belongs to, while it lasts and they are an organiser."""
    if not cookie or len(cookie) > 200:
        return None
    row = (
        await session.execute(
            select(Organiser)
            .join(OrganiserSession, OrganiserSession.organiser_id == Organiser.id)
            .where(
                OrganiserSession.secret_hash == digest(cookie), OrganiserSession.expires_at > now
            )
        )
    ).scalar_one_or_none()
    return OrganiserInfo.of(row) if row is not None else None


async def sign_out(session: AsyncSession, cookie: str | None) -> None:
    if not cookie or len(cookie) > 200:
        return
    ended = (
        await session.execute(
            delete(OrganiserSession)
            .where(OrganiserSession.secret_hash == digest(cookie))
            .returning(OrganiserSession.organiser_id)
        )
    ).scalar_one_or_none()
    if ended is not None:
        await record(session, "organiser.signed_out", ended)
