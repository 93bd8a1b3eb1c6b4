"""The port every channel adapter implements, and how the service picks one per channel.

The dispatcher hands an `Outgoing` to `Transport.send`. A transport returns `Sent`, or
raises `RetryLater` (rate limited, network trouble: try again) or `PermanentFailure`
(never retry; it may say the person is unreachable or opted out on this channel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.addresses import is_simulated
from bot.settings import Settings


@dataclass(frozen=True)
class Outgoing:
    id: int  # outbox row id: an idempotency key where the channel takes one
    channel: str
    address: str
    text: str
    buttons: list[dict[str, str]] | None = None  # [{"label": ..., "data": ...}]
    markdown: bool = False
    part: int = 1
    parts: int = 1
    kind: str = "reply"


@dataclass(frozen=True)
class Sent:
    provider_id: str | None = None
    delivered: bool = False  # True when the channel confirms delivery at once (simulator)


class RetryLater(Exception):
    def __init__(self, reason: str, after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.after = after  # seconds the channel asked us to wait (Telegram retry_after)


class PermanentFailure(Exception):
    def __init__(self, reason: str, *, unreachable: bool = False, opted_out: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable  # e.g. the person blocked the bot
        self.opted_out = opted_out  # e.g. Twilio error 21610


class Transport(Protocol):
    channel: str

    async def send(self, message: Outgoing) -> Sent: ...

    async def close(self) -> None: ...


class KeepSimulatedApart:
    """A real channel's transport that hands messages for simulated addresses to the
    simulator instead: whatever is queued for a simulated person never leaves the service."""

    def __init__(self, real: Transport, simulator: Transport):
        self.channel = real.channel
        self.real = real
        self.simulator = simulator

    async def send(self, message: Outgoing) -> Sent:
        if is_simulated(message.address):
            return await self.simulator.send(message)
        return await self.real.send(message)

    async def close(self) -> None:
        await self.real.close()


class NotConfigured:
    """A channel with no account beside one that has: its real people's messages wait (and
    show on /healthz) until the account is set, instead of being taken by the simulator as
    delivered when nobody got them. Simulated people are still served by the simulator."""

    def __init__(self, simulator: Transport):
        self.channel = simulator.channel
        self.simulator = simulator

    async def send(self, message: Outgoing) -> Sent:
        if is_simulated(message.address):
            return await self.simulator.send(message)
        raise RetryLater(f"{self.channel} is not configured: set its account to send")

    async def close(self) -> None:
        await self.simulator.close()


def build_transports(settings: Settings) -> dict[str, Transport]:
    """A transport per channel: the real one when configured, else the simulator (only
    while no channel is real: then nobody real can be waiting for a message)."""
    from bot.channels.simulator import SimulatorTransport

    transports: dict[str, Transport] = {}
    if settings.telegram_enabled:
        from bot.channels.telegram_send import TelegramTransport

        transports["telegram"] = TelegramTransport(settings)
    if settings.sms_enabled:
        from bot.channels.sms import SmsTransport

        transports["sms"] = SmsTransport(settings)
    for channel, real in transports.items():
        # Always, not only while the simulator is on: rows queued for simulated people
        # before it was turned off must not reach a carrier either.
        transports[channel] = KeepSimulatedApart(real, SimulatorTransport(channel))
    for channel in settings.simulated_channels:
        simulator = SimulatorTransport(channel)
        transports[channel] = (
            NotConfigured(simulator) if settings.real_channel_configured else simulator
        )
    return transports
