"""Pool import: bad rows named by line and reason, all or nothing unless --skip-bad,
duplicates merged, importing twice changes nothing, one assembly per database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.bootstrap import build_cli
from bot.services import recruitment
from flows.assembly import parse_assembly
from store.db import upgrade
from store.models import Contact, Participant
from store.recruitment import PoolEntry

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "citizens-jury"
GOOD_AND_BAD = (
    "id,phone,telegram,language,household,age,region\n"
    "A1,+44 7700 900301,,en,H1,16-29,north\n"  # line 2
    "A2,not a number,,en,H1,,north\n"  # line 3: bad phone
    "A3,,,en,H2,,south\n"  # line 4: nobody to invite
    "A4,07700 900304,@Jo_Smith,de,H2,,south\n"  # line 5: language not offered
    "A5,07700 900305,,en,H3,17,south\n"  # line 6: age not an option
    ",07700900301,,,H1,,\n"  # line 7: duplicate of line 2, merged
    "A7,,ab,en,H4,,\n"  # line 8: handle too short
    "A8,07700 900308,,fr,H5,\n"  # line 9: too few fields
    "A9,+44 7700 900309,jo_smith2,es,H6,65+,east\n"  # line 10: fine
    "A1,07700 900399,,en,H1,,\n"  # line 11: same id, another phone
)


def write(tmp_path, text) -> Path:
    path = tmp_path / "pool.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_rows_are_named_by_line_with_the_reason(tmp_path, assembly):
    parsed = recruitment.parse_pool(write(tmp_path, GOOD_AND_BAD), assembly)
    reasons = {bad.line: bad.reason for bad in parsed.bad}
    assert sorted(reasons) == [3, 4, 5, 6, 8, 9, 11]
    assert reasons[3].startswith("phone:")
    assert "nobody to invite" in reasons[4]
    assert "'de' is not one of the assembly's" in reasons[5]
    assert "age: '17' is not one of" in reasons[6]
    assert reasons[8].startswith("telegram:")
    assert "fields where the header has" in reasons[9]
    assert "duplicate of line 2 with a different phone" in reasons[11]
    assert parsed.read == 10 and parsed.merged == 1
    people = {row.external_id: row for row in parsed.rows}
    assert set(people) == {"A1", "A9"}
    # Line 7 merged into line 2: same person, the blanks of one filled by the other.
    assert people["A1"].lines == [2, 7] and people["A1"].phone == "+447700900301"
    assert people["A9"].telegram == "jo_smith2"
    assert people["A9"].attributes == {"age": "65+", "region": "east"}


def test_missing_contact_columns_are_refused(tmp_path, assembly):
    with pytest.raises(recruitment.RecruitmentError, match="needs a 'phone' or 'telegram'"):
        recruitment.parse_pool(write(tmp_path, "name,language\nAda,en\n"), assembly)


async def test_import_creates_people_and_reimport_changes_nothing(db, tmp_path, assembly):
    path = write(
        tmp_path,
        "phone,telegram,language,household,region\n"
        "+447700900401,,fr,H1,north\n"
        ",handle_only,es,H2,south\n",
    )
    parsed = recruitment.parse_pool(path, assembly)
    first = await recruitment.import_pool(db.sessions, assembly, parsed.rows)
    again = await recruitment.import_pool(db.sessions, assembly, parsed.rows)
    assert (first.created, again.created, again.updated) == (2, 0, 2)
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Participant)) == 2
        entries = {
            e.telegram_handle: e for e in (await session.execute(select(PoolEntry))).scalars()
        }
        contact = await session.scalar(select(Contact))
    assert entries["handle_only"].language == "es"
    assert entries[None].attributes == {"region": "north"}
    assert (contact.address, contact.sms_consent) == ("+447700900401", True)

    # A later file with the same phone adds the handle to the same person.
    path = write(tmp_path, "phone,telegram,household\n+447700900401,Now_On_Telegram,H1\n")
    await recruitment.import_pool(
        db.sessions, assembly, recruitment.parse_pool(path, assembly).rows
    )
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(PoolEntry)) == 2
        handle = await session.scalar(
            select(PoolEntry.telegram_handle).where(
                PoolEntry.participant_id == contact.participant_id
            )
        )
    assert handle == "now_on_telegram"


async def test_a_database_serves_one_assembly(db, tmp_path, assembly):
    path = write(tmp_path, "phone\n+447700900501\n")
    await recruitment.import_pool(
        db.sessions, assembly, recruitment.parse_pool(path, assembly).rows
    )
    other = parse_assembly(
        (EXAMPLE / "assembly.toml")
        .read_text()
        .replace('name.en = "Riverside Citizens\' Jury on Transport"', 'name.en = "Another"')
    )
    with pytest.raises(recruitment.RecruitmentError, match="belongs to the assembly"):
        await recruitment.import_pool(db.sessions, other, recruitment.parse_pool(path, other).rows)
    # The same assembly, now run in French first: its name is one of those it had.
    french_first = parse_assembly(
        (EXAMPLE / "assembly.toml")
        .read_text()
        .replace('default_language = "en"', 'default_language = "fr"')
    )
    assert french_first.name == "Jury citoyen de Riverside sur les transports"
    path = write(tmp_path, "phone\n+447700900502\n")
    rows = recruitment.parse_pool(path, french_first).rows
    await recruitment.import_pool(db.sessions, french_first, rows)


def test_cli_is_all_or_nothing_unless_skip_bad(tmp_path, monkeypatch):
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    upgrade(url)
    monkeypatch.setenv("CONCORDER_DATABASE_URL", url)
    pool = write(tmp_path, GOOD_AND_BAD)
    runner = CliRunner()
    app = build_cli()
    options = ["--assembly", str(EXAMPLE / "assembly.toml")]
    refused = runner.invoke(app, ["pool", "import", str(pool), *options])
    assert refused.exit_code == 1
    assert "Nothing imported" in refused.output and "7 bad rows" in refused.output
    assert "not one of the assembly's" in refused.output
    dry = runner.invoke(app, ["pool", "import", str(pool), "--skip-bad", "--dry-run", *options])
    assert dry.exit_code == 0 and "2 people would be imported" in dry.output
    status = runner.invoke(app, ["status", *options])
    assert "In the pool" in status.output
    assert re.search(r"In the pool\s*│\s*0 ", status.output)
    done = runner.invoke(app, ["pool", "import", str(pool), "--skip-bad", *options])
    assert done.exit_code == 0, done.output
    assert "Imported: 2 new people" in done.output
    bad_file = runner.invoke(
        app, ["pool", "import", str(pool), "--assembly", str(tmp_path / "missing.toml")]
    )
    assert bad_file.exit_code == 2 and "file not found" in bad_file.output
