"""Benchmark: outbox -> dispatcher -> TelegramTransport -> a loopback Bot API sink.

    .venv/bin/python -m bench.dispatch [--messages 5000] [--chats 1000] [--no-postgres]

1. Throughput with limits off, against a baseline: a bare aiohttp client posting the same
   number of sendMessage requests to the same sink with the same concurrency (target: the
   dispatcher, sending through an aiohttp transport, reaches at least half the baseline's
   rate; the baseline is measured again just before each dispatcher run, as load drifts).
   The same run through TelegramTransport (python-telegram-bot, httpx) and a bare
   python-telegram-bot loop are reported beside it: that library's speed is its own.
2. With the Telegram limits on (30/s overall, 1/s per chat): the sustained rate over about
   ten seconds (target >= 29/s), the most messages the sink saw in any one-second window
   (never more than 30) and, per chat, in any one-second window (never more than 1); the
   rate the busiest chats got, from their first message to their last (0.9 to 1). Once
   with one dispatcher on SQLite, and with PostgreSQL also with two dispatchers, each in an
   OS process of its own, sharing the limits through the database: together they keep them,
   and a busy chat still gets its rate from them.

The sink runs in a child process, so it does not share an event loop with what it measures.
SQLite always; PostgreSQL too when it answers (CONCORDER_BENCH_PG, default
postgres@127.0.0.1:5432), in a scratch database dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import os
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from bench.databases import Database, pg_reachable

TOKEN = "123456:bench"
# Children run as `-m bench.dispatch` from here: run as a file, bench/select.py would
# stand in for the standard library's select module.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONCURRENCY = 32  # the Telegram transport's connection pool size; the baseline uses it too


# --- the sink (child process) ------------------------------------------------------------


def run_sink() -> None:
    """Answer sendMessage like the Bot API and remember when each message arrived."""
    arrivals: list[tuple[float, int]] = []
    message_ids = itertools.count(1)

    async def bot_method(request: web.Request) -> web.Response:
        # When the request reached the sink, before its body is read: what Telegram counts.
        arrived = time.time()
        method = request.match_info["method"]
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = dict(await request.post())
        if method == "getMe":
            return web.json_response(
                {
                    "ok": True,
                    "result": {
                        "id": 1,
                        "is_bot": True,
                        "first_name": "Sink",
                        "username": "sink_bot",
                    },
                }
            )
        if method != "sendMessage":
            return web.json_response({"ok": True, "result": True})
        chat = int(params["chat_id"])
        arrivals.append((arrived, chat))
        return web.json_response(
            {
                "ok": True,
                "result": {
                    "message_id": next(message_ids),
                    "date": int(time.time()),
                    "chat": {"id": chat, "type": "private"},
                    "text": params.get("text", ""),
                },
            }
        )

    async def count(request: web.Request) -> web.Response:
        return web.json_response({"count": len(arrivals)})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"arrivals": arrivals})

    async def reset(request: web.Request) -> web.Response:
        arrivals.clear()
        return web.json_response({"ok": True})

    async def main() -> None:
        # The sink stands for Telegram's servers, which are not on this machine: it runs
        # ahead of the processes measured, so its arrival times are not its own delays.
        with contextlib.suppress(OSError):
            os.nice(-10)
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", bot_method)
        app.router.add_get("/count", count)
        app.router.add_get("/stats", stats)
        app.router.add_post("/reset", reset)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


@dataclass
class Sink:
    url: str
    process: subprocess.Popen
    http: aiohttp.ClientSession | None = None

    @classmethod
    def start(cls) -> Sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.dispatch", "--sink"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        port = int(process.stdout.readline())
        return cls(f"http://127.0.0.1:{port}", process)

    async def _get(self, path: str) -> dict:
        if self.http is None:
            self.http = aiohttp.ClientSession()
        async with self.http.get(self.url + path) as response:
            return await response.json()

    async def count(self) -> int:
        return (await self._get("/count"))["count"]

    async def arrivals(self) -> list[tuple[float, int]]:
        return [tuple(a) for a in (await self._get("/stats"))["arrivals"]]

    async def reset(self) -> None:
        if self.http is None:
            self.http = aiohttp.ClientSession()
        async with self.http.post(self.url + "/reset") as response:
            await response.read()

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()
        self.process.terminate()
        self.process.wait(timeout=5)


class AiohttpBotApiTransport:
    """The Transport port over a bare aiohttp client: separates the dispatcher's own cost
    from python-telegram-bot's (which goes through httpx)."""

    channel = "telegram"

    def __init__(self, base_url: str):
        from bot.channels.transport import PermanentFailure, RetryLater, Sent

        self.url = f"{base_url}/bot{TOKEN}/sendMessage"
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY))
        self.errors = (PermanentFailure, RetryLater)
        self.sent_type = Sent

    async def send(self, message):
        permanent, retry = self.errors
        payload = {"chat_id": message.address, "text": message.text}
        async with self.http.post(self.url, json=payload) as response:
            body = await response.json()
        if body.get("ok"):
            return self.sent_type(provider_id=str(body["result"]["message_id"]))
        if body.get("error_code") == 429:
            raise retry("flood control", after=body.get("parameters", {}).get("retry_after"))
        raise permanent(body.get("description", "refused"))

    async def close(self) -> None:
        await self.http.close()


