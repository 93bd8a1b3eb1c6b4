"""Properties of the conversation, whatever members write:

- no phone number, Telegram id, e-mail address, @username or link of any member reaches
  another member (the scrubbing alone, on many inputs; then the whole service, end to end,
  on a real SQLite database: relays, digests, REPEAT);
- nothing a member wrote is lost from the contributions: every message written while the
  prompt is open is stored once, word for word, and relayed by the close (held back over
  the fair share or not), unless a facilitator hid it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import string
import uuid
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.bootstrap import build
from bot.services import deliberation
from bot.services.turns import storable
from bot.settings import Settings
from flows.deliberation import MEMBER_WORDS
from flows.deliberation_scrub import scrub
from flows.keywords import HELP_WORDS, LANGUAGE_WORDS, OPT_IN_WORDS, OPT_OUT_WORDS
from flows.text import fold
from store.db import make_engine, sessionmaker
from store.deliberation import Contribution, TablePrompt
from store.models import OutboxMessage
from tests.conftest import EXAMPLE_ASSEMBLY
from tests.deliberation_world import START, seat_table

PLAIN = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=40,
)
WORDS = st.text(alphabet=string.ascii_letters + " ,.!?'éàñ", max_size=30)


def phone_formats(e164: str) -> list[str]:
    """How a person might write their number: whole, national, spaced, dotted, dashed."""
    national = "0" + e164[3:]
    pairs = " ".join(national[i : i + 2] for i in range(0, len(national), 2))
    return [
        e164,
        e164[:3] + " " + e164[3:7] + " " + e164[7:],
        "00" + e164[1:],
        national,
        national[:5] + " " + national[5:],
        pairs,
        national[:5] + "." + national[5:8] + "." + national[8:],
        national[:5] + "-" + national[5:],
        "(" + national[:5] + ") " + national[5:],
        " ".join(national),
    ]


def addresses_of(n: int) -> dict[str, list[str]]:
    e164 = f"+4477009{n:05d}"
    chat = str(5880000000 + n)
    handle = f"member_handle_{n}"
    return {
        "phone": phone_formats(e164),
        "telegram": [chat, " ".join(chat[i : i + 3] for i in range(0, 10, 3))],
        "handle": [f"@{handle}", handle, f"t.me/{handle}", f"https://t.me/{handle}"],
        "email": [f"{handle}@example.org", f"{handle} at example dot org"],
    }


def secrets_of(n: int) -> list[str]:
    """What must never be readable in another member's message: the number's last seven
    digits, the chat id, the handle."""
    return [f"7009{n:05d}"[-7:], str(5880000000 + n), f"member_handle_{n}"]


def leaked(text: str, secret: str) -> bool:
    if secret.isdigit():
        runs = re.findall(r"\d[\d\s().\-/+]*", text)
        return any(secret in re.sub(r"\D", "", run) for run in runs)
    return secret.casefold() in text.casefold()


@st.composite
def writing(draw, members: range = range(1, 7)):
    """A message around some member's address, in some format."""
    n = draw(st.sampled_from(list(members)))
    kind = draw(st.sampled_from(["phone", "telegram", "handle", "email"]))
    address = draw(st.sampled_from(addresses_of(n)[kind]))
    return n, draw(WORDS) + " " + address + " " + draw(WORDS)


@settings(max_examples=300, deadline=None)
@given(writing(), PLAIN)
def test_scrubbing_leaves_no_address(written, tail):
    n, text = written
    known = [str(5880000000 + n), f"member_handle_{n}", f"+4477009{n:05d}"]
    out, removed = scrub(text + tail, "[removed]", known)
    assert removed >= 1
    for secret in secrets_of(n):
        assert not leaked(out.replace(tail, ""), secret), (text, out)


NOT_A_WORD = (
    MEMBER_WORDS | HELP_WORDS | OPT_OUT_WORDS | OPT_IN_WORDS | set(LANGUAGE_WORDS)
    | {"withdraw", "retirer", "retirarme", "retiro", "mydata", "mesdonnees", "misdatos"}
)  # fmt: skip


