"""Signed checkpoints of the audit chain: its size and head hash, signed with the assembly's key.

A copy of the database alone cannot prove that nothing was removed from the end of the chain
or that it was not rewritten whole with every hash recomputed. A checkpoint published outside
the database can: the event at the checkpoint's size must carry the checkpoint's hash.

The text is a C2SP signed note (https://c2sp.org/signed-note) whose body follows the
tlog-checkpoint layout (https://c2sp.org/tlog-checkpoint):

    <origin>
    <size: events in the chain>
    <base64 of the 32-byte hash of event number <size> (all zero bytes when empty)>
    time <UTC, RFC 3339>

    — <origin> <base64 of key id (4 bytes) + Ed25519 signature (64 bytes)>

The signature covers the body, every line up to the blank one, each with its newline. The
key id is the first 4 bytes of SHA-256(origin + "\\n" + 0x01 + public key), as in Go's
golang.org/x/mod/sumdb/note, so its verifiers can check these checkpoints too. Unlike a
transparency log, the "root hash" is the head of a hash chain (store/audit.py), not the root
of a Merkle tree.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import BigInteger, String, Text, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from store import audit
from store.models import AuditEvent, AuditHead, Base, BigId

DASH = "\u2014"  # the em dash that starts a signed note's signature line
ED25519 = b"\x01"  # the signed-note algorithm byte for Ed25519
EVENT_KIND = "audit.checkpoint"
_ORIGIN = re.compile(r"[^\s+]+")
_SIGNATURE_LINE = re.compile(rf"{DASH} (\S+) (\S+)")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or trusted; the message says why."""


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int  # events in the chain: the last one's seq
    head: str  # hex SHA-256 of event number `size` (audit.GENESIS when empty)
    at: datetime

    def body(self) -> str:
        root = base64.b64encode(bytes.fromhex(self.head)).decode()
        when = self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{self.origin}\n{self.size}\n{root}\ntime {when}\n"


@dataclass(frozen=True)
class Signed:
    checkpoint: Checkpoint
    key_name: str
    key_id: bytes
    signature: bytes
    body: bytes  # the exact bytes signed


def private_key(secret: bytes) -> Ed25519PrivateKey:
    """The assembly's signing key, derived from its secret (CONCORDER_SECRET_KEY or the key
    file): every instance sharing the secret signs with the same key, and nothing more has
    to be kept safe."""
    seed = hmac.new(secret, b"concorder audit checkpoint key", hashlib.sha256).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(name: str, public: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + raw_public(public)).digest()[:4]


def verifier_key(name: str, public: Ed25519PublicKey) -> str:
    """The public key as signed-note verifiers take it: name+keyid+base64(0x01 + key)."""
    encoded = base64.b64encode(ED25519 + raw_public(public)).decode()
    return f"{name}+{key_id(name, public).hex()}+{encoded}"


def public_pem(public: Ed25519PublicKey) -> str:
    """The public key for openssl (SubjectPublicKeyInfo PEM)."""
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public(pem: bytes) -> Ed25519PublicKey:
    """A published public key (as `concorder audit key --pem` prints it)."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError("not an Ed25519 public key in PEM form")
    return key


def check_origin(origin: str) -> str:
    if not _ORIGIN.fullmatch(origin):
        raise CheckpointError(f"origin {origin!r} must be one word without '+' or spaces")
    return origin


def sign(checkpoint: Checkpoint, key: Ed25519PrivateKey) -> str:
    """The signed note, ready to publish."""
    name = check_origin(checkpoint.origin)
    body = checkpoint.body()
    signature = key.sign(body.encode())
    encoded = base64.b64encode(key_id(name, key.public_key()) + signature).decode()
    return f"{body}\n{DASH} {name} {encoded}\n"


def parse(text: str) -> Signed:
    """Read a signed checkpoint; CheckpointError names what is wrong with its layout."""
    body, blank, signatures = text.partition("\n\n")
    if not blank:
        raise CheckpointError("no blank line between the checkpoint and its signature")
    lines = body.split("\n")
    if len(lines) < 3:
        raise CheckpointError("the checkpoint needs an origin, a size and a hash line")
    origin, size, root = lines[:3]
    check_origin(origin)
    if not size.isdigit() or (size != "0" and size.startswith("0")):
        raise CheckpointError(f"the size {size!r} is not a whole number")
    try:
        head = base64.b64decode(root, validate=True)
    except binascii.Error:
        head = b""
    if len(head) != 32:
        raise CheckpointError("the hash line is not the base64 of a 32-byte hash")
    at = _time(lines[3:])
    first = signatures.split("\n", 1)[0]
    match = _SIGNATURE_LINE.fullmatch(first)
    if not match:
        raise CheckpointError(f"no signature line ('{DASH} name signature') after the blank line")
    try:
        blob = base64.b64decode(match[2], validate=True)
    except binascii.Error:
        blob = b""
    if len(blob) != 68:
        raise CheckpointError("the signature is not the base64 of a key id and an Ed25519 one")
    checkpoint = Checkpoint(origin, int(size), head.hex(), at)
    return Signed(checkpoint, match[1], blob[:4], blob[4:], (body + "\n").encode())


def _time(extensions: list[str]) -> datetime:
    for line in extensions:
        if line.startswith("time "):
            try:
                return datetime.fromisoformat(line[5:].replace("Z", "+00:00")).astimezone(UTC)
            except ValueError:
                break
    raise CheckpointError("no 'time YYYY-MM-DDTHH:MM:SSZ' line")


def check_signature(signed: Signed, public: Ed25519PublicKey) -> None:
    """Raise CheckpointError unless `public` signed this checkpoint as it reads."""
    expected = key_id(signed.key_name, public)
    if signed.key_id != expected:
        ours = verifier_key(signed.checkpoint.origin, public).rsplit("+", 1)[0]
        raise CheckpointError(
            f"signed by another key ({signed.key_name}+{signed.key_id.hex()}), not this "
            f"assembly's ({ours}; see concorder audit key)"
        )
    try:
        public.verify(signed.signature, signed.body)
    except InvalidSignature:
        raise CheckpointError(
            "the signature does not match the text: the checkpoint was altered or forged"
        ) from None


class AuditCheckpoint(Base):
    """A checkpoint the service signed; a copy lives in the database so a later run can
    compare, but only copies published elsewhere prove anything against this database."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    origin: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    head: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)


