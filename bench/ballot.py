"""Benchmark: 1,000 voters vote within a minute through the webhooks, then the ballot closes.

    .venv/bin/python -m bench.ballot [--voters 1000] [--concurrency 32] [--duplicates 0.1]
                                     [--no-postgres]

A confirmed panel of `--voters` (half on SMS, half on Telegram) is asked a single-choice
question (`ballot open`); then each voter sends their choice and YES through the service's
own webhooks (signed Twilio SMS, Telegram updates with the webhook secret), `--concurrency`
voters at once, each voter's two messages in order; a share of the YES messages is
delivered twice (a provider's retry: same MessageSid or update_id). The same requests go to
a bare aiohttp handler first: the baseline of the same run. Then the ballot closes, timed
whole (links destroyed, votes rewritten shuffled, counted, published, vacuumed) against the
counting alone on the same votes. Before the ballot opens, the same people each send two
ordinary messages (HELP) to the same server: what a turn costs without a vote.

Checked: every voter's vote counted once (turnout and ballots = voters), no 5xx, all within
one minute, and the receipts list verifies: each voter's receipt code (from the message
they were sent) is in the published list with the choice they made.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sys
import time
from urllib.parse import urlencode

from bench.databases import Database, pg_reachable
from bench.inbound import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_URL,
    SECRET,
    SMS_PATH,
    TELEGRAM_PATH,
    Request,
    Result,
    Server,
    line,
    server_settings,
)

BALLOT = """
[[ballots]]
id = "bench"
title = { en = "Recommendation 7" }
question = { en = "Which should come first?" }
method = "single"
options = [
  { key = "bus", label = { en = "More buses" } },
  { key = "bike", label = { en = "Safe bike lanes" } },
  { key = "walk", label = { en = "Wider pavements" } },
]
"""
OPTIONS = ["bus", "bike", "walk"]
CODE = re.compile(r"receipt code is ([2-9A-Z]{4})-([2-9A-Z]{4})")


def address(n: int) -> tuple[str, str]:
    return ("sms", f"+4477009{n:05d}") if n % 2 else ("telegram", str(6_000_000 + n))


async def setup(db, voters: int) -> None:
    """The panel, and the ballot stored (a draft)."""
    import tempfile

    from bot.services.ballots import records
    from flows.ballot_spec import load_ballots
    from store.models import Contact, Participant
    from store.recruitment import CONFIRMED, Selection

    async with db.sessions.begin() as session:
        for n in range(voters):
            pid = f"PB{n:08d}"
            session.add(Participant(id=pid, language="en", state={}))
            channel, where = address(n)
            session.add(
                Contact(participant_id=pid, channel=channel, address=where, sms_consent=True)
            )
            session.add(Selection(participant_id=pid, draw_id="bench", status=CONFIRMED))
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as file:
        file.write(BALLOT)
        file.flush()
        ballots = load_ballots(file.name, ["en"])
    async with db.sessions.begin() as session:
        await records.create(session, ballots, source="file")


async def open_ballot(db) -> None:
    """Everyone asked, through the service's own code."""
    from bot.bootstrap import build
    from bot.services.ballots import opening

    await opening.open_ballot(build(server_settings(db.url), sessions=db.sessions), "bench")


def sms(n: int, text: str, sid: int) -> Request:
    from twilio.request_validator import RequestValidator

    params = {
        "MessageSid": f"SM{sid:032x}",
        "AccountSid": ACCOUNT_SID,
        "From": address(n)[1],
        "To": "+447700900001",
        "Body": text,
        "NumMedia": "0",
    }
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + SMS_PATH, params)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
    return SMS_PATH, urlencode(params).encode(), headers


def telegram(n: int, text: str, update_id: int) -> Request:
    chat = int(address(n)[1])
    body = {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1764547200,
            "text": text,
            "from": {"id": chat, "is_bot": False, "first_name": "V", "language_code": "en"},
            "chat": {"id": chat, "type": "private"},
        },
    }
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}
    return TELEGRAM_PATH, json.dumps(body).encode(), headers


def ordinary(voters: int) -> list[list[Request]]:
    """The same people each sending two ordinary messages (HELP), before the ballot opens:
    the cost of a turn without a vote, on the same server in the same run."""
    plans = []
    for n in range(voters):
        make = sms if address(n)[0] == "sms" else telegram
        base = 10_000_000 + 2 * n
        plans.append([make(n, "HELP", base + 1), make(n, "HELP", base + 2)])
    return plans


def ballots_of(voters: int, duplicates: float, seed: int = 7) -> tuple[list, dict[int, str]]:
    """Per voter, their requests in order (choice, YES, perhaps YES again), and the choice."""
    rng = random.Random(seed)
    choices, plans = {}, []
    for n in range(voters):
        option = rng.randrange(len(OPTIONS))
        choices[n] = OPTIONS[option]
        make = sms if address(n)[0] == "sms" else telegram
        vote, yes = make(n, str(option + 1), 2 * n + 1), make(n, "YES", 2 * n + 2)
        plans.append([vote, yes, *([yes] if rng.random() < duplicates else [])])
    rng.shuffle(plans)
    return plans, choices


