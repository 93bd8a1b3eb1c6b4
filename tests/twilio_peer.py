"""Twilio peers for the SMS tests: Prism on Twilio's own OpenAPI spec, a recording hop in
front of it, a loopback server answering with Twilio's error bodies, and signed webhooks.

Prism validates requests against the spec but is stateless (it answers the spec example),
so `RecordingHop` keeps each request it forwards, unchanged, for the tests to read.
Test modules load the fixtures with `pytest_plugins = ["tests.twilio_peer"]`; the module
has no assertions of its own (PYTEST_DONT_REWRITE), so importing it first is fine.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from twilio.request_validator import RequestValidator

from bot.settings import Settings

REPO = Path(__file__).resolve().parent.parent
PEERS = REPO / "tests" / "peers"
SPEC_CANDIDATES = (
    PEERS / "node_modules/@twilio-alpha/mcp/twilio-oai/spec/json/twilio_api_v2010.json",
    REPO.parent / "shared/peers/twilio-oai/twilio_api_v2010.json",
)
PRISM = PEERS / "node_modules/.bin/prism"

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token-9f8e7d"
FROM_NUMBER = "+15005550006"


def twilio_settings(database_url: str, **extra: Any) -> Settings:
    values = dict(
        CONCORDER_DATABASE_URL=database_url,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_FROM_NUMBER=FROM_NUMBER,
    )
    values.update(extra)
    return Settings(**values, _env_file=None)


def sign(url: str, form: dict[str, str], token: str = AUTH_TOKEN) -> dict[str, str]:
    """The X-Twilio-Signature header Twilio would send for this URL and form."""
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, form)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def twilio_spec() -> Path:
    for path in SPEC_CANDIDATES:
        if path.is_file():
            return path
    pytest.fail(
        "Twilio's OpenAPI spec is missing: run `npm install` in tests/peers "
        "(package @twilio-alpha/mcp) or provide ../shared/peers/twilio-oai/",
        pytrace=False,
    )


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)
    except urllib.error.HTTPError:
        return True  # any HTTP answer (401 without credentials) means it is listening
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def prism():
    """Base URL of a Prism mock of Twilio's REST API, for the whole test session."""
    if not PRISM.exists():
        pytest.fail("Prism is missing: run `npm install` in tests/peers", pytrace=False)
    port = free_port()
    process = subprocess.Popen(
        [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), str(twilio_spec())],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while not _answers(f"{base}/2010-04-01/Accounts.json"):
            if process.poll() is not None:
                pytest.fail(f"Prism exited: {process.stderr.read().decode()[-500:]}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail("Prism did not start within 60 s", pytrace=False)
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Recorded:
    method: str
    path: str
    authorization: str | None
    content_type: str | None
    form: dict[str, list[str]]


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


async def _record(request: web.Request) -> Recorded:
    form = await request.post()
    return Recorded(
        request.method,
        request.path,
        request.headers.get("Authorization"),
        request.content_type,
        {k: form.getall(k) for k in form},
    )


@dataclass
class RecordingHop:
    """Forwards each request to Prism untouched and keeps a copy of what was sent."""

    target: str
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(await _record(request))
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("authorization", "content-type", "accept", "user-agent")
        }
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method, self.target + request.path_qs, data=body, headers=headers
            ) as answer,
        ):
            return web.Response(
                status=answer.status, body=await answer.read(), content_type=answer.content_type
            )


@pytest.fixture
async def recording_prism(prism):
    hop = RecordingHop(prism)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hop.handle)
    runner, hop.url = await _serve(app)
    yield hop
    await runner.cleanup()


@dataclass
class FakeAnswer:
    status: int
    body: dict[str, Any]


@dataclass
class TwilioLike:
    """A loopback server answering the way Twilio does, one queued answer per request."""

    answers: list[FakeAnswer] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""
    delay: float = 0.0  # seconds to wait before answering

    def error(self, status: int, code: int, message: str = "error") -> None:
        self.answers.append(
            FakeAnswer(
                status,
                {
                    "code": code,
                    "message": message,
                    "status": status,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}",
                },
            )
        )

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(await _record(request))
        await asyncio.sleep(self.delay)
        answer = self.answers.pop(0)
        return web.Response(
            status=answer.status, text=json.dumps(answer.body), content_type="application/json"
        )


@pytest.fixture
async def twilio_like():
    peer = TwilioLike()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", peer.handle)
    runner, peer.url = await _serve(app)
    yield peer
    await runner.cleanup()
