"""The send path: one claimed row handed to its channel's transport, and what came of it.

Before a send the recipient is checked (an expired message, an opt-out, an unreachable
contact never reach the transport); the send waits for the rate limits and is cut off
after the send timeout by the workers' watchdog; the outcome is queued for the batched
outcome writer, never committed here. A message with `expires_at` (a reminder of a session
that has begun) is never sent after it: it ends "expired" and the messages behind it go on.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime

from bot.channels.transport import PermanentFailure, RetryLater, Sent, Transport
from bot.delivery import retry
from bot.delivery.claims import Claimed
from bot.delivery.health import ChannelBook
from bot.delivery.outcomes import OutcomeWriter
from bot.delivery.ratelimit import ChannelLimits, DeliveryLimits
from bot.delivery.recipients import Recipients
from bot.delivery.send_watch import Sender
from bot.metrics import DISPATCH_LATENCY
from bot.services import invite_codes
from bot.settings import Settings
from store.models import OutboxStatus

log = logging.getLogger(__name__)


class Sending:
    """Sends one claimed row at a time (many workers share one)."""

    def __init__(
        self,
        *,
        transports: dict[str, Transport],
        settings: Settings,
        limits: DeliveryLimits,
        health: ChannelBook,
        writer: OutcomeWriter,
        recipients: Recipients,
        clock: Callable[[], datetime],
        send_timeout: float,
        rng: Callable[[], float] = random.random,
        invite_key: bytes | None = None,
    ):
        self.transports = transports
        self.settings = settings
        self.limits = limits
        self.writer = writer
        self.recipients = recipients
        self.clock = clock
        self.send_timeout = send_timeout
        self.rng = rng
        self._invite_key = invite_key
        self._health = {channel: health.channel(channel) for channel in transports}

    @property
    def invite_key(self) -> bytes:
        if self._invite_key is None:  # read when the first row goes out, not at start-up
            self._invite_key = invite_codes.server_key(self.settings)
        return self._invite_key

    async def process(self, row: Claimed, sender: Sender) -> None:
        """Check the recipient, wait for the rate limits, send, and queue the outcome."""
        if await self._settled_before_send(row):
            return
        limits = self.limits.for_channel(row.channel)
        if limits is not None and row.previous_sent_at is not None:
            limits.follow(row.address, row.previous_sent_at, self.clock())
        try:
            sent, handed_over = await self._hand_over(row, sender, limits)
        except Exception as exc:
            await self._failed(row, exc, limits)
        else:
            health = self._health[row.channel]
            if health.failures:
                health.succeeded()
            self._sent(row, sent, handed_over)

    async def _settled_before_send(self, row: Claimed) -> bool:
        """End a row that must not be sent as it stands; True when it was."""
        if row.expires_at is not None and row.expires_at <= self.clock():
            self.writer.finish(
                row, OutboxStatus.EXPIRED, error="its moment passed before it could be sent"
            )
            return True
        if (row.participant_opted_out or row.contact_opted_out) and not row.compliance:
            self.writer.finish(row, OutboxStatus.CANCELLED, error="recipient opted out")
            return True
        if row.contact_unreachable:
            await self.recipients.reroute(row, "contact unreachable")
            return True
        return False

    async def _hand_over(
        self, row: Claimed, sender: Sender, limits: ChannelLimits | None
    ) -> tuple[Sent, datetime]:
        """Wait for the limits, then send under the watchdog's deadline; what the channel
        answered and when the message was handed over."""
        permit = await limits.acquire(row.address) if limits is not None else None
        try:
            handed_over = self.clock()
            DISPATCH_LATENCY.observe(
                row.channel, max(0.0, (handed_over - row.created_at).total_seconds())
            )
            sender.deadline = time.monotonic() + self.send_timeout
            try:
                sent = await self.transports[row.channel].send(row.outgoing(self.invite_key))
            except asyncio.CancelledError:
                if not sender.expired:
                    raise
                sender.task.uncancel()  # our watchdog's cancellation: the send timed out
                raise TimeoutError from None
            finally:
                sender.deadline, sender.expired = None, False
        finally:
            if limits is not None:
                limits.done(permit)
        return sent, handed_over

    async def _failed(self, row: Claimed, exc: Exception, limits: ChannelLimits | None) -> None:
        """Interpret what the send raised: a retry, a refusal, a timeout or a fault."""
        if isinstance(exc, RetryLater):
            if exc.after is not None and limits is not None:
                limits.hold(row.address, exc.after)
            if exc.after is None:  # the channel asking us to slow down is no failure of it
                self._health[row.channel].failed(self.clock(), exc.reason)
            self._retry(row, exc.reason, exc.after)
        elif isinstance(exc, PermanentFailure):
            if exc.unreachable or exc.opted_out:
                await self.recipients.refused(row, exc)
            else:
                self._give_up(row, exc.reason)
        elif isinstance(exc, TimeoutError):
            self._health[row.channel].failed(self.clock(), "send timed out")
            self._retry(row, "send timed out", None)
        else:  # a transport bug or network error: retry a few times, never crash
            # The exception's own message may quote the message or the number: only its type.
            log.warning(
                "transport %s raised %s for outbox row %d", row.channel, type(exc).__name__, row.id
            )
            reason = f"transport error: {type(exc).__name__}"
            self._health[row.channel].failed(self.clock(), reason)
            self._retry(row, reason, None, unexpected=True)

    def _sent(self, row: Claimed, sent: Sent, handed_over: datetime) -> None:
        # Sent when handed over, not when answered: a per-chat limit counts from there
        # (ChannelLimits.follow), and a slow answer must not stretch the chat's interval.
        self.writer.finish(
            row,
            OutboxStatus.DELIVERED if sent.delivered else OutboxStatus.SENT,
            provider_id=sent.provider_id,
            sent_at=handed_over,
            delivered_at=self.clock() if sent.delivered else None,
        )

    def _retry(
        self, row: Claimed, reason: str, after: float | None, *, unexpected: bool = False
    ) -> None:
        then = retry.after_failure(
            row,
            reason,
            after,
            now=self.clock(),
            retry_for=self.settings.retry_for,
            rng=self.rng,
            unexpected=unexpected,
        )
        if then.at is None:
            self._give_up(row, then.error)
        else:
            self.writer.finish(row, OutboxStatus.QUEUED, error=then.error, next_attempt_at=then.at)

    def fault(self, row: Claimed, exc: Exception) -> None:
        """Processing failed outside the send (a database error while moving the message to
        SMS, say): tried again with backoff, and failed after a few such attempts, so the
        row is not claimed again each time its lease runs out (bot/delivery/retry.py)."""
        reason = f"processing failed: {type(exc).__name__}"
        then = retry.after_fault(row, reason, now=self.clock(), rng=self.rng)
        if then.at is None:
            self._give_up(row, then.error, fault=1)
        else:
            self.writer.finish(
                row, OutboxStatus.QUEUED, error=then.error, next_attempt_at=then.at, fault=1
            )

    def _give_up(self, row: Claimed, error: str, *, fault: int = 0) -> None:
        # The reason stays in the row: a provider's words may quote the number.
        log.warning(
            "gave up on outbox row %d (%s) after %d attempts", row.id, row.channel, row.attempts
        )
        self._health[row.channel].given_up(error)
        self.writer.finish(row, OutboxStatus.FAILED, error=error, fault=fault)
