"""Telegram peers for the tests: the telegram-test-api emulator and a Bot API loopback server.

Import the fixtures by their function names (`telegram_emulator_fixture`, `bot_api_fixture`);
tests ask for them as `telegram_emulator` and `bot_api`.

The emulator (npm telegram-test-api 4.2.1, started by tests/peers/telegram_emulator.js) is a
real Bot API implementation with a user side of its own: a test writes as a person with
POST /sendMessage, /sendCommand or /sendCallback and reads what the bot sent with
/getUpdates. It cannot refuse calls, so 429, 403 and the webhook secret are tested against
`BotApiServer`, a small aiohttp server that answers like the Bot API and records each call.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from telegram.request import HTTPXRequest

PEERS = Path(__file__).parent / "peers"
_tokens = itertools.count(1)


class EmulatorRequest(HTTPXRequest):
    """HTTPXRequest that fixes telegram-test-api 4.2.1 replies python-telegram-bot 22.8
    cannot parse. Each rewrite, and nothing else:

    - getMe: the bot user lacks `is_bot` -> set it to true;
    - sendMessage: `date` is in milliseconds -> seconds;
    - editMessageText, editMessageReplyMarkup, answerCallbackQuery, setWebhook,
      deleteMessage: `result` is null where Telegram answers true -> true;
    - getUpdates: callback queries lack `chat_instance` -> a fixed value.
    """

    TRUE_RESULT = {
        "editMessageText",
        "editMessageReplyMarkup",
        "answerCallbackQuery",
        "setWebhook",
        "deleteMessage",
    }

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []  # the Bot API methods called, in order

    async def do_request(self, url: str, method: str, *args: Any, **kwargs: Any):
        code, payload = await super().do_request(url, method, *args, **kwargs)
        endpoint = url.rsplit("/", 1)[-1]
        self.calls.append(endpoint)
        try:
            body = json.loads(payload)
        except ValueError:
            return code, payload
        if not isinstance(body, dict) or not body.get("ok"):
            return code, payload
        result = body.get("result")
        if endpoint == "getMe" and isinstance(result, dict):
            result.setdefault("is_bot", True)
        elif endpoint == "sendMessage" and isinstance(result, dict):
            if result.get("date", 0) > 10**11:
                result["date"] //= 1000
        elif endpoint in self.TRUE_RESULT and result is None:
            body["result"] = True
        elif endpoint == "getUpdates" and isinstance(result, list):
            for update in result:
                query = update.get("callback_query")
                if isinstance(query, dict):
                    query.setdefault("chat_instance", "emulator")
        return code, json.dumps(body).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class TelegramEmulator:
    """A running telegram-test-api and its user side."""

    url: str
    process: subprocess.Popen

    def new_token(self) -> str:
        """A bot token of its own per test: the emulator keeps each bot's messages apart."""
        return f"{next(_tokens)}{os.getpid()}:test-{time.monotonic_ns()}"

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        async with aiohttp.ClientSession() as http, http.post(self.url + path, json=body) as r:
            r.raise_for_status()
            return (await r.json()).get("result")

    @staticmethod
    def person(user_id: int, language: str = "en") -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": "Test", "language_code": language}

    async def user_writes(
        self, token: str, chat_id: int, text: str, *, language: str = "en"
    ) -> None:
        """The person types `text` in their private chat with the bot."""
        message = {
            "botToken": token,
            "date": int(time.time()),
            "text": text,
            "from": self.person(chat_id, language),
            "chat": {"id": chat_id, "type": "private", "first_name": "Test"},
        }
        if text.startswith("/"):
            command = text.split(" ", 1)[0]
            message["entities"] = [{"offset": 0, "length": len(command), "type": "bot_command"}]
            await self._post("/sendCommand", message)
        else:
            await self._post("/sendMessage", message)

    async def user_presses(
        self,
        token: str,
        chat_id: int,
        bot_message: dict[str, Any],
        data: str,
        *,
        language: str = "en",
    ) -> None:
        """The person presses the inline button carrying `data` under `bot_message`."""
        message = {
            "message_id": bot_message["message_id"],
            "date": int(time.time()),
            "text": bot_message.get("text", ""),
            "chat": {"id": chat_id, "type": "private", "first_name": "Test"},
        }
        await self._post(
            "/sendCallback",
            {
                "botToken": token,
                "date": int(time.time()),
                "data": data,
                "from": self.person(chat_id, language),
                "message": message,
            },
        )

    async def user_reads(
        self, token: str, chat_id: int, *, count: int = 1, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Wait for at least `count` new messages from the bot in this chat; return them all."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(seen) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the bot sent {len(seen)} of {count} messages within {timeout} s: "
                    f"{[m.get('text') for m in seen]}"
                )
            items = await self._post("/getUpdates", {"token": token, "chatId": chat_id})
            for item in items or []:
                seen.append({**item["message"], "message_id": item["messageId"]})
            if len(seen) < count:
                await asyncio.sleep(0.1)
        return seen


@pytest.fixture(scope="session", name="telegram_emulator")
def telegram_emulator_fixture() -> TelegramEmulator:
    """telegram-test-api on a free loopback port, for the whole test session."""
    port = free_port()
    process = subprocess.Popen(
        ["node", str(PEERS / "telegram_emulator.js"), str(port)],
        cwd=PEERS,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 20
    line = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "ready on" in line or process.poll() is not None:
            break
    if "ready on" not in line:
        process.kill()
        pytest.fail(f"telegram-test-api did not start: {line.strip()!r}", pytrace=False)
    yield TelegramEmulator(f"http://127.0.0.1:{port}", process)
    stop(process, timeout=5)


def stop(process: subprocess.Popen, timeout: float) -> None:
    """Ask a child process to end; kill it if it has not within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class BotApiCall:
    method: str
    params: dict[str, Any]


@dataclass
class BotApiServer:
    """Answers /bot<token>/<method> like the Bot API; records every call; fails on request."""

    calls: list[BotApiCall] = field(default_factory=list)
    failures: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None
    _message_ids: itertools.count = field(default_factory=lambda: itertools.count(100))

    def fail(self, method: str, status: int, description: str, **parameters: Any) -> None:
        """Make the next call of `method` fail the way Telegram fails it."""
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        self.failures.setdefault(method, []).append((status, body))

    def called(self, method: str) -> list[dict[str, Any]]:
        return [c.params for c in self.calls if c.method == method]

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = dict(await request.post())
        self.calls.append(BotApiCall(method, params))
        if self.failures.get(method):
            status, body = self.failures[method].pop(0)
            return web.json_response(body, status=status)
        return web.json_response({"ok": True, "result": await self._result(method, params)})

    async def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {"id": 1, "is_bot": True, "first_name": "Relay", "username": "relay_bot"}
        if method == "sendMessage":
            return {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": {"id": int(params["chat_id"]), "type": "private"},
                "text": params.get("text", ""),
            }
        if method == "getUpdates":
            if not self.updates:
                await asyncio.sleep(0.05)
            pending, self.updates = self.updates, []
            return pending
        return True  # answerCallbackQuery, setWebhook, deleteWebhook

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture(name="bot_api")
async def bot_api_fixture() -> BotApiServer:
    server = BotApiServer()
    await server.start()
    yield server
    await server.stop()
