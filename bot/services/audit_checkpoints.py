"""Audit checkpoints: signed on demand (`concorder audit checkpoint`) and on a schedule by
`serve`, and compared with the database by `concorder audit verify`.

The format and the signature are in store/checkpoints.py. A checkpoint is signed only over a
chain that extends the previous one (its events are recomputed since), so a database that was
tampered with never gets a fresh signature covering the change.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.relay import Relay
from bot.services import invite_codes
from bot.settings import Settings
from flows.assembly import Assembly
from scheduler import timers
from store import audit, checkpoints
from store.checkpoints import Checkpoint, CheckpointError
from store.models import AuditEvent, AuditHead, utcnow

log = logging.getLogger(__name__)

DEFAULT_ORIGIN = "concorder-relay"
FOLDER = "concorder-checkpoints"


class Refused(Exception):
    """The chain does not extend the last checkpoint: nothing is signed."""


@dataclass(frozen=True)
class Signer:
    origin: str
    key: Ed25519PrivateKey

    @property
    def key_id(self) -> str:
        return checkpoints.key_id(self.origin, self.key.public_key()).hex()

    @property
    def verifier_key(self) -> str:
        return checkpoints.verifier_key(self.origin, self.key.public_key())


def origin(settings: Settings, assembly: Assembly | None) -> str:
    """CONCORDER_AUDIT_ORIGIN, else the assembly's name as one word, else a default."""
    if settings.audit_origin:
        return checkpoints.check_origin(settings.audit_origin.strip())
    if assembly is not None:
        slug = re.sub(r"[^a-z0-9]+", "-", assembly.name.lower()).strip("-")
        if slug:
            return slug
    return DEFAULT_ORIGIN


def signer(settings: Settings, assembly: Assembly | None, secret: bytes | None = None) -> Signer:
    """The assembly's signing key, derived from its secret (made on first need, kept where
    the invitation codes' secret is: CONCORDER_SECRET_KEY or its key file)."""
    secret = secret if secret is not None else invite_codes.server_key(settings)
    return Signer(origin(settings, assembly), checkpoints.private_key(secret))


def folder(settings: Settings) -> Path:
    """Where `serve` writes its checkpoints: CONCORDER_CHECKPOINT_DIR, else beside the key
    file (beside an SQLite database, or in the working directory)."""
    if settings.checkpoint_dir:
        return Path(settings.checkpoint_dir)
    return invite_codes.key_file(settings.database_url).parent / FOLDER


@dataclass(frozen=True)
class Made:
    checkpoint: Checkpoint
    text: str
    recorded: bool


async def due(session: AsyncSession, every: timedelta, now: datetime) -> bool:
    """A checkpoint is due `every` after the last one (after the first event, for the first)."""
    last = await checkpoints.latest(session)
    if last is not None:
        return last.at <= now - every
    first = await session.scalar(select(func.min(AuditEvent.at)))
    return first is not None and first <= now - every


async def take(
    sessions: async_sessionmaker[AsyncSession],
    signer: Signer,
    *,
    now: datetime | None = None,
    every: timedelta | None = None,
    dry_run: bool = False,
) -> Made | None:
    """Sign the chain's head, keep the checkpoint and record it as an audit event, in one
    transaction that holds the head. With `every`, only if one is due (None otherwise):
    instances sharing a database then sign one between them."""
    now = now or utcnow()
    async with sessions.begin() as session:
        size, head = await checkpoints.locked_head(session)
        if every is not None and not await due(session, every, now):
            return None
        problem = await checkpoints.extends(session, await checkpoints.latest(session), size)
        if problem:
            raise Refused(problem)
        checkpoint = Checkpoint(signer.origin, size, head, now)
        text = checkpoints.sign(checkpoint, signer.key)
        if not dry_run:
            await checkpoints.record(session, checkpoint, text, signer.key_id)
    return Made(checkpoint, text, not dry_run)


def write(made: Made, where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    stamp = made.checkpoint.at.strftime("%Y%m%dT%H%M%SZ")
    path = where / f"checkpoint-{made.checkpoint.size}-{stamp}.txt"
    path.write_text(made.text, encoding="utf-8")
    return path


async def scheduled(relay: Relay, now: datetime | None = None) -> Path | None:
    """The timer's work: sign and write a checkpoint when one is due."""
    sign_with = signer(relay.settings, relay.assembly, relay.invite_key)
    try:
        made = await take(relay.sessions, sign_with, now=now, every=relay.settings.checkpoint_every)
    except Refused as exc:
        log.error("audit checkpoint refused: %s; run concorder audit verify", exc)
        return None
    if made is None:
        return None
    path = write(made, folder(relay.settings))
    log.info("audit checkpoint of %d events written to %s", made.checkpoint.size, path)
    return path


def install(app: web.Application, relay: Relay) -> None:
    """Sign a checkpoint on schedule (CONCORDER_CHECKPOINT_EVERY, daily by default)."""
    seconds = min(60.0, relay.settings.checkpoint_every.total_seconds())

    async def tick() -> None:
        await scheduled(relay)

    timers.add(app, "audit: sign a checkpoint of the chain when due", seconds, tick)


@dataclass(frozen=True)
class Finding:
    source: str  # a file name, or "stored #3"
    checkpoint: Checkpoint | None  # None: it could not be read
    problem: str | None


async def compare(
    session: AsyncSession, public: Ed25519PublicKey, sources: list[tuple[str, str]]
) -> list[Finding]:
    """Each checkpoint text read, its signature checked against the assembly's public key,
    and compared with the linked chain."""
    findings = []
    for source, text in sources:
        checkpoint = None
        try:
            signed = checkpoints.parse(text)
            checkpoint = signed.checkpoint
            checkpoints.check_signature(signed, public)
            problem = await checkpoints.disagreement(session, checkpoint)
        except CheckpointError as exc:
            problem = str(exc)
        findings.append(Finding(source, checkpoint, problem))
    return findings


async def head_disagreement(session: AsyncSession, chain: audit.Verification) -> str | None:
    """How the stored head (the row the sequencer keeps) disagrees with an intact chain."""
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one_or_none()
    if head is None or (head.seq == chain.checked and head.hash == chain.head_hash):
        return None
    if head.seq > chain.checked:
        return (
            f"the stored head counts {head.seq} events but the chain ends at event "
            f"{chain.checked}: events were removed from the end"
        )
    return f"the stored head (event {head.seq}) is not the chain's last event ({chain.checked})"
