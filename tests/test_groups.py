"""`concorder groups` on a real database (SQLite and PostgreSQL): assign records the run,
seats and audit event (a dry run writes nothing), refuses a second allocation without
--replace, verifies, and fails verification after a tampered record; moves and pins are
honoured and audited; each member is told only their own seat and their table-mates'
letters, in their language."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from bot.services.groups.notify import seat_message
from flows.i18n import translator
from store.draw_records import DrawRun
from store.groups import CURRENT, REPLACED, GroupRun, GroupSeat
from store.models import AuditEvent, Contact, OutboxMessage, Participant
from store.recruitment import (
    CONFIRMED,
    REGISTERED,
    RESERVE,
    SELECTED,
    Invitation,
    PoolEntry,
    Selection,
)
from tests.test_draw import concorder

AGES = ["16-29", "30-44", "45-64", "65+"]
GENDERS = ["woman", "man"]
AREAS = ["north", "south", "centre"]


def person(i: int) -> dict:
    return {
        "id": f"P{i:05d}",
        "language": "fr" if i % 3 == 0 else "en",
        "phone": f"+4477009{i:05d}",
        "telegram": str(7000000 + i),
        "handle": f"handle{i}",
        "ref": f"row-{i}",
        "attributes": {
            "age": AGES[i % 4],
            "gender": GENDERS[(i // 2) % 2],
            "area": AREAS[(i * 7) % 3],
        },
    }


PEOPLE = [person(i) for i in range(1, 33)]  # 30 confirmed, one selected, one on the reserve
STATUS = {31: SELECTED, 32: RESERVE}


async def confirmed_panel(db) -> None:
    """A drawn panel, as `select` and the confirmations leave it."""
    async with db.sessions.begin() as session:
        for n, p in enumerate(PEOPLE, start=1):
            session.add(Participant(id=p["id"], language=p["language"]))
            await session.flush()
            session.add(
                PoolEntry(
                    participant_id=p["id"],
                    external_id=p["ref"],
                    telegram_handle=p["handle"],
                    household_id=f"H{n}",
                    attributes={"area": p["attributes"]["area"]},
                )
            )
            session.add(
                Invitation(
                    participant_id=p["id"],
                    code_hash=f"{n:064d}",
                    channel="sms",
                    language=p["language"],
                    status=REGISTERED,
                )
            )
            channel, address = ("sms", p["phone"]) if n % 2 else ("telegram", p["telegram"])
            session.add(
                Contact(participant_id=p["id"], channel=channel, address=address, sms_consent=True)
            )
            session.add(
                Selection(participant_id=p["id"], draw_id="D1", status=STATUS.get(n, CONFIRMED))
            )
        session.add(
            DrawRun(
                draw_id="D1",
                kind="select",
                status="done",
                seed="1",
                algorithm="legacy",
                library_version="test",
                input_sha256="0" * 64,
                payload={
                    "input": {
                        "quotas": {"age": {}, "gender": {}, "area": {}},
                        "respondents": [
                            {"id": p["id"], "household": "H", "attributes": p["attributes"]}
                            for p in PEOPLE
                        ],
                    }
                },
                result={},
            )
        )


async def rows(db, model, *where):
    async with db.sessions() as session:
        return list((await session.execute(select(model).where(*where))).scalars())


async def seats(db) -> dict[tuple[int, str], tuple[int, str]]:
    found = await rows(db, GroupSeat)
    return {(s.round, s.participant_id): (s.table_no, s.letter) for s in found}


async def test_assign_records_verifies_moves_and_shows(db, tmp_path):
    await confirmed_panel(db)
    assign = ["groups", "assign", "--size", "6", "--rounds", "2", "--seed", "7"]

    code, out, err = await concorder(db, tmp_path, *assign, "--dry-run")
    assert code == 0, err
    assert "30 confirmed members; 6 tables" in out and "languages kept together" in out
    assert "best of 100 shuffles" in out and "Round 2" in out and "Dry run" in out
    assert await rows(db, GroupRun) == [] and await rows(db, GroupSeat) == []
    assert await rows(db, AuditEvent, AuditEvent.kind.like("groups.%")) == []

    code, out, err = await concorder(db, tmp_path, *assign, "--pin", "P00004:2")
    assert code == 0, err
    assert "recorded (audit event" in out
    seated = await seats(db)
    assert len(seated) == 60  # 30 confirmed, two rounds; the selected and the reserve not
    assert {pid for _, pid in seated} == {p["id"] for p in PEOPLE[:30]}
    assert seated[(1, "P00004")][0] == 2 and seated[(2, "P00004")][0] == 2
    language = {p["id"]: p["language"] for p in PEOPLE}
    for r in (1, 2):
        tables: dict[int, set[str]] = {}
        for (rr, pid), (table, _) in seated.items():
            if rr == r:
                tables.setdefault(table, set()).add(language[pid])
        assert all(len(spoken) == 1 for spoken in tables.values())
    (event,) = await rows(db, AuditEvent, AuditEvent.kind == "groups.assigned")
    text = json.dumps(event.data)
    assert event.data["seed"] == "7" and event.data["members"] == 30 and event.data["pins"] == 1
    assert not any(p["phone"] in text or p["handle"] in text or p["ref"] in text for p in PEOPLE)

    code, out, err = await concorder(db, tmp_path, *assign)
    assert code == 1 and "already allocated" in err and "--replace" in err
    assert "Traceback" not in out + err
    code, out, err = await concorder(db, tmp_path, *assign, "--dry-run")
    assert code == 0 and "already allocated" in out and "Dry run" in out

    code, out, err = await concorder(db, tmp_path, "groups", "assign", "--verify")
    assert code == 0, err
    assert "same tables" in out

    before = seated[(1, "P00005")]
    target = 1 if before[0] != 1 else 2
    move = ["groups", "move", "P00005", "--round", "1", "--table", str(target)]
    code, out, err = await concorder(db, tmp_path, *move, "--dry-run")
    assert code == 0, err
    assert "Would move P00005" in out and (await seats(db))[(1, "P00005")] == before
    code, out, err = await concorder(db, tmp_path, *move)
    assert code == 0, err
    after = (await seats(db))[(1, "P00005")]
    there = sum(1 for (r, _), (t, _) in seated.items() if r == 1 and t == target)
    assert there == 5 and after == (target, "F")  # the first free letter at a table of 5
    (moved,) = await rows(db, AuditEvent, AuditEvent.kind == "groups.moved")
    assert moved.participant_id == "P00005" and moved.data["to"] == target

    code, out, err = await concorder(db, tmp_path, "groups", "assign", "--verify")
    assert code == 0, err  # a recorded move is part of the allocation

    code, out, err = await concorder(db, tmp_path, "groups", "show", "--round", "1")
    assert code == 0, err
    assert "Round 1" in out and "Round 2" not in out and "F P00005" in out
    assert "1 move(s) since" in out and "gender: " in out

    # P00005 speaks English; tables 5 and 6 are the French speakers'.
    code, out, err = await concorder(
        db, tmp_path, "groups", "move", "P00005", "--round", "2", "--table", "6", "--dry-run"
    )
    assert code == 0 and "P00005 speaks en; table 6 speaks fr" in out

    for args, message in [
        (["groups", "move", "P00005", "--round", "3", "--table", "1"], "rounds 1-2"),
        (["groups", "move", "P00005", "--round", "1", "--table", "9"], "tables 1-6"),
        (["groups", "move", "P00031", "--round", "1", "--table", "1"], "no seat"),
        (["groups", "show", "--round", "5"], "rounds 1-2"),
        ([*assign, "--replace", "--pin", "P00004"], "PARTICIPANT:TABLE"),
        ([*assign, "--replace", "--pin", "P00004:9"], "tables are 1-6"),
        (["groups", "assign", "--size", "6"], "--seed"),
    ]:
        code, out, err = await concorder(db, tmp_path, *args)
        assert code != 0 and message in err, (args, out, err)
        assert "Traceback" not in out + err

    code, out, err = await concorder(db, tmp_path, *assign[:-1], "8", "--replace")
    assert code == 0, err
    assert "replaced" in out
    runs = {r.run_id: r.status for r in await rows(db, GroupRun)}
    assert sorted(runs.values()) == [CURRENT, REPLACED]
    assert len(await rows(db, GroupSeat)) == 60


async def test_verify_fails_after_a_tampered_record(db, tmp_path):
    await confirmed_panel(db)
    code, out, err = await concorder(
        db, tmp_path, "groups", "assign", "--size", "6", "--rounds", "2", "--seed", "x"
    )
    assert code == 0, err
    code, out, err = await concorder(db, tmp_path, "groups", "assign", "--verify")
    assert code == 0, err

    # A seat changed behind the record's back.
    async with db.sessions.begin() as session:
        seat = (
            await session.execute(
                select(GroupSeat).where(GroupSeat.round == 2, GroupSeat.participant_id == "P00001")
            )
        ).scalar_one()
        seat.letter = "Q"
    code, out, err = await concorder(db, tmp_path, "groups", "assign", "--verify")
    assert code == 1
    assert "round 2, P00001" in err and "seated table" in err and "as Q" in err
    async with db.sessions.begin() as session:
        seat = (
            await session.execute(
                select(GroupSeat).where(GroupSeat.round == 2, GroupSeat.participant_id == "P00001")
            )
        ).scalar_one()
        seat.letter = (await _recorded(session))[(2, "P00001")][1]
    code, out, err = await concorder(db, tmp_path, "groups", "assign", "--verify")
    assert code == 0, err

    # The recorded tables rewritten (two members swapped): the re-run and the audit disagree.
    async with db.sessions.begin() as session:
        run = (await session.execute(select(GroupRun))).scalar_one()
        tables = [[list(t) for t in per_round] for per_round in run.result["tables"]]
        tables[0][0][0], tables[0][1][0] = tables[0][1][0], tables[0][0][0]
        run.result = {**run.result, "tables": tables}
    code, out, err = await concorder(db, tmp_path, "groups", "assign", "--verify")
    assert code == 1
    assert "tables_sha256 does not match the audit trail" in err
    assert "the re-run gives other tables" in err

    # The recorded input altered (someone's language): the audit trail says so.
    async with db.sessions.begin() as session:
        run = (await session.execute(select(GroupRun))).scalar_one()
        members = [dict(m) for m in run.payload["members"]]
        members[0]["attributes"] = {**members[0]["attributes"], "age": "65+"}
        run.payload = {**run.payload, "members": members}
    code, out, err = await concorder(db, tmp_path, "groups", "assign", "--verify")
    assert code == 1 and "input_sha256 does not match the audit trail" in err


async def _recorded(session):
    from bot.services.groups.records import apply_moves

    run = (await session.execute(select(GroupRun))).scalar_one()
    return apply_moves(run.result["tables"], run.moves)


async def test_each_member_is_told_their_seat_in_their_language_and_nothing_else(db, tmp_path):
    await confirmed_panel(db)
    code, out, err = await concorder(
        db, tmp_path, "groups", "assign", "--size", "6", "--rounds", "2", "--seed", "11"
    )
    assert code == 0, err

    code, out, err = await concorder(db, tmp_path, "groups", "notify", "--round", "1", "--dry-run")
    assert code == 0, err
    assert "Dry run: 30 message(s) would be queued" in out
    assert "Round 1: you are Member" in out and "Tour 1 : vous êtes le membre" in out
    assert await rows(db, OutboxMessage) == []
    assert all(s.notified_at is None for s in await rows(db, GroupSeat))

    code, out, err = await concorder(db, tmp_path, "groups", "notify", "--round", "1")
    assert code == 0, err
    assert "30 message(s) queued" in out
    sent = {m.participant_id: m for m in await rows(db, OutboxMessage)}
    assert len(sent) == 30 and all(m.kind == "groups" for m in sent.values())
    seated = await seats(db)
    for pid, message in sent.items():
        table, mine = seated[(1, pid)]
        others = sorted(
            letter for (r, other), (t, letter) in seated.items() if r == 1 and t == table
        )
        others.remove(mine)
        language = "fr" if int(pid[1:]) % 3 == 0 else "en"
        assert message.text == seat_message(translator(language), 1, table, mine, others)
        # Nothing about anyone: no number, chat id, handle, pool reference or pseudonym.
        for p in PEOPLE:
            for secret in (p["phone"], p["telegram"], p["handle"], p["ref"], p["id"]):
                assert secret not in message.text
    example = next(m.text for pid, m in sent.items() if pid == "P00003")  # French
    assert example.startswith("Tour 1 : vous êtes le membre ") and " de la table " in example
    assert " et " in example  # "avec A, B, C, D et E"
    english = sent["P00001"].text
    assert english.startswith("Round 1: you are Member ") and " and " in english
    (told,) = await rows(db, AuditEvent, AuditEvent.kind == "groups.notified")
    assert told.data == {"run": told.data["run"], "round": 1, "people": 30}

    code, out, err = await concorder(db, tmp_path, "groups", "notify", "--round", "1")
    assert code == 0 and "0 message(s) queued" in out

    # A move: both tables of that round are told again, nobody else.
    table = seated[(1, "P00001")][0]
    target = 1 if table != 1 else 2
    code, out, err = await concorder(
        db, tmp_path, "groups", "move", "P00001", "--round", "1", "--table", str(target)
    )
    assert code == 0, err
    code, out, err = await concorder(db, tmp_path, "groups", "notify", "--round", "1")
    again = sum(1 for (r, _), (t, _) in seated.items() if r == 1 and t in (table, target))
    assert code == 0 and f"{again} message(s) queued" in out

    # Round 2, not told yet; meanwhile one member left the panel and one replied STOP.
    async with db.sessions.begin() as session:
        left = (
            await session.execute(select(Selection).where(Selection.participant_id == "P00002"))
        ).scalar_one()
        left.status = "declined"
        stopped = await session.get(Participant, "P00006")
        stopped.opted_out = True
    code, out, err = await concorder(db, tmp_path, "groups", "notify")
    assert code == 0 and "28 message(s) queued" in out
    assert "no longer on the panel): P00002/2" in out and "opted out): P00006/2" in out


def test_the_seat_message_in_every_language():
    expected = {
        "en": "Round 1: you are Member C in table 4 with A, B, D, E, and F.",
        "fr": "Tour 1 : vous êtes le membre C de la table 4, avec A, B, D, E et F.",
        "es": "Ronda 1: usted es el miembro C de la mesa 4, con A, B, D, E y F.",
    }
    for language, text in expected.items():
        assert seat_message(translator(language), 1, 4, "C", ["F", "A", "B", "D", "E"]) == text
    alone = seat_message(translator("fr"), 2, 1, "A", [])
    assert (
        alone == "Tour 2 : vous êtes le membre A de la table 1, sans autre membre pour l'instant."
    )


async def test_erasing_a_seated_member_keeps_the_seats_and_the_check(db, tmp_path):
    await confirmed_panel(db)
    code, out, err = await concorder(
        db, tmp_path, "groups", "assign", "--size", "6", "--rounds", "2", "--seed", "3"
    )
    assert code == 0, err
    code, out, err = await concorder(db, tmp_path, "person", "export", "P00001", "-o", "me.json")
    assert code == 0, err
    exported = json.loads((tmp_path / "me.json").read_text())
    assert len(exported["tables"]["group_seats"]["rows"]) == 2
    # What the allocation was given about them: their language and the categories it mixes.
    (given,) = exported["tables"]["group_runs"]["rows"]
    assert given["input"]["id"] == "P00001" and given["input"]["language"]
    assert given["input"]["attributes"] and given["pins"] == [] and given["moves"] == []

    code, out, err = await concorder(db, tmp_path, "erase", "P00001")
    assert code == 0 and "Erased P00001" in out, err
    assert {s.round for s in await rows(db, GroupSeat, GroupSeat.participant_id == "P00001")} == {
        1,
        2,
    }
    code, out, err = await concorder(db, tmp_path, "groups", "assign", "--verify")
    assert code == 0, err
    code, out, err = await concorder(db, tmp_path, "groups", "notify", "--dry-run")
    assert code == 0 and "no longer on the panel): P00001/1, P00001/2" in out


async def test_the_assembly_file_can_mix_languages_and_a_typo_is_named(db, tmp_path):
    from tests.conftest import EXAMPLE_ASSEMBLY

    await confirmed_panel(db)
    text = (EXAMPLE_ASSEMBLY / "assembly.toml").read_text()
    (tmp_path / "mixed.toml").write_text(text + "\n[groups]\nmix_languages = true\n")
    (tmp_path / "typo.toml").write_text(text + "\n[groups]\nmix_language = true\n")
    assign = ["groups", "assign", "--size", "6", "--rounds", "2", "--seed", "5", "--dry-run"]

    code, out, err = await concorder(db, tmp_path, *assign, "--assembly", "mixed.toml")
    assert code == 0, err
    assert "30 confirmed members; 5 tables of 6-6" in out and "languages mixed" in out
    assert "en, fr" in out  # some table seats both languages

    code, out, err = await concorder(db, tmp_path, *assign, "--assembly", "typo.toml")
    assert code == 2 and "groups > mix_language" in err and "unknown setting" in err


async def test_before_a_panel_or_an_allocation_each_command_says_what_to_do_first(db, tmp_path):
    assign = ["groups", "assign", "--size", "6", "--seed", "1"]
    code, out, err = await concorder(db, tmp_path, *assign)
    assert code == 1 and "No panel has been drawn yet" in err
    await confirmed_panel(db)
    for args in (
        ["groups", "assign", "--verify"],
        ["groups", "show"],
        ["groups", "notify"],
        ["groups", "move", "P00001", "--round", "1", "--table", "1"],
    ):
        code, out, err = await concorder(db, tmp_path, *args)
        assert code == 1 and "No tables are allocated yet" in err, (args, out, err)
        assert "Traceback" not in out + err


async def test_two_allocations_recorded_at_the_same_moment_leave_one_current(db):
    from sqlalchemy.exc import IntegrityError

    from bot.services.groups import allocate as alloc
    from bot.services.groups import records

    await confirmed_panel(db)
    async with db.sessions() as session:
        members, categories = await records.panel_members(session)

    async def record(seed: str):
        problem = alloc.Problem(tuple(members), tuple(categories), 6, 1, seed, (), False)
        comparison = alloc.allocate(problem)
        async with db.sessions.begin() as session:
            return await records.record_allocation(session, problem, comparison)

    outcomes = await asyncio.gather(record("1"), record("2"), return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(refused) == 1
    assert isinstance(refused[0], IntegrityError | records.GroupsError | OperationalError)
    async with db.sessions() as session:
        runs = (await session.execute(select(GroupRun))).scalars().all()
        seats = (await session.execute(select(GroupSeat))).scalars().all()
    assert [r.status for r in runs] == [CURRENT]
    assert {s.run_id for s in seats} == {runs[0].run_id} and len(seats) == 30


async def test_a_language_too_few_speak_is_flagged_before_anyone_sits_alone(db, tmp_path):
    from sqlalchemy import update

    from tests.conftest import EXAMPLE_ASSEMBLY

    await confirmed_panel(db)
    async with db.sessions.begin() as session:  # two members read Spanish only
        await session.execute(
            update(Participant)
            .where(Participant.id.in_(["P00001", "P00002"]))
            .values(language="es")
        )
    text = (EXAMPLE_ASSEMBLY / "assembly.toml").read_text()
    (tmp_path / "mixed.toml").write_text(text + "\n[groups]\nmix_languages = true\n")
    assign = ["groups", "assign", "--size", "6", "--rounds", "1", "--seed", "5", "--dry-run"]

    code, out, err = await concorder(db, tmp_path, *assign)
    assert code == 0, err
    flat = " ".join(out.split())
    assert "(es) has only 2 member(s): too few to deliberate" in flat
    assert "mix_languages = true" in flat

    code, out, err = await concorder(db, tmp_path, *assign, "--assembly", "mixed.toml")
    assert code == 0, err
    assert "too few to deliberate" not in " ".join(out.split())