_EVENT_COLUMNS = (
    AuditEvent.seq,
    AuditEvent.at,
    AuditEvent.kind,
    AuditEvent.participant_id,
    AuditEvent.data,
    AuditEvent.prev_hash,
    AuditEvent.hash,
)


async def locked_head(session: AsyncSession) -> tuple[int, str]:
    """Link everything committed, then (size, head hash) with the head row held until the
    caller's transaction ends, so the chain cannot move under a checkpoint."""
    while await audit.sequence(session):
        pass
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one()
    return head.seq, head.hash


async def extends(session: AsyncSession, since: AuditCheckpoint | None, size: int) -> str | None:
    """Why the chain up to `size` does not extend the checkpoint `since` (None if it does):
    the events after it are recomputed, so a checkpoint never signs over a rewrite."""
    seq, prev = (since.size, since.head) if since else (0, audit.GENESIS)
    if since and since.size > size:
        return f"the chain has {size} events, the checkpoint of {since.at} {since.size}"
    if since and since.size > 0:
        found = await session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == since.size))
        if found != since.head:
            return f"event {since.size} no longer has the hash of the checkpoint of {since.at}"
    while seq < size:
        rows = (
            await session.execute(
                select(*_EVENT_COLUMNS)
                .where(AuditEvent.seq > seq, AuditEvent.seq <= size)
                .order_by(AuditEvent.seq)
                .limit(2000)
            )
        ).all()
        before = seq
        for event in rows:
            body = audit.canonical(seq + 1, event.at, event.kind, event.participant_id, event.data)
            digest = audit.link_hash(prev, body)
            if event.seq != seq + 1 or event.prev_hash != prev or event.hash != digest:
                return f"event {seq + 1} is missing or altered"
            seq, prev = event.seq, event.hash
        if seq == before:
            return f"event {seq + 1} is missing"
    return None


async def latest(session: AsyncSession) -> AuditCheckpoint | None:
    return (
        await session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1))
    ).scalar_one_or_none()


async def stored(session: AsyncSession) -> list[AuditCheckpoint]:
    return list(
        (await session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.id))).scalars()
    )


async def record(session: AsyncSession, checkpoint: Checkpoint, text: str, key: str) -> None:
    """Keep the signed checkpoint and note it in the chain (it links after the head it
    signs), in the caller's transaction."""
    session.add(
        AuditCheckpoint(
            at=checkpoint.at,
            origin=checkpoint.origin,
            size=checkpoint.size,
            head=checkpoint.head,
            key_id=key,
            text=text,
        )
    )
    await audit.append(
        session,
        EVENT_KIND,
        {"size": checkpoint.size, "head": checkpoint.head, "key": key},
        at=checkpoint.at,
    )


async def disagreement(session: AsyncSession, checkpoint: Checkpoint) -> str | None:
    """How the linked chain disagrees with a checkpoint (None when the event at its size
    carries its hash). A chain that was only appended to since always agrees."""
    if checkpoint.size == 0:
        return None
    last = await session.scalar(select(func.max(AuditEvent.seq))) or 0
    if last < checkpoint.size:
        return (
            f"the chain ends at event {last} but the checkpoint records {checkpoint.size} "
            "events: events were removed from the end"
        )
    found = await session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == checkpoint.size))
    if found is None:
        return f"event {checkpoint.size}, the checkpoint's head, is missing"
    if found != checkpoint.head:
        return (
            f"event {checkpoint.size} has hash {found[:16]}…, the checkpoint "
            f"{checkpoint.head[:16]}…: the chain was rewritten up to there"
        )
    return None
