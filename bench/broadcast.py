"""Benchmark: an organiser's broadcast to 10,000 participants, from SEND to the channels.

    .venv/bin/python -m bench.broadcast [--people 10000] [--sms-share 0.3] [--window 10]
                                        [--postgres [USER@HOST:PORT] | --database-url URL]

An organiser writes `/broadcast ...` on Telegram and then SEND, through the service as a
webhook would. The broadcast is queued in that turn's transaction and the real dispatcher
(bot/delivery/dispatcher.py) sends it with the real transports (python-telegram-bot, twilio) to a
loopback sink that answers like the Bot API (sendMessage) and like Twilio (Messages.json).

1. Limits off: the time from the organiser's SEND to the last message handed to a channel.
2. Limits on (settings: Telegram 30/s overall, SMS per sender number): a second broadcast
   runs for a bounded window (default 10 s); the achieved rate of each channel against its
   limit (target: at least 95%).

The sink (bench/provider_sink.py) runs in a child process so it does not share an event
loop with what it measures.
A temporary SQLite database by default; --postgres for a scratch PostgreSQL database
(CONCORDER_BENCH_PG, default postgres@127.0.0.1:5432), or --database-url for an empty one.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sys
import time

from bench.databases import Database
from bench.provider_sink import ProviderSink

TOKEN = "123456:bench"
ACCOUNT = "AC" + "0" * 32
SENDER = "+15005550006"
ORGANISER_CHAT = "4242"
TARGET = 0.95
TEXT = "The venue has changed: all sessions now take place at the Town Hall, Room B."


# --- what reached participants ----------------------------------------------------------


class Received:
    """Arrivals at the provider sink for participants (the organiser's own chat is left
    out: previews and confirmations), as [time, channel], gathered as they come."""

    def __init__(self, sink: ProviderSink) -> None:
        self.sink = sink
        self.seen: list[tuple[float, str]] = []

    async def update(self) -> list[tuple[float, str]]:
        found = await self.sink.arrivals()
        self.seen += [(t, c) for t, c, to, _text in found if to != ORGANISER_CHAT]
        return self.seen

    def since(self, moment: float) -> list[tuple[float, str]]:
        return [a for a in self.seen if a[0] >= moment]


# --- the assembly --------------------------------------------------------------------------


async def seed(sessions, people: int, sms_share: float) -> dict[str, int]:
    """Drawn participants with one contact each (Telegram or SMS), written in bulk."""
    from sqlalchemy import insert

    from store.models import Contact, Participant, utcnow
    from store.recruitment import Selection

    rng = random.Random(4)
    now = utcnow()
    rows, contacts, seats, channels = [], [], [], {"telegram": 0, "sms": 0}
    for n in range(people):
        pid = f"P{n:011d}"
        language = rng.choice(("en", "en", "fr", "es"))
        sms = rng.random() < sms_share
        channel = "sms" if sms else "telegram"
        channels[channel] += 1
        rows.append(
            {
                "id": pid,
                "language": language,
                "opted_out": False,
                "state": {"language": language},
                "created_at": now,
                "updated_at": now,
            }
        )
        contacts.append(
            {
                "participant_id": pid,
                "channel": channel,
                "address": f"+4479{n:08d}" if sms else str(10_000_000 + n),
                "sms_consent": sms,
                "created_at": now,
                "next_seq": 1,
            }
        )
        seats.append(
            {"participant_id": pid, "draw_id": "bench", "status": "confirmed", "selected_at": now}
        )
    async with sessions.begin() as session:
        for table, data in ((Participant, rows), (Contact, contacts), (Selection, seats)):
            for start in range(0, len(data), 2000):
                await session.execute(insert(table), data[start : start + 2000])
    return channels


async def organiser_sends(relay, label: str) -> tuple[float, float]:
    """The organiser's preview, then SEND. Returns (SEND time, seconds SEND took)."""
    from bot.services import turns as service

    await service.receive(
        relay,
        channel="telegram",
        address=ORGANISER_CHAT,
        text=f"/broadcast {TEXT} ({label})",
        provider_id=f"{label}-1",
    )
    sent_at = time.time()
    started = time.perf_counter()
    await service.receive(
        relay, channel="telegram", address=ORGANISER_CHAT, text="SEND", provider_id=f"{label}-2"
    )
    return sent_at, time.perf_counter() - started


def achieved(arrivals: list[list], channel: str, window: float, start: float) -> float:
    """Messages a second on `channel` between its first arrival and the end of the window."""
    times = sorted(t for t, c in arrivals if c == channel and t <= start + window)
    if len(times) < 2:
        return 0.0
    return (len(times) - 1) / (times[-1] - times[0])


