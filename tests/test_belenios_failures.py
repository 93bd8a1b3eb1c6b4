"""belenios-tool failing while a vote is encrypted: missing, exiting with an error, or
hanging past the vote's timeout. The webhook still answers 200 (the provider does not
resend), the voter is told plainly that nothing was cast and that their choice waits for
YES, nothing is recorded, a provider's retry of the same message changes nothing, and YES
once the tool works casts exactly one ballot, counted at the close."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.services.ballots import opening, records
from store.ballots import BallotRoll
from store.belenios import BeleniosBallot
from store.models import InboundMessage, OutboxMessage
from tests.ballot_world import messages, panel, voter
from tests.telegram_peer import bot_api_fixture  # noqa: F401  (fixture)
from tests.test_belenios import (  # noqa: F401  (fixtures)
    TRACKER,
    Phones,
    belenios_dir,
    belenios_tool,
    create,
    serve_phones,
    settings,
)

VOTE_TIMEOUT = 2.0
NOT_CAST = "has NOT been cast and nothing was recorded"

# What stands first on PATH as belenios-tool while the voter says YES.
BROKEN = {
    "exits with an error": "#!/bin/sh\necho 'E: cannot read the election' >&2\nexit 1\n",
    "hangs": "#!/bin/sh\nexec sleep 60\n",
    "is missing": None,
}


@pytest.fixture
async def phones(db, bot_api, aiohttp_client, belenios_dir):  # noqa: F811
    return await serve_phones(
        db, bot_api, aiohttp_client, belenios_dir, CONCORDER_BELENIOS_VOTE_TIMEOUT=str(VOTE_TIMEOUT)
    )


def break_the_tool(monkeypatch, tmp_path: Path, how: str) -> None:
    """PATH with a broken belenios-tool first, or with none at all."""
    script = BROKEN[how]
    broken = tmp_path / "broken-bin"
    broken.mkdir()
    if script is None:
        # Everything the service may run, but not belenios-tool.
        monkeypatch.setenv("PATH", str(broken))
        assert shutil.which("belenios-tool") is None
        return
    tool = broken / "belenios-tool"
    tool.write_text(script)
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{broken}{os.pathsep}{os.environ['PATH']}")


async def stored(db, v) -> dict:
    async with db.sessions() as session:
        ballots = await session.scalar(select(func.count()).select_from(BeleniosBallot))
        voted = await session.scalar(
            select(BallotRoll.voted).where(BallotRoll.participant_id == v.id)
        )
        inbound = (await session.execute(select(InboundMessage.text))).scalars().all()
        sent = await session.scalar(select(func.count()).select_from(OutboxMessage))
    return {"ballots": ballots, "voted": voted, "inbound": inbound, "sent": sent}


@pytest.mark.parametrize("channel", ["sms", "telegram"])
@pytest.mark.parametrize("how", list(BROKEN))
async def test_a_vote_the_tool_cannot_encrypt_is_not_cast_and_the_voter_is_told(
    relay, db, phones, tmp_path, monkeypatch, how, channel
):
    v = voter(1, channel)
    await panel(db.sessions, [v])
    await create(db)
    await opening.open_ballot(relay, "site")

    async def reply(word: str) -> None:
        if channel == "sms":
            await phones.sms(v, word)
        else:
            await phones.press(v, word)

    await reply("north")
    assert "You chose: North yard" in (await messages(db.sessions, v))[-1]

    with monkeypatch.context() as m:
        break_the_tool(m, tmp_path, how)
        await reply("yes")  # the webhook answers 200: the provider has nothing to resend
        told = await messages(db.sessions, v)
        assert NOT_CAST in told[-2] and "reply YES in a few minutes" in told[-2]
        assert "You chose: North yard" in told[-1] and "Cast this vote?" in told[-1]
        assert not TRACKER.search(told[-2] + told[-1])  # no tracker for a ballot not made
        after = await stored(db, v)
        assert after["ballots"] == 0 and after["voted"] is False
        assert after["inbound"][-1] == ""  # what was typed to vote is still not kept

        await phones.again()  # the provider delivers the same message once more
        assert await stored(db, v) == after

    await reply("yes")  # the tool works again: the choice that waited is cast
    last = (await messages(db.sessions, v))[-1]
    assert "Your vote is encrypted and cast" in last and TRACKER.search(last)
    after = await stored(db, v)
    assert after["ballots"] == 1 and after["voted"] is True

    closed = await records.close_ballot(relay, "site")
    assert closed.results["tally"]["details"]["counts"] == {"north": 1, "river": 0, "east": 0}
    assert closed.results["belenios"]["ballots_in_box"] == 1
