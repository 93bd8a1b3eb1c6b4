"""A loopback provider for the benches: answers like the Telegram Bot API (any method) and like
Twilio's Messages.json, and remembers when each message arrived, on which channel, to whom
and what it said.

It runs in a child process (`python -m bench.provider_sink`), at a higher priority where
allowed, so that it does not share an event loop or a core's queue with what it measures:
an arrival time is when the message reached the provider.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time

import aiohttp
from aiohttp import web

# One arrival: [unix time, channel ("telegram" or "sms"), recipient, text].
Arrival = list


def serve() -> None:
    arrivals: list[tuple[float, str, str, str]] = []
    ids = itertools.count(1)

    async def bot_method(request: web.Request) -> web.Response:
        params = (
            await request.json()
            if request.content_type == "application/json"
            else dict(await request.post())
        )
        text = params.get("text", "")
        arrivals.append((time.time(), "telegram", str(params["chat_id"]), text))
        chat = {"id": int(params["chat_id"]), "type": "private"}
        result = {"message_id": next(ids), "date": int(time.time()), "chat": chat, "text": text}
        return web.json_response({"ok": True, "result": result})

    async def twilio_messages(request: web.Request) -> web.Response:
        form = await request.post()
        arrivals.append((time.time(), "sms", form.get("To", ""), form.get("Body", "")))
        sid = f"SM{next(ids):032x}"
        account = request.match_info["account"]
        return web.json_response(
            {
                "sid": sid,
                "account_sid": account,
                "to": form.get("To"),
                "from": form.get("From"),
                "body": form.get("Body"),
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
            },
            status=201,
        )

    async def stats(request: web.Request) -> web.Response:
        start = int(request.query.get("from", 0))
        return web.json_response({"count": len(arrivals), "arrivals": arrivals[start:]})

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", bot_method)
        app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", twilio_messages)
        app.router.add_get("/stats", stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    try:
        os.nice(-10)
    except OSError:  # not allowed: the figures are then only noisier
        pass
    asyncio.run(main())


class ProviderSink:
    """The sink as seen from a bench: its URL (for TELEGRAM_API_BASE_URL and
    TWILIO_API_BASE_URL) and what has arrived so far."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.provider_sink"], stdout=subprocess.PIPE, text=True
        )
        self.url = f"http://127.0.0.1:{int(self.process.stdout.readline())}"
        self.http: aiohttp.ClientSession | None = None
        self.seen = 0

    async def stats(self, start: int = 0) -> dict:
        self.http = self.http or aiohttp.ClientSession()
        async with self.http.get(f"{self.url}/stats?from={start}") as response:
            return await response.json()

    async def count(self) -> int:
        return (await self.stats(start=1 << 62))["count"]

    async def arrivals(self) -> list[Arrival]:
        """Every arrival since the last call."""
        found = (await self.stats(start=self.seen))["arrivals"]
        self.seen += len(found)
        return found

    async def arrivals_since(self, moment: float) -> list[Arrival]:
        """Every arrival at or after `moment` (unix time)."""
        return [a for a in (await self.stats())["arrivals"] if a[0] >= moment]

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()
        self.process.terminate()
        self.process.wait(timeout=5)


if __name__ == "__main__":
    serve()
