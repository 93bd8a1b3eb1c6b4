"""Benchmark: inbound webhooks (Telegram updates, signed Twilio SMS) -> the service -> database.

    .venv/bin/python -m bench.inbound [--updates 3000] [--people 2000] [--sms 1000]
                                      [--concurrency 32] [--no-postgres] [--assembly FILE]

The service (create_app, webhook mode, no dispatcher) runs in a child process, as does the
baseline: a bare aiohttp handler that only parses the body (JSON or form) and answers. The
same client (this process, `--concurrency` requests at once) drives both with the same
requests. Telegram: each person's first message (a new person), and later messages from
people already known (replies that queue an answer). SMS: the same, signed with twilio's
RequestValidator. Per run: updates/s, p50/p99 latency, 5xx count, the rate against the
baseline, and after the load how long until every audit event is linked and the chain
verifies. Targets: PostgreSQL >= 600 updates/s, p99 < 250 ms, no 5xx; SQLite >= 300/s, with
or without `--assembly` (a real service runs with one: its facts are then read per group).
The service handles webhooks in groups (bot/services/batch.py) and answers each only once
its group has committed, so a reply is queued before its webhook's answer: the HTTP latency
is also the time from webhook to reply queued. The run prints how many transactions the
messages took (the service's /metrics) and the machine's load average before and after.

SQLite always; PostgreSQL too when it answers (CONCORDER_BENCH_PG, default
postgres@127.0.0.1:5432), in a scratch database dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from bench.databases import Database, pg_reachable

TOKEN = "123456:bench"
SECRET = "bench-secret-0123456789"
AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
ACCOUNT_SID = "AC" + "0" * 32
PUBLIC_URL = "https://relay.example.org"
TELEGRAM_PATH = "/webhooks/telegram"
SMS_PATH = "/webhooks/twilio/sms"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- the servers (child processes) ---------------------------------------------------------


def server_settings(url: str):
    from bot.settings import Settings

    return Settings(
        CONCORDER_DATABASE_URL=url,
        CONCORDER_PUBLIC_URL=PUBLIC_URL,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_WEBHOOK_SECRET=SECRET,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_FROM_NUMBER="+447700900001",
        CONCORDER_ASSEMBLY=os.environ.get("CONCORDER_BENCH_ASSEMBLY"),
        _env_file=None,
    )


def run_server(url: str | None, workers: int = 1) -> None:
    """The service on `url` (in `workers` processes, as `concorder serve --workers`), or
    with no URL the bare baseline handler; prints its port."""
    import logging

    from bot.web.serve_checks import listen
    from bot.web.workers import serve_in_workers

    logging.basicConfig(level=logging.WARNING)

    async def bare_telegram(request: web.Request) -> web.Response:
        json.loads(await request.read())
        return web.json_response({"ok": True})

    async def bare_sms(request: web.Request) -> web.Response:
        await request.post()
        return web.Response(text="<Response/>", content_type="text/xml")

    def application() -> web.Application:
        if url is None:
            app = web.Application()
            app.router.add_post(TELEGRAM_PATH, bare_telegram)
            app.router.add_post(SMS_PATH, bare_sms)
            return app
        from bot.bootstrap import create_app

        return create_app(server_settings(url), migrate=False, dispatch=False)

    sockets = listen("127.0.0.1", 0)
    print(sockets[0].getsockname()[1], flush=True)

    def serve() -> None:
        web.run_app(application(), sock=sockets, print=None, access_log=None)

    if workers == 1:
        serve()
    else:
        serve_in_workers(workers, serve)


@dataclass
class Server:
    url: str
    process: subprocess.Popen

    @classmethod
    def start(cls, database_url: str | None, workers: int = 1) -> Server:
        # As a module from the repository root, as the bench itself runs: it imports bench.
        command = [sys.executable, "-m", "bench.inbound", "--serve", database_url or "bare"]
        command += ["--workers", str(workers)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        port = int(process.stdout.readline())
        return cls(f"http://127.0.0.1:{port}", process)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


# --- the load ------------------------------------------------------------------------------


Request = tuple[str, bytes, dict[str, str]]


def interleave(people: int, total: int) -> list[tuple[int, str]]:
    """(person, text): everyone's first message, and after a while messages from people
    already known, mixed in."""
    later = total - people
    order: list[tuple[int, str]] = []
    lag = max(1, people // 4)
    for n in range(people):
        order.append((n, "Hello"))
        if n >= lag and n - lag < later:
            order.append((n - lag, "HELP"))
    for n in range(people - lag, later):
        order.append((n % people, "HELP"))
    return order[:total]


def telegram_requests(people: int, total: int, base: int) -> list[Request]:
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}
    requests = []
    for number, (person, text) in enumerate(interleave(people, total), start=1):
        chat = base + person
        body = {
            "update_id": base + number,
            "message": {
                "message_id": number,
                "date": 1764547200,
                "text": text,
                "from": {"id": chat, "is_bot": False, "first_name": "B", "language_code": "en"},
                "chat": {"id": chat, "type": "private"},
            },
        }
        requests.append((TELEGRAM_PATH, json.dumps(body).encode(), headers))
    return requests


def sms_requests(people: int, total: int, base: int) -> list[Request]:
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(AUTH_TOKEN)
    requests = []
    for number, (person, text) in enumerate(interleave(people, total), start=1):
        params = {
            "MessageSid": f"SM{base + number:032x}",
            "AccountSid": ACCOUNT_SID,
            "From": f"+4477009{base // 1000 + person:05d}",
            "To": "+447700900001",
            "Body": text,
            "NumMedia": "0",
        }
        signature = validator.compute_signature(PUBLIC_URL + SMS_PATH, params)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        }
        requests.append((SMS_PATH, urlencode(params).encode(), headers))
    return requests


@dataclass
class Result:
    count: int
    seconds: float
    latencies: list[float]
    errors: int  # 5xx
    refused: int  # other non-2xx
    cpu: tuple[float, float, float]  # seconds of CPU: the server, PostgreSQL, the load

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time these processes have used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue  # a backend that ended
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def children_of(parent: int) -> list[int]:
    """The processes `parent` started (the service's workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rpartition(")")[2].split()[1]) == parent:
                        found.append(int(entry))
            except OSError:
                continue
    return found


def postgres_pids() -> list[int]:
    """Every PostgreSQL server process on this machine (backends come and go)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as comm:
                    if comm.read().strip() == "postgres":
                        found.append(int(entry))
            except OSError:
                continue
    return found


async def drive(server: Server, requests: list[Request], concurrency: int) -> Result:
    pids = [server.process.pid, *children_of(server.process.pid)]
    server_cpu, pg_cpu = cpu_seconds(pids), cpu_seconds(postgres_pids())
    own_cpu = time.process_time()
    jobs = list(reversed(requests))
    latencies: list[float] = []
    errors = refused = 0

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal errors, refused
        while jobs:
            path, body, headers = jobs.pop()
            started = time.perf_counter()
            async with http.post(server.url + path, data=body, headers=headers) as response:
                await response.read()
            latencies.append(time.perf_counter() - started)
            if response.status >= 500:
                errors += 1
            elif response.status >= 300:
                refused += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    cpu = (
        cpu_seconds(pids) - server_cpu,
        cpu_seconds(postgres_pids()) - pg_cpu,
        time.process_time() - own_cpu,
    )
    return Result(len(requests), elapsed, latencies, errors, refused, cpu)


async def until_linked(db, timeout: float = 60.0) -> tuple[float, int, bool, int]:
    """Seconds until no audit event waits to be linked; then the chain verified."""
    from sqlalchemy import select

    from store import audit
    from store.models import AuditHead

    started = time.perf_counter()
    waiting = getattr(audit, "pending", None)  # None: a version that links as it writes
    while waiting and time.perf_counter() - started < timeout:
        async with db.sessions() as session:
            if await waiting(session) == 0:
                break
        await asyncio.sleep(0.05)
    waited = time.perf_counter() - started
    async with db.sessions() as session:
        await session.execute(select(AuditHead))  # verify without linking itself
        result = await audit.verify(session)
    return waited, result.checked, result.ok, getattr(result, "pending", 0)


async def batches(server: Server) -> tuple[float, float, float]:
    """(committed groups, messages in them, groups split) as the service's /metrics counts."""
    async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as response:
        text = await response.text()
    found = {"batches": 0.0, "messages": 0.0, "split": 0.0}
    for row in text.splitlines():
        if row.startswith('concorder_inbound_batches_total{outcome="committed"}'):
            found["batches"] = float(row.split()[-1])
        elif row.startswith('concorder_inbound_batches_total{outcome="split"}'):
            found["split"] = float(row.split()[-1])
        elif row.startswith("concorder_inbound_batched_messages_total "):
            found["messages"] = float(row.split()[-1])
    return found["batches"], found["messages"], found["split"]


def load() -> str:
    return "load average " + " ".join(f"{n:.2f}" for n in os.getloadavg())


async def outbox_count(db) -> int:
    from sqlalchemy import func, select

    from store.models import OutboxMessage

    async with db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(OutboxMessage))