@st.composite
def table_talk(draw):
    """Who writes what, in order: ordinary words, addresses, odd characters; sometimes
    PASS or REPEAT; sometimes a facilitator hides the last message."""
    steps = []
    for _ in range(draw(st.integers(4, 18))):
        letter = draw(st.sampled_from("ABCDEF"))
        choice = draw(st.integers(0, 9))
        if choice == 0:
            steps.append((letter, "PASS"))
        elif choice == 1:
            steps.append((letter, "REPEAT"))
        elif choice == 2:
            steps.append(("!", "hide"))
        else:
            _n, text = draw(writing())
            extra = draw(PLAIN)
            message = f"{text} {extra}" if choice % 2 else extra or "ok"
            if fold(message) in NOT_A_WORD or not message.strip():
                message = "Idea: " + message
            steps.append((letter, message))
    return steps


SEATS = [("ABCDEF"[i], "sms" if i % 2 == 0 else "telegram", "en") for i in range(6)]


async def _play(url: str, steps) -> None:
    engine = make_engine(url)
    try:
        relay = build(
            Settings(CONCORDER_DATABASE_URL=url, _env_file=None),
            assembly=__import__("flows.assembly", fromlist=["x"]).load_assembly(
                EXAMPLE_ASSEMBLY / "assembly.toml"
            ),
            sessions=sessionmaker(engine),
        )
        w = await seat_table(relay, SEATS, telegram_ids=True)
        now = START
        await deliberation.open_prompt(relay, round_no=1, prompt="bus-priorities", now=now)
        written: list[tuple[str, str]] = []
        hidden: set[int] = set()
        for letter, text in steps:
            now += timedelta(seconds=15)
            if letter == "!":
                async with relay.sessions() as session:
                    last = (
                        await session.execute(
                            select(Contribution.id)
                            .where(Contribution.kind == "message", Contribution.hidden_at.is_(None))
                            .order_by(Contribution.id.desc())
                        )
                    ).first()
                if last is not None:
                    await deliberation.hide(relay, last[0], now=now)
                    hidden.add(last[0])
                continue
            async with relay.sessions() as session:
                open_now = (await session.execute(select(TablePrompt.status))).scalar() != "closed"
            await w.send(letter, text, now)
            await deliberation.run_due(relay, now=now)
            if open_now and text not in ("PASS", "REPEAT"):  # a closed prompt takes nothing
                written.append((w.member(letter).participant_id, storable(text)[:1600]))
        await deliberation.run_due(relay, now=now + timedelta(minutes=30))  # the close
        async with relay.sessions() as session:
            stored = (
                (
                    await session.execute(
                        select(Contribution)
                        .where(Contribution.kind == "message")
                        .order_by(Contribution.id)
                    )
                )
                .scalars()
                .all()
            )
            rows = (await session.execute(select(OutboxMessage))).scalars().all()
        # Nothing lost: each message once, word for word, in order; relayed unless hidden.
        assert [(c.participant_id, c.text) for c in stored] == written
        assert all(c.relayed_at is not None or c.id in hidden for c in stored)
        # No address crosses: what each member received holds no other member's.
        numbers = {m.participant_id: n for n, m in enumerate(w.members.values(), start=1)}
        for row in rows:
            reader = numbers.get(row.participant_id)
            if reader is None:
                continue  # the organiser, reading a REPORT
            for n in numbers.values():
                if n == reader:
                    continue
                for secret in secrets_of(n):
                    assert not leaked(row.text, secret), (row.text, secret)
    finally:
        await engine.dispose()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(table_talk())
def test_no_address_crosses_and_nothing_is_lost(sqlite_template, tmp_path, steps):
    path = tmp_path / f"property-{uuid.uuid4().hex}.db"  # never an earlier example's WAL
    shutil.copy(sqlite_template, path)
    asyncio.run(_play(f"sqlite+aiosqlite:///{path}", steps))
