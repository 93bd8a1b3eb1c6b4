"""Benchmark: the small-group relay, 150 members at 25 tables of 6 writing during a round.

    .venv/bin/python -m bench.relay [--members 150] [--size 6] [--every 8] [--seconds 30]
                                    [--window 20] [--sms-share 0.3]
                                    [--postgres [USER@HOST:PORT] | --database-url URL]

Every member writes every `--every` seconds (each from a random moment), through the
service as a webhook would (bot.services.turns.receive); the conversation relays each
message to the five others at the table (bot.services.deliberation, its relay step run as
the service runs it: woken when a member's turn commits) and the real dispatcher sends it
with the real transports to a loopback sink that answers like the Bot API and Twilio.
Every member reads each message at once (EVERY); the fair share is lifted, so nothing is
kept back. (What DIGEST saves by SMS is `concorder groups cost`.)

1. Limits off. The relay latency of each message: from the member's message in to the
   last of its five outbox rows (seen by a reader polling every 10 ms), and to the last of
   them handed to a channel; p50 and p99. The baseline, measured in the same run on the
   same schedule: the same fan-out written straight to the outbox (one transaction per
   message writing the five rows, as the relay's writer does), the same dispatcher.
2. Limits on (Telegram 30/s overall and 1/s per chat, SMS 1/s per sender number), for
   `--window` seconds, each member writing every `--every-on` seconds; Telegram members
   read every message, SMS members a digest (their default: one sender number carries
   one SMS a second, far from every message of 150 members). The most messages handed
   over in any one second per channel and per chat (never above the limits); per table,
   the longest one of its messages took to reach its Telegram readers: every table keeps
   moving (none waits over half the window); the slowest table is printed.

A temporary SQLite database by default; --postgres for a scratch PostgreSQL database
(CONCORDER_BENCH_PG, default postgres@127.0.0.1:5432), dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import re
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass

from bench.databases import Database
from bench.provider_sink import ProviderSink

TOKEN = "123456:bench"
ACCOUNT = "AC" + "0" * 32
SENDER = "+15005550006"
# Which member's message a row or an arrival is: its number in letters (the relay scrubs
# anything shaped like a phone number from what members write).
MARK = re.compile(r"\bzz([a-j]+)zz\b")


def mark(number: int) -> str:
    return "zz" + "".join("abcdefghij"[int(d)] for d in str(number)) + "zz"


def marked(text: str) -> int | None:
    found = MARK.search(text or "")
    return int("".join(str("abcdefghij".index(c)) for c in found[1])) if found else None


WORDS = "I think the buses should run later in the evening"
RELAYED: dict[int, float] = {}  # message number -> when its relay committed


# --- what reached members -----------------------------------------------------------------


class Sink:
    """The provider sink (bench/provider_sink.py), read for relayed messages only: each as
    [time, channel, to, which member's message it was (its mark)]."""

    def __init__(self) -> None:
        self.provider = ProviderSink()
        self.url = self.provider.url

    async def arrivals(self) -> list[list]:
        """Every relayed message's arrival since the last call."""
        found = []
        for t, channel, to, text in await self.provider.arrivals():
            number = marked(text)
            if number is not None:
                found.append([t, channel, to, number])
        return found

    async def stop(self) -> None:
        await self.provider.stop()


# --- the tables ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    pid: str
    channel: str
    address: str
    table: int
    letter: str


async def seed(sessions, members: int, size: int, sms_share: float) -> list[Member]:
    """Confirmed members with one contact each, seated `size` to a table (round 1), each
    reading every message as it is sent."""
    from sqlalchemy import insert

    from store.groups import GroupRun, GroupSeat
    from store.models import Contact, Participant, utcnow
    from store.recruitment import Selection

    rng = random.Random(11)
    now = utcnow()
    seated: list[Member] = []
    for n in range(members):
        sms = rng.random() < sms_share
        address = f"+4479{n:08d}" if sms else str(20_000_000 + n)
        seated.append(
            Member(
                f"P{n:011d}",
                "sms" if sms else "telegram",
                address,
                n // size + 1,
                "ABCDEFGH"[n % size],
            )
        )
    state = {"language": "en", "data": {"relay_mode": "every"}}
    async with sessions.begin() as session:
        run = GroupRun(
            run_id="GBENCH",
            seed="bench",
            algorithm="bench",
            input_sha256="0" * 64,
            payload={"rounds": 1, "members": []},
            result={},
            moves=[],
        )
        session.add(run)
        await session.flush()
        rows = [
            (
                Participant,
                [
                    {
                        "id": m.pid,
                        "language": "en",
                        "state": state,
                        "opted_out": False,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for m in seated
                ],
            ),
            (
                Contact,
                [
                    {
                        "participant_id": m.pid,
                        "channel": m.channel,
                        "address": m.address,
                        "sms_consent": True,
                        "created_at": now,
                        "next_seq": 1,
                    }
                    for m in seated
                ],
            ),
            (
                Selection,
                [
                    {
                        "participant_id": m.pid,
                        "draw_id": "bench",
                        "status": "confirmed",
                        "selected_at": now,
                    }
                    for m in seated
                ],
            ),
            (
                GroupSeat,
                [
                    {
                        "run_id": "GBENCH",
                        "round": 1,
                        "table_no": m.table,
                        "letter": m.letter,
                        "participant_id": m.pid,
                    }
                    for m in seated
                ],
            ),
        ]
        for table, data in rows:
            await session.execute(insert(table), data)
    return seated


async def open_tables(relay) -> None:
    """One prompt at every table, its fair share lifted and no early close or nudge."""
    from sqlalchemy import update

    from bot.services import deliberation
    from store.deliberation import TablePrompt

    await deliberation.open_prompt(relay, round_no=1, text="What should change?", minutes=600)
    async with relay.sessions.begin() as session:
        await session.execute(
            update(TablePrompt).values(fair_share=10**6, close_missing=0, nudge_at=None)
        )


def schedule(
    members: list[Member], every: float, seconds: float, start: int
) -> list[tuple[float, Member, int]]:
    """(seconds from the start, member, message number): each member every `every` s."""
    rng = random.Random(5)
    planned = []
    for m in members:
        t = rng.uniform(0, every)
        while t < seconds:
            planned.append((t, m))
            t += every
    planned.sort(key=lambda p: p[0])
    return [(t, m, start + i) for i, (t, m) in enumerate(planned)]


# --- writing ---------------------------------------------------------------------------------


async def member_writes(relay, m: Member, number: int) -> None:
    from bot.services import turns

    await turns.receive(
        relay,
        channel=m.channel,
        address=m.address,
        text=f"{mark(number)} {WORDS}",
        provider_id=f"bench-{number}",
    )


def straight_writer(relay, members: list[Member]):
    """The baseline: the same five rows written straight to the outbox, one transaction."""
    from sqlalchemy import select

    from bot.services.outgoing import enqueue
    from flows.model import Outbound
    from store.models import Contact, Participant, utcnow

    mates = defaultdict(list)
    for m in members:
        mates[m.table].append(m)
    written: dict[int, float] = {}

    async def write(_relay, m: Member, number: int) -> None:
        others = [x.pid for x in mates[m.table] if x.pid != m.pid]
        async with relay.sessions.begin() as session:
            contacts = (
                await session.execute(
                    select(Contact)
                    .where(Contact.participant_id.in_(others))
                    .order_by(Contact.id)
                    .with_for_update()  # as the relay takes them: in id order, locked
                )
            ).scalars()
            now = utcnow()
            for contact in list(contacts):
                participant = await session.get(Participant, contact.participant_id)
                message = Outbound(text=f"{m.letter}: {mark(number)} {WORDS}", kind="deliberation")
                await enqueue(
                    session,
                    relay.settings,
                    participant,
                    contact,
                    [message],
                    prompt_id=None,
                    now=now,
                )
        written[number] = time.time()  # committed: its five rows are in the outbox
        relay.outbox_signal.set()

    write.written = written
    return write


async def play(relay, planned, write) -> tuple[dict[int, float], float]:
    """Each message at its moment, as concurrent webhooks would; (sent at, worst lateness)."""
    started = time.time()
    sent: dict[int, float] = {}
    late = 0.0
    tasks = []
    for t, m, number in planned:
        wait = started + t - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        late = max(late, time.time() - started - t)
        sent[number] = time.time()
        tasks.append(asyncio.create_task(write(relay, m, number)))
    await asyncio.gather(*tasks)
    return sent, late


def note_relayed(relayed: dict[int, float]) -> None:
    """When each member's message was relayed: the commit of the transaction that set its
    `relayed_at` (its five rows are written in that transaction)."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from store.deliberation import Contribution

    def flushed(session, _context) -> None:  # the session still lists what it flushed
        session.info.setdefault("bench_relayed", []).extend(
            marked(obj.text)
            for obj in session.dirty
            if isinstance(obj, Contribution) and obj.relayed_at is not None
        )

    def after(session) -> None:
        now = time.time()
        for number in session.info.pop("bench_relayed", []):  # committed now
            if number is not None:
                relayed.setdefault(number, now)

    event.listen(Session, "after_flush", flushed)
    event.listen(Session, "after_commit", after)


async def relay_loop(relay, stop: asyncio.Event) -> None:
    """The conversation's relay step as the service runs it, woken by each member's turn."""
    from bot.services.deliberation.timing import relay_waiting
    from bot.services.deliberation.wiring import signal

    wake = signal(relay)
    while not stop.is_set():
        try:
            await asyncio.wait_for(wake.wait(), timeout=0.5)
        except TimeoutError:
            pass
        wake.clear()
        await relay_waiting(relay)


def percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    values = sorted(values)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return f"p50 {statistics.median(values) * 1000:6.0f} ms, p99 {p99 * 1000:6.0f} ms"


async def measure(relay, sink: Sink, planned, write, size: int, dispatcher, timeout: float) -> dict:
    """Play `planned` with `write`; latencies to the outbox and to the channels."""
    stop = asyncio.Event()
    relayed: dict[int, float] = getattr(write, "written", RELAYED)
    running = asyncio.create_task(dispatcher.run())
    relaying = asyncio.create_task(relay_loop(relay, stop))
    sent, late = await play(relay, planned, write)
    wanted = {number for _t, _m, number in planned}
    arrived: dict[int, list[float]] = defaultdict(list)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for t, _channel, _to, number in await sink.arrivals():
            arrived[number].append(t)
        if all(len(arrived[n]) >= size - 1 for n in wanted):
            break
        await asyncio.sleep(0.1)
    stop.set()
    dispatcher.stop()
    await asyncio.gather(running, relaying)
    to_rows = [relayed[n] - sent[n] for n in wanted if n in relayed]
    to_sent = [max(arrived[n]) - sent[n] for n in wanted if len(arrived[n]) >= size - 1]
    return {"messages": len(wanted), "late": late, "rows": to_rows, "sent": to_sent}


# --- limits on -------------------------------------------------------------------------------


def busiest_second(times: list[float], began: float) -> int:
    """The most of `times` in any one second of the window (whole seconds from `began`)."""
    per_second: dict[int, int] = defaultdict(int)
    for t in times:
        per_second[int(t - began)] += 1
    return max(per_second.values(), default=0)


async def digest_by_sms(relay, members: list[Member]) -> None:
    """SMS members back to DIGEST (their default): at one message a second per sender
    number, SMS cannot carry every message of 150 members (see `groups cost`)."""
    from sqlalchemy import update

    from store.models import Participant

    state = {"language": "en", "data": {"relay_mode": "digest"}}
    async with relay.sessions.begin() as session:
        await session.execute(
            update(Participant)
            .where(Participant.id.in_([m.pid for m in members if m.channel == "sms"]))
            .values(state=state)
        )


async def limits_on(args, relay, sink: Sink, members: list[Member], transports, start: int) -> bool:
    from bot.delivery.dispatcher import Dispatcher

    settings = relay.settings
    await digest_by_sms(relay, members)
    dispatcher = Dispatcher(
        relay.sessions, transports, settings, poll_interval=0.05, signal=relay.outbox_signal
    )
    planned = schedule(members, args.every_on, args.window, start)
    stop = asyncio.Event()
    running = asyncio.create_task(dispatcher.run())
    relaying = asyncio.create_task(relay_loop(relay, stop))
    began = time.time()
    sent, _late = await play(relay, planned, member_writes)
    await asyncio.sleep(max(0.0, began + args.window - time.time()))
    stop.set()
    dispatcher.stop()
    await asyncio.gather(running, relaying)
    end = began + args.window
    arrivals = [a for a in await sink.arrivals() if a[0] <= end]
    table_of = {m.address: m.table for m in members}
    per_channel, per_chat, per_table = defaultdict(list), defaultdict(list), defaultdict(list)
    for t, channel, to, _number in arrivals:
        per_channel[channel].append(t)
        per_chat[(channel, to)].append(t)
        per_table[table_of.get(to)].append(t)
    print(
        f"\n2. Limits on, {args.window:.0f} s: each member writes every {args.every_on:g} s "
        f"({len(planned)} messages); Telegram members read each one, SMS members a digest."
    )
    ok = True
    for channel, limit, chat_limit in (
        ("telegram", settings.telegram_rate, settings.telegram_chat_rate),
        ("sms", settings.sms_rate, None),
    ):
        worst = busiest_second(per_channel[channel], began)
        chats = [busiest_second(ts, began) for (c, _), ts in per_chat.items() if c == channel]
        within = worst <= limit and (chat_limit is None or max(chats, default=0) <= chat_limit)
        ok = ok and within
        chat_part = (
            f", any chat at most {max(chats, default=0)} (limit {chat_limit:g})"
            if chat_limit
            else ""
        )
        print(
            f"   {channel:8} {len(per_channel[channel]):5d} handed over; in any second at most "
            f"{worst} (limit {limit:g}){chat_part}: "
            f"{'within the limits' if within else 'LIMIT EXCEEDED'}"
        )
    return _tables_moving(args, members, planned, sent, arrivals, end) and ok


def _tables_moving(args, members: list[Member], planned, sent, arrivals, end: float) -> bool:
    """Each table's messages reach its Telegram readers while the window lasts: per table
    the longest a message took to reach them all; the slowest table is printed."""
    by_number = {number: m for _t, m, number in planned}
    on_telegram = defaultdict(int)
    for m in members:
        on_telegram[m.table] += m.channel == "telegram"
    reached: dict[int, list[float]] = defaultdict(list)
    for t, channel, _to, number in arrivals:
        if channel == "telegram":
            reached[number].append(t)
    slot = args.window / 2  # a table whose message waits longer than this has stalled
    worst: dict[int, float] = defaultdict(float)
    stuck: dict[int, int] = defaultdict(int)
    for number, m in by_number.items():
        readers = on_telegram[m.table] - (m.channel == "telegram")
        if readers and len(reached[number]) >= readers:
            worst[m.table] = max(worst[m.table], max(reached[number]) - sent[number])
        elif readers and sent[number] < end - slot:  # had time to arrive, and did not
            stuck[m.table] += 1
    tables = sorted({m.table for m in members})
    slowest = max(tables, key=lambda t: (stuck[t], worst[t]))
    moving = not any(stuck.values()) and worst[slowest] <= slot
    latencies = sorted(worst[t] for t in tables)
    print(
        f"   per table, the longest a message took to reach its Telegram readers: "
        f"{latencies[0]:.1f}-{latencies[-1]:.1f} s (median {statistics.median(latencies):.1f}); "
        f"the slowest, table {slowest}: {worst[slowest]:.1f} s, {stuck[slowest]} not arrived: "
        + ("every table kept moving" if moving else "SOME TABLE STALLED")
        + f" (all within {slot:.0f} s)."
    )
    if args.verbose:
        print("   per table:", {t: (round(worst[t], 1), stuck[t]) for t in tables})
    return moving


# --- the run ---------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> int:
    sink = Sink()
    try:
        kind = "postgresql" if args.postgres else "sqlite"
        async with Database(kind, args.postgres, url=args.database_url) as db:
            return await run(args, db, sink)
    finally:
        await sink.stop()


async def run(args: argparse.Namespace, db: Database, sink: Sink) -> int:
    from bot.bootstrap import build
    from bot.channels.transport import build_transports
    from bot.delivery.dispatcher import Dispatcher
    from bot.delivery.ratelimit import DeliveryLimits
    from bot.settings import Settings
    from scheduler import config as scheduler_config

    logging.basicConfig(level=logging.WARNING)
    settings = Settings(
        _env_file=None,
        CONCORDER_DATABASE_URL=db.url,
        CONCORDER_SECRET_KEY="bench-" + "0" * 58,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=sink.url,
        TWILIO_ACCOUNT_SID=ACCOUNT,
        TWILIO_AUTH_TOKEN="bench",
        TWILIO_FROM_NUMBER=SENDER,
        TWILIO_API_BASE_URL=sink.url,
    )
    relay = build(
        settings,
        calendar=scheduler_config.parse_calendar('[schedule]\nquiet_hours = ""\n'),
        sessions=db.sessions,
    )
    ok = True
    note_relayed(RELAYED)
    members = await seed(relay.sessions, args.members, args.size, args.sms_share)
    on_sms = sum(1 for m in members if m.channel == "sms")
    transports = build_transports(settings)
    off = Dispatcher(
        relay.sessions,
        transports,
        settings,
        limits=DeliveryLimits.off(),
        poll_interval=0.05,
        signal=relay.outbox_signal,
    )
    await open_tables(relay)
    await off.drain()
    await sink.arrivals()
    planned = schedule(members, args.every, args.seconds, 1)
    print(
        f"{args.members} members at {len({m.table for m in members})} tables of {args.size} "
        f"({len(members) - on_sms} on Telegram, {on_sms} by SMS; {db.engine.dialect.name}); "
        f"each writes every {args.every:g} s for {args.seconds:g} s: {len(planned)} messages, "
        f"{len(planned) * (args.size - 1)} deliveries."
    )
    base = await measure(
        relay, sink, planned, straight_writer(relay, members), args.size, off, args.timeout
    )
    ours_plan = schedule(members, args.every, args.seconds, 1_000_000)
    ours = await measure(relay, sink, ours_plan, member_writes, args.size, off, args.timeout)
    print("\n1. Limits off, relay latency (message in -> the last of its five):")
    for name, got in (("baseline", base), ("relay", ours)):
        print(
            f"   {name:9} -> outbox rows: {percentiles(got['rows'])}; "
            f"-> handed to a channel: {percentiles(got['sent'])}"
        )
        print(
            f"   {'':9} {len(got['sent'])}/{got['messages']} delivered in full; the "
            f"writer ran at most {got['late'] * 1000:.0f} ms late"
        )
        ok = ok and len(got["sent"]) == got["messages"]
    ok = await limits_on(args, relay, sink, members, transports, 2_000_000) and ok
    for transport in transports.values():
        await transport.close()
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=150)
    parser.add_argument("--size", type=int, default=6, help="members per table")
    parser.add_argument(
        "--every", type=float, default=8.0, help="seconds between a member's messages"
    )
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="how long members write (limits off)"
    )
    parser.add_argument(
        "--window", type=float, default=20.0, help="seconds measured with limits on"
    )
    parser.add_argument(
        "--every-on",
        type=float,
        default=20.0,
        help="seconds between a member's messages, limits on",
    )
    parser.add_argument("--sms-share", type=float, default=0.3)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--verbose", action="store_true", help="also print each table's count")
    parser.add_argument("--database-url", help="an empty database (default: temporary SQLite)")
    parser.add_argument(
        "--postgres",
        nargs="?",
        metavar="USER@HOST:PORT",
        const=os.environ.get("CONCORDER_BENCH_PG", "postgres@127.0.0.1:5432"),
        help="run on a scratch PostgreSQL database, dropped afterwards",
    )
    sys.exit(asyncio.run(main(parser.parse_args())))
