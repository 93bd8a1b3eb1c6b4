"""Thousands of generated inbound requests, as the outside world can send them, to the SMS
webhook (signed as Twilio signs), the Telegram webhook (with its secret) and the simulator
API: odd unicode, NULs, lone surrogates, long texts, missing, extra and wrongly typed fields,
deep JSON, repeated ids. Never a 5xx, the service keeps answering, and every request it
accepted is in the database afterwards.

The service runs as it does in production: real aiohttp servers on loopback (one relay with
Twilio and Telegram configured, one simulator, sharing the database) in a thread of their
own, and the test talks HTTP to them. One pair per database for the whole module keeps the
run short; CONCORDER_FUZZ_EXAMPLES (200 by default, per test and database) raises the number
of examples for a deeper search.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.bootstrap import create_app
from bot.web.app import SESSIONS
from store.db import upgrade
from store.models import InboundMessage
from tests.conftest import PG_SERVER, _pg_admin
from tests.twilio_peer import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, free_port, sign

EXAMPLES = int(os.environ.get("CONCORDER_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
SECRET = "fuzz-secret_42"
SMS = "/webhooks/twilio/sms"
TELEGRAM = "/webhooks/telegram"
SIMULATOR = "/simulator/api/messages"


# ---- the service, running in a thread of its own ---------------------------------------


@dataclass
class Service:
    """A relay (Twilio + Telegram) and a simulator on one database, served on loopback."""

    database_url: str
    relay_url: str = ""
    simulator_url: str = ""
    accepted: dict[str, set[str]] = field(default_factory=lambda: {"sms": set(), "telegram": set()})
    simulated: int = 0

    def start(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        relay_port, simulator_port = free_port(), free_port()
        self.relay_url = f"http://127.0.0.1:{relay_port}"
        self.simulator_url = f"http://127.0.0.1:{simulator_port}"
        closed = f"http://127.0.0.1:{free_port()}"  # callback answers fail fast, as offline
        relay = dict(
            CONCORDER_DATABASE_URL=self.database_url,
            CONCORDER_PUBLIC_URL=self.relay_url,
            TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            TWILIO_FROM_NUMBER=FROM_NUMBER,
            TELEGRAM_BOT_TOKEN="123:fuzz",
            TELEGRAM_WEBHOOK_SECRET=SECRET,
            TELEGRAM_API_BASE_URL=closed,
        )
        simulator = dict(CONCORDER_DATABASE_URL=self.database_url, CONCORDER_SIMULATOR="1")
        self.runners = self.call(self._serve([(relay, relay_port), (simulator, simulator_port)]))
        self.http = httpx.Client(timeout=60)

    async def _serve(self, apps: list[tuple[dict[str, str], int]]) -> list[web.AppRunner]:
        from bot.settings import Settings

        runners = []
        for values, port in apps:
            app = create_app(Settings(**values, _env_file=None), migrate=False, dispatch=False)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            runners.append(runner)
        return runners

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    def stop(self) -> None:
        self.http.close()
        for runner in self.runners:
            self.call(runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    def stored_ids(self, channel: str) -> set[str]:
        async def query() -> set[str]:
            async with self.runners[0].app[SESSIONS]() as session:
                return set(
                    (
                        await session.execute(
                            select(InboundMessage.provider_id).where(
                                InboundMessage.channel == channel
                            )
                        )
                    ).scalars()
                )

        return self.call(query())

    def simulated_count(self) -> int:
        async def query() -> int:
            async with self.runners[0].app[SESSIONS]() as session:
                return await session.scalar(
                    select(func.count())
                    .select_from(InboundMessage)
                    .where(InboundMessage.provider_id.like("sim-%"))
                )

        return self.call(query())


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(request, tmp_path_factory) -> Service:
    dropped = None
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("fuzz") / "concorder.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite+aiosqlite:///{path}"
    else:  # a database of its own: the rest of the suite truncates the shared one
        name = f"concorder_fuzz_{uuid.uuid4().hex[:10]}"
        _pg_admin(f'CREATE DATABASE "{name}"')
        url = dropped = f"postgresql+asyncpg://{PG_SERVER}/{name}"
        upgrade(url)
    running = Service(url)
    running.start()
    yield running
    running.stop()
    if dropped:
        _pg_admin(f'DROP DATABASE IF EXISTS "{dropped.rsplit("/", 1)[1]}" WITH (FORCE)')


# ---- what people and attackers send ------------------------------------------------------

ODD_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(
        st.characters(codec=None, categories=["Cs", "Cc", "Cf", "Zs", "So", "Mn"]), max_size=20
    ),  # surrogates, controls (NUL), joiners, emoji, combining marks
    st.sampled_from(
        [
            "STOP",
            "stop",
            "START",
            "HELP",
            "1",
            "2",
            "français",
            "\x00",
            "\U0001f5f3\ufe0f\U0001f44d",
            "\u202eevil",
            "a\u0301",
            "\ud800",
            "\udfff\ud800",
            "/start",
            "/start not-a-code",
            "UNSTOP",
            "",
        ]
    ),
    st.builds(
        lambda piece, times: piece * times, st.text(min_size=1, max_size=8), st.integers(250, 600)
    ),  # 2,000+ characters
)
# What a form can carry: any unicode but lone surrogates (UTF-8 cannot encode them).
FORM_TEXT = ODD_TEXT.map(lambda t: t.encode("utf-8", "replace").decode("utf-8"))
JUNK = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def mostly(good: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    """The good values three times out of four: enough accepted requests to check."""
    return st.one_of(good, good, good, bad)


EXTRA = st.dictionaries(st.text(min_size=1, max_size=10), JUNK, max_size=3)


def deep_json(depth: int) -> bytes:
    return b'{"update_id": 1, "message": ' + b"[" * depth + b"]" * depth + b"}"


# SMS: Twilio's form, sometimes missing, odd or repeated; always signed.
PHONES = st.sampled_from(
    [
        "+447911123456",
        "+447700900123",
        "+12005550123",
        "+999123456789",
        "12345",
        "ACME",
        "Caf\u00e9 Bar",
        "07911 123456",
    ]
)
SIDS = st.one_of(
    st.sampled_from([f"SM{n:032x}" for n in range(25)]), st.builds(lambda: f"SM{uuid.uuid4().hex}")
)
SMS_FORM = st.fixed_dictionaries(
    {"MessageSid": mostly(SIDS, FORM_TEXT), "From": mostly(PHONES, FORM_TEXT), "Body": FORM_TEXT},
    optional={
        "SmsSid": SIDS | FORM_TEXT,
        "To": st.just(FROM_NUMBER),
        "AccountSid": st.just(ACCOUNT_SID),
        "NumMedia": st.sampled_from(["0", "x"]),
        "FromCountry": FORM_TEXT,
    },
).flatmap(
    lambda form: st.dictionaries(st.text(min_size=1, max_size=10), FORM_TEXT, max_size=2).map(
        lambda extra: {**extra, **form}
    )
)
# A field left out now and then, as a broken or future client would.
SMS_FORM = st.tuples(
    SMS_FORM, st.sets(st.sampled_from(["MessageSid", "From", "Body"]), max_size=1)
).map(lambda pair: {k: v for k, v in pair[0].items() if k not in pair[1]})

# Telegram: updates shaped like Telegram's, with any field wrong or missing.
IDS = mostly(st.integers(1, 60), st.integers(-(2**64), 2**64) | JUNK)
CHAT_IDS = mostly(st.integers(100, 110), st.integers(-(2**70), 2**70) | JUNK)
USER = st.fixed_dictionaries(
    {"id": CHAT_IDS, "is_bot": st.booleans(), "first_name": ODD_TEXT},
    optional={"language_code": mostly(st.sampled_from(["fr", "es", "en-GB", "xx"]), JUNK)},
)
CHAT = st.fixed_dictionaries(
    {"id": CHAT_IDS, "type": st.sampled_from(["private", "private", "group", "channel"])},
    optional={"first_name": ODD_TEXT},
)
MESSAGE = st.fixed_dictionaries(
    {
        "message_id": st.integers(1, 10**6),
        "date": st.integers(0, 2**31),
        "chat": CHAT,
        "from": USER,
        "text": mostly(ODD_TEXT, JUNK),
    },
    optional={"entities": JUNK, "extra": EXTRA},
)
CALLBACK = st.fixed_dictionaries(
    {
        "id": mostly(st.text(max_size=10), JUNK),
        "from": USER,
        "chat_instance": st.text(max_size=5),
        "data": mostly(st.sampled_from(["lang:fr", "1", "consent:yes"]) | ODD_TEXT, JUNK),
    },
    optional={"message": MESSAGE},
)
UPDATE = st.one_of(
    st.fixed_dictionaries({"update_id": IDS, "message": mostly(MESSAGE, JUNK)}),
    st.fixed_dictionaries({"update_id": IDS, "callback_query": mostly(CALLBACK, JUNK)}),
    st.fixed_dictionaries(
        {"update_id": IDS},
        optional={
            "message": MESSAGE,
            "callback_query": CALLBACK,
            "edited_message": MESSAGE,
            "my_chat_member": JUNK,
        },
    ),
).flatmap(lambda update: EXTRA.map(lambda extra: {**extra, **update}))
TELEGRAM_BODY = st.one_of(
    UPDATE.map(lambda u: json.dumps(u).encode()),  # ensure_ascii: lone surrogates escaped
    UPDATE.map(lambda u: json.dumps(u).encode()),
    st.integers(1000, 120_000).map(deep_json),
    st.binary(max_size=64),
    st.just(b'{"update_id": ' + b"9" * 5000 + b"}"),
)

# The simulator: what its page and `concorder simulate` post, and what they should not.
SIM_PEOPLE = st.one_of(
    st.tuples(st.just("sms"), st.sampled_from(["+447700900555", "+447911123456"])),
    st.tuples(st.just("telegram"), st.sampled_from(["4242", "4343"])),
    st.tuples(
        mostly(st.sampled_from(["sms", "telegram"]), JUNK),
        st.sampled_from(["12345", "ACME", "", "-100", "\u00b2", "\u0663"]) | JUNK,
    ),
)
SIM_MESSAGE = st.builds(
    lambda person, text, extra: {"channel": person[0], "address": person[1], "text": text, **extra},
    SIM_PEOPLE,
    mostly(ODD_TEXT.filter(str.strip), ODD_TEXT | JUNK),
    st.fixed_dictionaries(
        {},
        optional={
            "button": ODD_TEXT | JUNK,
            "language": st.sampled_from(["fr", "es", "de"]) | JUNK,
            "extra": JUNK,
        },
    ),
)
SIM_BODY = st.one_of(
    SIM_MESSAGE.map(lambda m: json.dumps(m).encode()),
    SIM_MESSAGE.map(lambda m: json.dumps(m).encode()),
    st.integers(1000, 120_000).map(deep_json),
    st.binary(max_size=64),
    JUNK.map(lambda j: json.dumps(j).encode()),
)


def sms_provider_id(form: dict[str, str]) -> str:
    return form.get("MessageSid") or form.get("SmsSid") or ""


def telegram_stores(update: Any) -> bool:
    """Whether a 200 for this update means a message was taken (not an ignored kind)."""
    if not isinstance(update, dict):
        return False
    message = update.get("message")
    if message:
        return message["chat"]["type"] == "private"
    query = update.get("callback_query")
    if not query:
        return False
    inner = query.get("message")
    return not inner or inner["chat"]["type"] == "private"


# ---- the properties ----------------------------------------------------------------------


def test_the_sms_webhook_answers_every_signed_form_and_keeps_what_it_accepts(service):
    url = service.relay_url + SMS

    @FUZZ
    @given(form=SMS_FORM)
    @example(form={"MessageSid": "SM" + "e" * 32, "From": "ACME", "Body": "nul\x00 \U0001f600"})
    @example(form={"MessageSid": "SM" + "f" * 32, "From": "+447700900123", "Body": "x" * 2400})
    def run(form: dict[str, str]) -> None:
        response = service.http.post(url, data=form, headers=sign(url, form))
        assert response.status_code < 500, (response.status_code, response.text)
        if response.status_code == 200:
            service.accepted["sms"].add(sms_provider_id(form))

    run()
    assert service.accepted["sms"], "no generated form was accepted: the generator is off"
    assert service.accepted["sms"] <= service.stored_ids("sms")
    assert_still_answering(service)


def test_the_telegram_webhook_answers_every_body_and_keeps_what_it_accepts(service):
    url = service.relay_url + TELEGRAM
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}

    @FUZZ
    @given(body=TELEGRAM_BODY)
    @example(
        body=rb'{"update_id": 9999, "message": {"message_id": 1, "date": 0, "chat": '
        rb'{"id": 105, "type": "private"}, "text": "a\u0000\ud800b"}}'
    )
    def run(body: bytes) -> None:
        response = service.http.post(url, content=body, headers=headers)
        assert response.status_code < 500, (response.status_code, response.text)
        if response.status_code == 200 and telegram_stores(update := json.loads(body)):
            service.accepted["telegram"].add(f"tg:{update['update_id']}")
        elif response.status_code == 400:
            assert response.json()["error"]

    run()
    assert service.accepted["telegram"], "no generated update was accepted"
    assert service.accepted["telegram"] <= service.stored_ids("telegram")
    assert_still_answering(service)


def test_the_simulator_answers_every_body_and_keeps_what_it_accepts(service):
    url = service.simulator_url + SIMULATOR
    before = service.simulated_count()
    accepted = 0

    @FUZZ
    @given(body=SIM_BODY)
    @example(body=rb'{"channel": "sms", "address": "+447700900555", "text": "\udfff\u0000"}')
    def run(body: bytes) -> None:
        nonlocal accepted
        response = service.http.post(
            url, content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code < 500, (response.status_code, response.text)
        if response.status_code == 202:
            accepted += 1
        else:
            refusals.append(response.json()["error"][:40])

    refusals: list[str] = []
    run()
    assert accepted, f"no generated message was accepted: {sorted(set(refusals))}"
    assert service.simulated_count() - before == accepted
    assert_still_answering(service)


def assert_still_answering(service: Service) -> None:
    """After all that, a plain message from a new person is still taken and answered."""
    assert service.http.get(service.relay_url + "/healthz").status_code == 200
    form = {"MessageSid": f"SM{uuid.uuid4().hex}", "From": "+447911123999", "Body": "Hello"}
    url = service.relay_url + SMS
    assert service.http.post(url, data=form, headers=sign(url, form)).status_code == 200
    assert form["MessageSid"] in service.stored_ids("sms")