async def drive(server: Server, plans: list[list[Request]], concurrency: int) -> Result:
    import aiohttp

    jobs = list(plans)
    latencies: list[float] = []
    errors = refused = 0

    async def worker(http) -> None:
        nonlocal errors, refused
        while jobs:
            for path, body, headers in jobs.pop():
                started = time.perf_counter()
                async with http.post(server.url + path, data=body, headers=headers) as response:
                    await response.read()
                latencies.append(time.perf_counter() - started)
                errors += response.status >= 500
                refused += 300 <= response.status < 500

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Result(sum(len(p) for p in plans), elapsed, latencies, errors, refused)


async def receipts(db) -> dict[int, str]:
    """Each voter's receipt code, from the message they were sent (still queued: the
    service ran without its dispatcher, so the close has not blanked it)."""
    from sqlalchemy import select

    from store.models import OutboxMessage

    found = {}
    async with db.sessions() as session:
        rows = await session.execute(select(OutboxMessage.participant_id, OutboxMessage.text))
        for pid, text in rows:
            if match := CODE.search(text):
                found.setdefault(int(pid[2:]), []).append(match[1] + match[2])
    return found


async def close_and_count(db) -> tuple[float, float, dict]:
    from bot.bootstrap import build
    from bot.services.ballots import records
    from bot.services.ballots.counting import count
    from bot.services.ballots.voting import count_options, count_params
    from store.ballots import BallotVote

    relay = build(server_settings(db.url), sessions=db.sessions)
    started = time.perf_counter()
    closed = await records.close_ballot(relay, "bench")
    whole = time.perf_counter() - started
    async with db.sessions() as session:
        from sqlalchemy import select

        votes = (
            await session.execute(select(BallotVote.choice).where(BallotVote.status == "counted"))
        ).scalars()
        votes = list(votes)
    definition = {"method": "single", "options": [{"key": k} for k in OPTIONS]}
    started = time.perf_counter()
    count("single", count_options("bench", definition), votes, **count_params(definition))
    alone = time.perf_counter() - started
    return whole, alone, closed.results


async def measure(kind: str, pg_server: str | None, args: argparse.Namespace) -> bool:
    plans, choices = ballots_of(args.voters, args.duplicates)
    bare = Server.start(None)
    try:
        bare_result = await drive(bare, plans, args.concurrency)
    finally:
        bare.stop()
    async with Database(kind, pg_server) as db:
        await setup(db, args.voters)
        server = Server.start(db.url)
        try:
            plain = await drive(server, ordinary(args.voters), args.concurrency)
            started = time.perf_counter()
            await open_ballot(db)
            opening = time.perf_counter() - started
            result = await drive(server, plans, args.concurrency)
        finally:
            server.stop()
        codes = await receipts(db)
        whole, alone, results = await close_and_count(db)
    published = {t: (c, s) for t, c, s in results["trackers"]}
    once = [n for n in range(args.voters) if len(codes.get(n, [])) == 1]
    verified = [n for n in once if published.get(codes[n][0]) == (choices[n], "counted")]
    tally = results["tally"]
    print(
        f"{kind}: {args.voters} voters (half SMS, half Telegram), {result.count} webhook "
        f"requests ({result.count - 2 * args.voters} delivered twice), {args.concurrency} at once"
    )
    print(line("bare handler", bare_result))
    print(line("service, two HELPs each", plain, bare_result))
    print(line("service, voting", result, bare_result))
    print(f"  opening (roll fixed, {args.voters} voters asked) {opening:.1f} s")
    print(f"  all votes in {result.seconds:.1f} s")
    print(
        f"  turnout {results['voted']} of {results['voters']}; ballots counted "
        f"{tally['ballots']}; receipts: {len(once)} voters got exactly one, "
        f"{len(verified)} found in the published list with their choice"
    )
    print(
        f"  close (unlink, shuffle, count, publish, vacuum) {whole * 1000:.0f} ms; "
        f"counting alone {alone * 1000:.1f} ms"
    )
    ok = (
        result.errors == 0
        and result.seconds < 60
        and results["voted"] == tally["ballots"] == len(verified) == args.voters
        and len(published) == args.voters
    )
    print(f"  every vote counted once, no 5xx, within a minute, receipts verify: {ok}")
    return ok


async def main(args: argparse.Namespace) -> int:
    pg_server = (
        None
        if args.no_postgres
        else os.environ.get("CONCORDER_BENCH_PG", "postgres@127.0.0.1:5432")
    )
    if pg_server and not await pg_reachable(pg_server):
        print(f"PostgreSQL at {pg_server} did not answer: measuring SQLite only")
        pg_server = None
    kinds = ["sqlite"] + (["postgresql"] if pg_server else [])
    results = [await measure(kind, pg_server, args) for kind in kinds]
    return 0 if all(results) else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voters", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duplicates", type=float, default=0.1)
    parser.add_argument("--no-postgres", action="store_true", help="measure SQLite only")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
