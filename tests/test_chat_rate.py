"""A busy chat gets its per-chat rate, counted from each message's hand-over: neither a slow
answer from the channel nor the other recipients queued for the overall limit stretch its
interval (Telegram allows about one message a second per chat)."""

from __future__ import annotations

import asyncio
import statistics
from datetime import UTC, datetime

import pytest

from bot.delivery.dispatcher import Dispatcher
from tests.test_dispatcher import RecordingTransport, person, queue, rows

HOT = "17000"


@pytest.mark.parametrize(
    ("chat_rate", "overall_rate", "others", "answer"),
    [
        # A slow channel: the next message goes an interval after the previous one was
        # handed over, not an interval after the channel answered.
        (2.0, 0.0, 0, 0.3),
        # Five seconds of other chats filling Telegram's overall limit: the busy chat's next
        # message does not wait behind all of them once its interval is over.
        (1.0, 30.0, 150, 0.01),
    ],
    ids=["slow-answers", "queue-for-the-overall-limit"],
)
async def test_a_busy_chat_is_sent_at_its_rate(
    db, settings, chat_rate, overall_rate, others, answer
):
    settings = settings.model_copy(
        update={"telegram_chat_rate": chat_rate, "telegram_rate": overall_rate}
    )
    hot = await person(db, telegram=HOT)
    now = datetime.now(UTC)
    mine = [f"h{n}" for n in range(6)]
    await queue(db, settings, hot, "telegram", *mine, now=now)
    for n in range(others):
        other = await person(db, telegram=str(17_100 + n))
        await queue(db, settings, other, "telegram", f"o{n}", now=now)
    transport = RecordingTransport(delay=lambda message: answer)
    worker = Dispatcher(
        db.sessions, {"telegram": transport}, settings, concurrency=32, poll_interval=0.02
    )

    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(30):
            while len(transport.sent) < others + len(mine):
                await asyncio.sleep(0.02)
    finally:
        worker.stop()
        await task

    handed_over = transport.times[HOT]
    gaps = [b - a for a, b in zip(handed_over, handed_over[1:], strict=False)]
    interval = 1 / chat_rate
    assert transport.texts(HOT) == mine
    assert min(gaps) >= interval - 0.002, gaps  # never faster than the chat's rate
    # At the rate, give or take a wake-up on a busy machine: well under interval + answer
    # (a slow channel stretching it), and never behind the queue (seconds late).
    slack = max(answer / 2, interval * 0.3)
    assert statistics.median(gaps) < interval + slack, gaps
    assert max(gaps) < interval * 2, gaps
    assert {r.status for r in await rows(db)} == {"sent"}
