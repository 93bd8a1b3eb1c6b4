"""Respondents registered outside the chat (paper, call, web): checked by line and column,
imported once however often the file is, drawn beside the chat's registrations, and the
drawn with no contact listed for the organisers instead of messaged."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from bot.services import draw, respondents
from bot.services.draw import Respondent
from flows.assembly import load_assembly
from store import audit
from store.models import AuditEvent, Contact, OutboxMessage, Participant
from store.recruitment import CONFIRMED, REGISTERED, Consent, Invitation, PoolEntry, Selection
from store.respondents import OutsideRegistration
from tests.test_draw import ROOT, concorder, registered_pool_with_phones

ASSEMBLY = ROOT / "examples" / "citizens-jury" / "assembly.toml"
KNOWN = {"gender": {"woman", "man", "other"}, "age": {"16-29", "30-49", "50-64", "65+"}}

FILE = (
    "id,consent,consent_ref,gender,age,household,phone,email\n"
    "R1,paper,F-001,other,16-29,H-R1,,\n"  # no contact at all
    "R2,call,C-017,woman,30-49,H-R2,07700 900711,\n"
    "R3,web,W-099,man,50-64,,,r3@example.org\n"  # an e-mail only: still no one to message
    "R4,Form,F-002,woman,65+,H-R4,,\n"
)


def write(tmp_path, text, name="respondents.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_problem_is_named_by_line_and_column(tmp_path):
    path = write(
        tmp_path,
        "id,consent,consent_ref,gender,age,phone\n"
        "R1,paper,F-1,woman,90+,\n"  # line 2: an unknown value
        "R2,fax,,nonbinary,30-49,123\n"  # line 3: four problems
        ",web,W-3,man,,\n"  # line 4: no id; age may be blank (not a quota)
        "R1,web,W-4,man,16-29,\n",  # line 5: the id of line 2 again
    )
    parsed = respondents.parse_respondents(path, KNOWN, ["en"], required=["gender"])
    found = {(p.line, p.column): p.reason for p in parsed.problems}
    assert found[(2, "E 'age'")] == "'90+' is not a value of age (known: 16-29, 30-49, 50-64, 65+)"
    assert "'nonbinary' is not a value of gender" in found[(3, "D 'gender'")]
    assert "'fax': say how they registered: paper, call, web" in found[(3, "B 'consent'")]
    assert found[(3, "C 'consent_ref'")] == "empty; every row needs one"
    assert found[(3, "F 'phone'")] == "not a phone number"
    assert found[(4, "A 'id'")] == "empty; every row needs one"
    assert found[(5, "")] == "the same id as line 2"
    assert parsed.rows == [] and parsed.read == 4


def test_a_column_the_draw_does_not_know_or_a_missing_quota_is_refused(tmp_path):
    path = write(tmp_path, "id,consent,consent_ref,gender,shoe size\nR1,paper,F,man,9\n")
    with pytest.raises(respondents.RespondentsFileError, match="column E 'shoe size' is neither"):
        respondents.parse_respondents(path, KNOWN, ["en"], required=["gender"])
    path = write(tmp_path, "id,consent,consent_ref,age\nR1,paper,F,30-49\n")
    with pytest.raises(respondents.RespondentsFileError, match="quota category gender"):
        respondents.parse_respondents(path, KNOWN, ["en"], required=["gender"])


async def test_import_is_idempotent_and_joins_the_chat_registrations(db, tmp_path):
    assembly = load_assembly(ASSEMBLY)
    chat = [Respondent(f"P{i:05d}", f"H{i}", _answers(i)) for i in range(4)]
    await registered_pool_with_phones(db, chat)
    async with db.sessions.begin() as session:  # in the pool by letter, not registered
        session.add(Participant(id="PLETTER", language="en"))
        await session.flush()
        session.add(PoolEntry(participant_id="PLETTER", external_id="R4", attributes={}))
    rows = respondents.parse_respondents(
        write(tmp_path, FILE), KNOWN, ["en"], required=["gender"]
    ).rows
    first = await respondents.import_respondents(db.sessions, assembly, rows)
    assert first.counts == Counter({"created": 3, "from the pool": 1})
    assert first.without_contact == 3
    again = await respondents.import_respondents(db.sessions, assembly, rows)
    assert again.counts == Counter({"unchanged": 4})
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Participant)) == 8
        outside = await session.scalar(select(func.count()).select_from(OutsideRegistration))
        assert outside == 4
        consents = (await session.execute(select(Consent.channel, Consent.text_version))).all()
        assert sorted(consents) == [
            ("call", "call:C-017"),
            ("paper", "paper:F-001"),
            ("paper", "paper:F-002"),
            ("web", "web:W-099"),
        ]
        letter = await session.get(PoolEntry, (await _entry_id(session, "PLETTER")))
        assert letter.attributes == {"gender": "woman", "age": "65+"}
        assert (
            await session.execute(
                select(Invitation.status).where(Invitation.participant_id == "PLETTER")
            )
        ).scalar_one() == REGISTERED
        inp = await draw.draw_input(session, _rules())
        assert len(inp.respondents) == 8  # the chat's four and the file's four
        kinds = await session.execute(
            select(AuditEvent.kind, func.count()).group_by(AuditEvent.kind)
        )
        counted = dict(kinds.all())
        assert counted["respondent.registered_outside"] == 4  # the second import: none
        assert counted["respondents.imported"] == 2
        assert (await audit.verify(session)).ok

    # Someone who registered in the chat is not registered a second time from a file.
    chat_phone = write(
        tmp_path, "id,consent,consent_ref,gender,phone\nR9,call,C-9,man,+447700900001\n", "b.csv"
    )
    rows = respondents.parse_respondents(chat_phone, KNOWN, ["en"], required=["gender"]).rows
    with pytest.raises(respondents.ImportRefused, match="line 2: already registered in the chat"):
        await respondents.import_respondents(db.sessions, assembly, rows)


async def _entry_id(session, pid):
    return (
        await session.execute(select(PoolEntry.id).where(PoolEntry.participant_id == pid))
    ).scalar_one()


def _answers(i):
    return {"age": "30-49", "gender": ["woman", "man"][i % 2], "travel": "bus", "area": "north"}


def _rules():
    quotas = draw.quota_bounds({"gender": {"woman": 0.5, "man": 0.5}}, 4)
    return draw.DrawRules(quotas, 4, 0, False)


QUOTAS_TOML = """
panel_size = 4
reserve_size = 2

