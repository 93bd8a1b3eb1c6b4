"""Registration with nothing to ask: no empty "Your answers:" summary to confirm; the
person is registered as soon as they consent."""

from __future__ import annotations

import pytest

from bot.bootstrap import build
from bot.services import recruitment
from store.recruitment import REGISTERED
from tests.test_recruitment_flows import invitation_of, outbox_of, say

PHONE = "+447700900131"


async def invite(db, settings, assembly, tmp_path, row: str, header: str):
    pool = tmp_path / "pool.csv"
    pool.write_text(f"{header}\n{row}\n")
    parsed = recruitment.parse_pool(pool, assembly)
    assert not parsed.bad, parsed.bad
    await recruitment.import_pool(db.sessions, assembly, parsed.rows)
    await recruitment.send_invitations(
        db.sessions, settings, assembly, "RiversideJuryBot", letters_path=tmp_path / "l.csv"
    )
    return build(settings, assembly=assembly, sessions=db.sessions)


@pytest.mark.parametrize("why", ["no questions", "the pool knew every answer"])
async def test_nothing_to_ask_registers_without_an_empty_summary(
    db, settings, assembly, tmp_path, why
):
    if why == "no questions":
        assembly = assembly.model_copy(update={"questions": []})
        relay = await invite(
            db, settings, assembly, tmp_path, f"{PHONE},en,H1", "phone,language,household"
        )
    else:
        relay = await invite(
            db,
            settings,
            assembly,
            tmp_path,
            f"{PHONE},en,H1,30-49,bus,woman",
            "phone,language,household,age,travel,gender",
        )
    assert "Yes, tell me more" in (await outbox_of(db, PHONE))[0]
    await say(db, relay, PHONE, "1")
    replies = await say(db, relay, PHONE, "I agree")
    assert replies == [
        "Thank you, you are registered for Riverside Citizens' Jury on Transport. If you are "
        "drawn we will write to you."
    ], replies
    assert (await invitation_of(db, PHONE)).status == REGISTERED
    # Waiting for the draw as anyone registered does.
    later = await say(db, relay, PHONE, "hello")
    assert "We will write to you after the draw" in later[-1]