# --- the database --------------------------------------------------------------------------


async def fill_outbox(sessions, chats: list[int], per_chat: dict[int, int]) -> int:
    """Participants, Telegram contacts and queued rows, written in bulk (contact by contact)."""
    from sqlalchemy import insert

    from store.models import Contact, OutboxMessage, Participant, utcnow

    now = utcnow()
    people = [
        {
            "id": f"P{n:011d}",
            "language": "en",
            "opted_out": False,
            "state": {},
            "created_at": now,
            "updated_at": now,
        }
        for n in range(len(chats))
    ]
    contacts = [
        {
            "id": n + 1,
            "participant_id": people[n]["id"],
            "channel": "telegram",
            "address": str(chat),
            "sms_consent": False,
            "created_at": now,
            "next_seq": per_chat[chat] + 1,
        }
        for n, chat in enumerate(chats)
    ]
    rows = [
        {
            "participant_id": people[n]["id"],
            "contact_id": n + 1,
            "seq": seq,
            "channel": "telegram",
            "address": str(chat),
            "text": f"Message {seq} of a broadcast",
            "markdown": False,
            "compliance": False,
            "kind": "broadcast",
            "part": 1,
            "parts": 1,
            "segments": 1,
            "status": "queued",
            "attempts": 0,
            "not_before": now,
            "next_attempt_at": now,
            "created_at": now,
        }
        for n, chat in enumerate(chats)
        for seq in range(1, per_chat[chat] + 1)
    ]
    async with sessions.begin() as session:
        await session.execute(insert(Participant), people)
        await session.execute(insert(Contact), contacts)
        for start in range(0, len(rows), 2000):
            await session.execute(insert(OutboxMessage), rows[start : start + 2000])
    return len(rows)


async def status_counts(sessions) -> dict[str, int]:
    from sqlalchemy import func, select

    from store.models import OutboxMessage

    async with sessions() as session:
        result = await session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        )
        return dict(result.all())


# --- the measurements ----------------------------------------------------------------------


async def baseline(sink: Sink, chats: list[int], per_chat: dict[int, int]) -> float:
    """A bare aiohttp client: the same sendMessage requests, the same concurrency."""
    jobs: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    for chat in chats:
        for seq in range(1, per_chat[chat] + 1):
            jobs.put_nowait((chat, seq))
    total = jobs.qsize()
    url = f"{sink.url}/bot{TOKEN}/sendMessage"

    async def worker(http: aiohttp.ClientSession) -> None:
        while not jobs.empty():
            chat, seq = jobs.get_nowait()
            payload = {"chat_id": str(chat), "text": f"Message {seq} of a broadcast"}
            async with http.post(url, json=payload) as response:
                body = await response.json()
                assert body["ok"], body

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    return total / elapsed