async def main(args: argparse.Namespace) -> int:
    from bot.bootstrap import build
    from bot.channels.transport import build_transports
    from bot.services.organisers import add_organiser
    from bot.settings import Settings
    from scheduler import config as scheduler_config

    logging.basicConfig(level=logging.WARNING)
    kind = "postgresql" if args.postgres else "sqlite"
    sink = ProviderSink()
    received = Received(sink)
    # No quiet hours: the benchmark measures sending, whatever the time of day it runs at.
    calendar = scheduler_config.parse_calendar('[schedule]\nquiet_hours = ""\n')
    try:
        async with Database(kind, args.postgres, url=args.database_url) as db:
            settings = Settings(
                _env_file=None,
                CONCORDER_DATABASE_URL=db.url,
                TELEGRAM_BOT_TOKEN=TOKEN,
                TELEGRAM_API_BASE_URL=sink.url,
                TWILIO_ACCOUNT_SID=ACCOUNT,
                TWILIO_AUTH_TOKEN="bench",
                TWILIO_FROM_NUMBER=SENDER,
                TWILIO_API_BASE_URL=sink.url,
            )
            relay = build(settings, calendar=calendar, sessions=db.sessions)
            channels = await seed(db.sessions, args.people, args.sms_share)
            async with db.sessions.begin() as session:
                await add_organiser(session, telegram_id=ORGANISER_CHAT)
            print(
                f"{args.people} participants: {channels['telegram']} on Telegram, "
                f"{channels['sms']} by SMS ({db.engine.dialect.name})."
            )
            transports = build_transports(settings)
            ok = await limits_off(args, relay, transports, received)
            ok = await limits_on(args, relay, transports, received) and ok
            for transport in transports.values():
                await transport.close()
    finally:
        await sink.stop()
    return 0 if ok else 1


async def limits_off(args: argparse.Namespace, relay, transports, received: Received) -> bool:
    """1. Limits off: SEND -> last message handed over. False when it timed out."""
    from bot.delivery.dispatcher import Dispatcher
    from bot.delivery.ratelimit import DeliveryLimits

    dispatcher = Dispatcher(
        relay.sessions,
        transports,
        relay.settings,
        limits=DeliveryLimits.off(),
        poll_interval=0.05,
        signal=relay.outbox_signal,
    )
    running = asyncio.create_task(dispatcher.run())
    sent_at, queue_time = await organiser_sends(relay, "off")
    ok = await _all_arrived(received, args.people, args.timeout)
    arrivals = received.since(sent_at)
    last = max(t for t, _c in arrivals)
    dispatcher.stop()
    await running
    total = last - sent_at
    print(
        f"\n1. Limits off: SEND -> last message handed to a channel: {total:.2f} s "
        f"({args.people / total:.0f} messages/s); queueing in the SEND transaction "
        f"took {queue_time:.2f} s."
    )
    for channel in ("telegram", "sms"):
        times = [t for t, c in arrivals if c == channel]
        if times:
            print(
                f"   {channel:8} {len(times):6d} messages, the last "
                f"{max(times) - sent_at:6.2f} s after SEND "
                f"({len(times) / (max(times) - sent_at):.0f}/s)"
            )
    return ok


async def _all_arrived(received: Received, expected: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while len(await received.update()) < expected:
        if time.monotonic() > deadline:
            print("Timed out waiting for the broadcast to be handed over.")
            return False
        await asyncio.sleep(0.05)
    return True


async def limits_on(args: argparse.Namespace, relay, transports, received: Received) -> bool:
    """2. Limits on, over a bounded window: True when each channel reached TARGET."""
    from bot.delivery.dispatcher import Dispatcher

    settings = relay.settings
    dispatcher = Dispatcher(
        relay.sessions, transports, settings, poll_interval=0.05, signal=relay.outbox_signal
    )
    running = asyncio.create_task(dispatcher.run())
    before = len(await received.update())
    sent_at, _queue = await organiser_sends(relay, "on")
    while len(await received.update()) == before:  # the window opens with the first
        await asyncio.sleep(0.05)
    await asyncio.sleep(args.window + 0.5)
    dispatcher.stop()
    await running
    await received.update()
    arrivals = received.since(sent_at)
    start = min(t for t, _c in arrivals)  # the first participant's message
    if args.verbose:
        _print_per_second(arrivals, start, args.window)
    print(f"\n2. Limits on, {args.window:.0f} s window:")
    ok = True
    for channel, limit in (("telegram", settings.telegram_rate), ("sms", settings.sms_rate)):
        rate = achieved(arrivals, channel, args.window, start)
        share = rate / limit if limit else 0.0
        verdict = "ok" if share >= TARGET else f"below the {TARGET:.0%} target"
        ok = ok and share >= TARGET
        print(
            f"   {channel:8} {rate:6.2f}/s against a limit of {limit:g}/s: {share:.1%} ({verdict})"
        )
    return ok


def _print_per_second(arrivals: list[list], start: float, window: float) -> None:
    per_second: dict[int, int] = {}
    for t, c in arrivals:
        if c == "telegram":
            per_second[int(t - start)] = per_second.get(int(t - start), 0) + 1
    print(
        "   Telegram messages per second:",
        [per_second.get(n, 0) for n in range(int(window) + 1)],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument(
        "--sms-share", type=float, default=0.3, help="the share of participants reached by SMS"
    )
    parser.add_argument(
        "--window",
        type=float,
        default=10.0,
        help="seconds over which the rates with limits on are measured",
    )
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument(
        "--verbose", action="store_true", help="also show Telegram arrivals second by second"
    )
    parser.add_argument("--database-url", help="an empty database (default: temporary SQLite)")
    parser.add_argument(
        "--postgres",
        nargs="?",
        metavar="USER@HOST:PORT",
        const=os.environ.get("CONCORDER_BENCH_PG", "postgres@127.0.0.1:5432"),
        help="run on a scratch PostgreSQL database, dropped afterwards",
    )
    sys.exit(asyncio.run(main(parser.parse_args())))