def line(label: str, result: Result, baseline: Result | None = None) -> str:
    ratio = f"  ({result.rate / baseline.rate:.1%} of the bare handler)" if baseline else ""
    return (
        f"  {label:<26} {result.rate:7.0f}/s  p50 {result.percentile(50):6.1f} ms  "
        f"p99 {result.percentile(99):6.1f} ms  5xx {result.errors}"
        f"{f'  refused {result.refused}' if result.refused else ''}{ratio}"
    )


def cpu_line(result: Result) -> str:
    """CPU a message costs each side: unlike the rate, the same on a busy machine."""
    server, database, load = (seconds / result.count * 1000 for seconds in result.cpu)
    cores = os.cpu_count() or 1
    ceiling = cores / (server + database + load) * 1000
    return (
        f"    CPU a message: service {server:.2f} ms, PostgreSQL {database:.2f} ms, load "
        f"{load:.2f} ms; {cores} CPUs can carry at most {ceiling:.0f}/s of it"
    )


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


async def measure(kind: str, pg_server: str | None, args: argparse.Namespace) -> bool:
    telegram = telegram_requests(args.people, args.updates, 7_000_000)
    sms = sms_requests(max(1, args.sms * 2 // 3), args.sms, 1_000_000)
    warm_tg = telegram_requests(50, 60, 9_000_000)
    started_load = load()
    bare = Server.start(None)
    try:
        await drive(bare, warm_tg, args.concurrency)
        bare_tg = await drive(bare, telegram, args.concurrency)
        bare_sms = await drive(bare, sms, args.concurrency)
    finally:
        bare.stop()
    async with Database(kind, pg_server) as db:
        workers = args.workers if kind == "postgresql" else 1
        server = Server.start(db.url, workers)
        try:
            await drive(server, warm_tg, args.concurrency)
            tg = await drive(server, telegram, args.concurrency)
            text = await drive(server, sms, args.concurrency)
            grouped, grouped_messages, split = await batches(server)
            waited, checked, chain_ok, left = await until_linked(db)
            queued = await outbox_count(db)
        finally:
            server.stop()
    print(
        f"{kind}{f' ({workers} worker processes)' if workers > 1 else ''}: "
        f"{len(telegram)} Telegram updates from {args.people} people, "
        f"{len(sms)} SMS, {args.concurrency} at once ({started_load} before, {load()} after)"
    )
    print(line("bare handler, Telegram", bare_tg))
    print(line("service, Telegram", tg, bare_tg))
    print(cpu_line(tg))
    print(line("bare handler, SMS", bare_sms))
    print(line("service, SMS", text, bare_sms))
    print(cpu_line(text))
    print(
        f"  {queued} answers queued; audit chain {'verifies' if chain_ok else 'BROKEN'}: "
        f"{checked} events, all linked {waited:.2f} s after the load"
        f"{f' ({left} still waiting)' if left else ''}"
    )
    mean = grouped_messages / grouped if grouped else 0.0
    print(
        f"  each reply queued before its webhook's answer (time to reply queued <= HTTP "
        f"latency); {grouped_messages:.0f} messages in {grouped:.0f} transactions "
        f"(mean {mean:.1f} a transaction){f'; {split:.0f} split' if split else ''}"
    )
    return targets(kind, tg, text, chain_ok)


def targets(kind: str, tg: Result, text: Result, chain_ok: bool) -> bool:
    """Each target, met or not; True when all are."""
    rate, p99 = (600, 250) if kind == "postgresql" else (300, None)
    checks = [(f">= {rate}/s", min(tg.rate, text.rate) >= rate)]
    if p99 is not None:
        checks.append((f"p99 < {p99} ms", max(tg.percentile(99), text.percentile(99)) < p99))
    checks.append(("no 5xx", tg.errors == text.errors == 0))
    checks.append(("audit chain verifies", chain_ok))
    print("  targets: " + "; ".join(f"{name} {verdict(ok)}" for name, ok in checks))
    return all(ok for _, ok in checks)


async def main(args: argparse.Namespace) -> int:
    pg_server = (
        None
        if args.no_postgres
        else os.environ.get("CONCORDER_BENCH_PG", "postgres@127.0.0.1:5432")
    )
    if pg_server and not await pg_reachable(pg_server):
        print(f"PostgreSQL at {pg_server} did not answer: measuring SQLite only")
        pg_server = None
    kinds = ([] if args.no_sqlite else ["sqlite"]) + (["postgresql"] if pg_server else [])
    results = [await measure(kind, pg_server, args) for kind in kinds]
    return 0 if all(results) else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--sms", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--no-postgres", action="store_true", help="measure SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="measure PostgreSQL only")
    parser.add_argument(
        "--assembly",
        help="serve with this assembly file (its facts are read for each group of messages)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="serve PostgreSQL in this many processes (concorder serve --workers)",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.assembly:  # the servers are child processes: they read it from here
        os.environ["CONCORDER_BENCH_ASSEMBLY"] = os.path.abspath(arguments.assembly)
    if arguments.serve:
        run_server(None if arguments.serve == "bare" else arguments.serve, arguments.workers)
    else:
        sys.exit(asyncio.run(main(arguments)))