async def baseline_ptb(
    sink: Sink, chats: list[int], per_chat: dict[int, int], budget: float
) -> float:
    """python-telegram-bot alone (TelegramTransport.send in a loop), same concurrency."""
    from bot.channels.telegram_send import TelegramTransport
    from bot.channels.transport import Outgoing

    jobs = [(chat, seq) for chat in chats for seq in range(1, per_chat[chat] + 1)]
    jobs.reverse()
    transport = TelegramTransport(bench_settings("sqlite://", sink))
    done = 0
    started = time.perf_counter()

    async def worker() -> None:
        nonlocal done
        while jobs and time.perf_counter() - started < budget:
            chat, seq = jobs.pop()
            await transport.send(
                Outgoing(
                    id=seq,
                    channel="telegram",
                    address=str(chat),
                    text=f"Message {seq} of a broadcast",
                )
            )
            done += 1

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    await transport.close()
    return done / elapsed


def bench_settings(url: str, sink: Sink, **rates: float):
    from bot.settings import Settings

    return Settings(
        CONCORDER_DATABASE_URL=url,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=sink.url,
        _env_file=None,
        **rates,
    )


async def dispatch_unlimited(
    kind: str,
    pg_server: str | None,
    sink: Sink,
    chats: list[int],
    per_chat: dict[int, int],
    transport_kind: str,
    budget: float,
) -> tuple[float, dict[str, int]]:
    """Messages per second from outbox to sink, limits off, over at most `budget` seconds."""
    from bot.channels.telegram_send import TelegramTransport
    from bot.delivery.dispatcher import Dispatcher
    from bot.delivery.ratelimit import DeliveryLimits

    async with Database(kind, pg_server) as db:
        total = await fill_outbox(db.sessions, chats, per_chat)
        settings = bench_settings(db.url, sink)
        transport = (
            TelegramTransport(settings)
            if transport_kind == "ptb"
            else AiohttpBotApiTransport(sink.url)
        )
        dispatcher = Dispatcher(
            db.sessions,
            {"telegram": transport},
            settings,
            limits=DeliveryLimits.off(),
            concurrency=CONCURRENCY,
            poll_interval=0.05,
            depth_interval=3600,
        )
        await sink.reset()
        before = committed_sends()
        started = time.perf_counter()
        task = asyncio.create_task(dispatcher.run())
        # The clock stops when the last outcome is committed. The dispatcher counts each one
        # once its commit is done: watch that count here rather than poll the database
        # (which would compete with the dispatcher) or the sink (another round trip).
        while committed_sends() - before < total and time.perf_counter() - started < budget:
            if task.done():
                break
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
        delivered = min(await sink.count(), committed_sends() - before)
        dispatcher.stop()
        await task
        await transport.close()
        return delivered / elapsed, await status_counts(db.sessions)


def committed_sends() -> float:
    """Telegram messages the dispatcher has recorded as sent, read from its own metric."""
    from bot.metrics import MESSAGES_OUT

    (family,) = MESSAGES_OUT.labels("telegram", "sent").collect()
    return next(s.value for s in family.samples if s.name.endswith("_total"))


@dataclass
class Limited:
    sustained: float
    window_max: int
    chat_window_max: int
    sent: int
    seconds: float
    hot_chat_rate: float