[quotas.gender]
woman = { min = 1, max = 2 }
man = { min = 1, max = 2 }
other = { min = 1, max = 1 }
"""


async def test_drawn_without_contact_are_listed_for_the_organisers_not_messaged(
    sqlite_db, tmp_path
):
    db = sqlite_db
    chat = [Respondent(f"P{i:05d}", f"H{i}", _answers(i)) for i in range(6)]
    await registered_pool_with_phones(db, chat)
    write(tmp_path, FILE)
    (tmp_path / "quotas.toml").write_text(QUOTAS_TOML)
    common = ["--quotas", "quotas.toml", "--assembly", str(ASSEMBLY)]

    code, out, err = await concorder(
        db, tmp_path, "respondents", "import", "respondents.csv", *common
    )
    assert code == 0, err
    assert "new, registered" in out
    # The only "other" is R1, on paper with no contact: the quota puts R1 on the panel.
    code, out, err = await concorder(db, tmp_path, "select", "--seed", "2027", *common)
    assert code == 0, err
    assert "10 registered respondents" in out
    code, out, err = await concorder(db, tmp_path, "notify-draw", "--assembly", str(ASSEMBLY))
    assert code == 0, err
    assert "selected, no contact: for the organisers" in out
    async with db.sessions() as session:
        r1 = (
            await session.execute(
                select(PoolEntry.participant_id).where(PoolEntry.external_id == "R1")
            )
        ).scalar_one()
        seat = (
            await session.execute(select(Selection).where(Selection.participant_id == r1))
        ).scalar_one()
        assert seat.status == "selected" and seat.notified_at is not None
        messaged = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.participant_id == r1)
        )
        assert messaged == 0
        # Everyone with a phone heard the outcome.
        phones = select(Contact.participant_id)
        told = await session.scalar(
            select(func.count(func.distinct(OutboxMessage.participant_id))).where(
                OutboxMessage.participant_id.in_(phones)
            )
        )
        assert told == 7

    code, out, err = await concorder(db, tmp_path, "respondents", "to-contact")
    assert code == 0, err
    assert r1 in out and "R1" in out and "paper" in out

    code, out, err = await concorder(db, tmp_path, "respondents", "answer", "R1", "--confirmed")
    assert code == 0, err
    assert f"{r1} (selected) is now confirmed" in out
    async with db.sessions() as session:
        seat = (
            await session.execute(select(Selection).where(Selection.participant_id == r1))
        ).scalar_one()
        assert seat.status == CONFIRMED

    code, out, err = await concorder(
        db, tmp_path, "respondents", "import", "respondents.csv", *common
    )
    assert code == 0, err
    assert "4 │ already imported, nothing new" in out


async def test_a_draw_short_of_respondents_points_to_the_import(sqlite_db, tmp_path):
    (tmp_path / "quotas.toml").write_text(QUOTAS_TOML)
    code, out, err = await concorder(
        sqlite_db,
        tmp_path,
        "select",
        "--seed",
        "1",
        "--dry-run",
        "--quotas",
        "quotas.toml",
        "--assembly",
        str(ASSEMBLY),
    )
    assert code == 1
    assert "Only 0 respondents for a panel of 4" in err
    assert "`concorder respondents import FILE`" in out