def most_in_any_window(times: list[float], window: float = 1.0) -> int:
    """The largest number of arrivals inside any window [t, t + window)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def run_limited(url: str, sink_url: str, seconds: float) -> None:
    """One dispatcher with the Telegram limits on, for `seconds` (in this process)."""
    from bot.channels.telegram_send import TelegramTransport
    from bot.delivery.dispatcher import Dispatcher
    from store.db import make_engine, sessionmaker

    engine = make_engine(url)
    settings = bench_settings(
        url, Sink(sink_url, None), CONCORDER_TELEGRAM_RATE=30, CONCORDER_TELEGRAM_CHAT_RATE=1
    )
    transport = TelegramTransport(settings)
    dispatcher = Dispatcher(
        sessionmaker(engine),
        {"telegram": transport},
        settings,
        concurrency=CONCURRENCY,
        poll_interval=0.05,
    )
    task = asyncio.create_task(dispatcher.run())
    await asyncio.sleep(seconds)
    dispatcher.stop()
    await task
    await transport.close()
    await engine.dispose()


async def dispatch_limited(
    sink: Sink,
    seconds: float,
    kind: str = "sqlite",
    pg_server: str | None = None,
    instances: int = 1,
) -> Limited:
    """30/s overall and 1/s per chat, with a backlog no limit-abiding sender could clear.

    With several instances, each dispatcher runs in an OS process of its own, with its own
    engine, on the one database.
    """
    cold = [300_000 + n for n in range(400)]  # one message each
    hot = [400_000 + n for n in range(5)]  # twenty each: the per-chat limit decides
    per_chat = {**dict.fromkeys(cold, 1), **dict.fromkeys(hot, 20)}
    async with Database(kind, pg_server) as db:
        await fill_outbox(db.sessions, hot + cold, per_chat)
        await sink.reset()
        if instances == 1:
            await run_limited(db.url, sink.url, seconds + 0.5)
        else:
            children = [
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bench.dispatch",
                    "--instance",
                    db.url,
                    sink.url,
                    str(seconds + 0.5),
                    cwd=ROOT,
                )
                for _ in range(instances)
            ]
            for child in children:
                if await child.wait():
                    raise RuntimeError("a dispatcher process failed")
    arrivals = await sink.arrivals()
    first = min(t for t, _ in arrivals)
    steady = [t for t, _ in arrivals if t < first + seconds]
    by_chat: dict[int, list[float]] = defaultdict(list)
    for t, chat in arrivals:
        by_chat[chat].append(t)
    return Limited(
        sustained=len(steady) / seconds,
        window_max=most_in_any_window([t for t, _ in arrivals]),
        chat_window_max=max(most_in_any_window(times) for times in by_chat.values()),
        sent=len(arrivals),
        seconds=seconds,
        hot_chat_rate=min(chat_rate(by_chat[chat], first + seconds) for chat in hot),
    )


def chat_rate(times: list[float], until: float) -> float:
    """Messages a second to one chat, from its first message to its last before `until`."""
    times = sorted(t for t in times if t < until)
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


# --- the report ----------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


async def measure_unlimited(
    sink: Sink,
    chats: list[int],
    per_chat: dict[int, int],
    pg_server: str | None,
    args: argparse.Namespace,
    rows: list[tuple[str, str, str, str]],
) -> int:
    """The throughput rows (limits off); returns the number of targets missed."""
    failures = 0
    await baseline(sink, chats[:50], dict.fromkeys(chats[:50], 4))  # warm up both ends
    base = await baseline(sink, chats, per_chat)
    rows.append(("baseline: bare aiohttp client", f"{base:,.0f} msg/s", "", ""))
    ptb = await baseline_ptb(sink, chats, per_chat, budget=5)
    rows.append(
        (
            "baseline: bare python-telegram-bot",
            f"{ptb:,.0f} msg/s",
            f"{ptb / base:.2f} of aiohttp (httpx inside)",
            "",
        )
    )
    runs = [("sqlite", "aiohttp")] + ([("postgresql", "aiohttp")] if pg_server else [])
    runs.append(("sqlite", "ptb"))
    for kind, transport_kind in runs:
        if transport_kind == "aiohttp":
            # The baseline again, just before: on a shared machine the load drifts, and
            # each ratio compares two measurements taken under the same conditions.
            base_now = await baseline(sink, chats, per_chat)
        rate, counts = await dispatch_unlimited(
            kind,
            pg_server,
            sink,
            chats,
            per_chat,
            transport_kind,
            budget=15 if transport_kind == "aiohttp" else 8,
        )
        clean = set(counts) <= {"sent", "queued"} and "failed" not in counts
        if transport_kind == "aiohttp":
            ok = rate >= 0.5 * base_now and counts == {"sent": args.messages}
            failures += not ok
            rows.append(
                (
                    f"dispatcher, limits off, {kind}, aiohttp transport",
                    f"{rate:,.0f} msg/s",
                    f"ratio {rate / base_now:.2f} to {base_now:,.0f} msg/s measured "
                    f"just before (>= 0.50)",
                    verdict(ok),
                )
            )
        else:
            # Reported, not judged: python-telegram-bot's own speed bounds this row.
            rows.append(
                (
                    f"dispatcher, limits off, {kind}, TelegramTransport",
                    f"{rate:,.0f} msg/s",
                    f"ratio {rate / base:.2f} to aiohttp, {rate / ptb:.2f} to bare "
                    f"PTB{'' if clean else f' {counts}'}",
                    "info",
                )
            )
    return failures


def report_limited(limited: Limited, how: str, rows: list[tuple[str, str, str, str]]) -> int:
    """The rows of one limited run; returns the number of targets missed."""
    checks = [
        (
            f"limits on, {how}: sustained rate",
            f"{limited.sustained:.1f} msg/s",
            f"over {limited.seconds:.0f} s (>= 29)",
            limited.sustained >= 29,
        ),
        (
            f"limits on, {how}: most in any 1 s window",
            str(limited.window_max),
            "(<= 30)",
            limited.window_max <= 30,
        ),
        (
            f"limits on, {how}: most to one chat in any 1 s",
            str(limited.chat_window_max),
            "(<= 1)",
            limited.chat_window_max <= 1,
        ),
        (
            f"limits on, {how}: busy chat rate",
            f"{limited.hot_chat_rate:.2f} msg/s",
            "the slowest of 5 chats with 20 queued each (0.9 to 1)",
            # With two instances too: a chat's next message is claimed with its
            # previous one's outcome, and takes the first shared slot at its time.
            0.9 <= limited.hot_chat_rate <= 1,
        ),
    ]
    for name, value, target, ok in checks:
        rows.append((name, value, target, verdict(ok)))
    return sum(not ok for *_, ok in checks)


@contextlib.contextmanager
def cpu_hog(on: bool):
    """With `on`, a process spinning on one core meanwhile (a busy machine)."""
    if not on:
        yield
        return
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        hog.terminate()
        hog.wait(timeout=5)


async def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING)
    chats = [100_000 + n for n in range(args.chats)]
    per_chat = {
        chat: args.messages // args.chats + (1 if n < args.messages % args.chats else 0)
        for n, chat in enumerate(chats)
    }
    pg_server = (
        None
        if args.no_postgres
        else os.environ.get("CONCORDER_BENCH_PG", "postgres@127.0.0.1:5432")
    )
    if pg_server and not await pg_reachable(pg_server):
        print(f"PostgreSQL at {pg_server} did not answer: measuring SQLite only")
        pg_server = None

    sink = Sink.start()
    rows: list[tuple[str, str, str, str]] = []
    failures = 0
    try:
        if not args.limited_only:
            failures += await measure_unlimited(sink, chats, per_chat, pg_server, args, rows)
        setups = [("sqlite", 1)] + ([("postgresql", 1), ("postgresql", 2)] if pg_server else [])
        if args.only_shared and pg_server:
            setups = [("postgresql", 2)]
        with cpu_hog(args.hog):
            for run in range(1, args.runs + 1):
                for kind, instances in setups:
                    limited = await dispatch_limited(sink, args.seconds, kind, pg_server, instances)
                    how = f"{kind}, {instances} process{'es' if instances > 1 else ''}"
                    if args.runs > 1:
                        how += f", run {run}"
                    failures += report_limited(limited, how, rows)
    finally:
        await sink.stop()

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"\n{args.messages:,} messages across {args.chats:,} chats, concurrency "
        f"{CONCURRENCY}, loopback Bot API sink in its own process; "
        f"{os.cpu_count()} CPUs, load average {load} at the end\n"
    )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(f"\n{'PASS' if failures == 0 else 'FAIL'}: {failures} target(s) missed")
    return 1 if failures else 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="how long to measure the limited rate"
    )
    parser.add_argument("--no-postgres", action="store_true", help="measure SQLite only")
    parser.add_argument(
        "--limited-only", action="store_true", help="skip the throughput rows (limits off)"
    )
    parser.add_argument(
        "--only-shared",
        action="store_true",
        help="limited runs with two PostgreSQL processes only",
    )
    parser.add_argument("--runs", type=int, default=1, help="repeat the limited runs")
    parser.add_argument(
        "--hog", action="store_true", help="keep one core busy during the limited runs"
    )
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--instance", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    bad = args.messages < 1 or args.chats < 1 or args.messages < args.chats or args.runs < 1
    if not args.sink and not args.instance and bad:
        parser.error("--messages, --chats and --runs must be positive, with messages >= chats")
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.sink:
        run_sink()
    elif arguments.instance:
        database, sink_address, duration = arguments.instance
        asyncio.run(run_limited(database, sink_address, float(duration)))
    else:
        sys.exit(asyncio.run(main(arguments)))
