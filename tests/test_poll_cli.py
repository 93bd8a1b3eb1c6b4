"""`concorder poll` as organisers use it, on the example assembly: send with --dry-run,
status (counts only, no answers), report as a table, CSV and JSON, by a quota category
with small groups suppressed, and the chart as PNG and SVG."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os

from typer.testing import CliRunner

from bot.bootstrap import build, build_cli
from bot.settings import Settings
from store.recruitment import PoolEntry
from tests.conftest import EXAMPLE_ASSEMBLY
from tests.poll_world import panel, say, voter

KEY = "poll-cli-test-secret-key-0123456789abcdef"


async def concorder(db, tmp_path, *args, key: str = KEY):
    env = {
        "CONCORDER_SECRET_KEY": key,
        "CONCORDER_DATABASE_URL": db.url,
        "COLUMNS": "200",
        "CONCORDER_ASSEMBLY": str(EXAMPLE_ASSEMBLY / "assembly.toml"),
    }
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = await asyncio.to_thread(CliRunner().invoke, build_cli(), list(args), env=env)
    finally:
        os.chdir(cwd)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


async def test_send_status_and_report(db, tmp_path):
    # The service and the command share the secret the pseudonyms are made with.
    settings = Settings(CONCORDER_DATABASE_URL=db.url, CONCORDER_SECRET_KEY=KEY, _env_file=None)
    relay = build(settings, sessions=db.sessions)
    code, out, err = await concorder(db, tmp_path, "poll", "send", "views", "before")
    assert code == 1 and "Nobody to ask in views" in err
    people = [voter(n, "sms") for n in range(1, 10)]
    await panel(db.sessions, people)
    async with db.sessions.begin() as session:
        for n, p in enumerate(people):
            region = "north" if n < 7 else "south"
            session.add(PoolEntry(participant_id=p.id, attributes={"region": region}))

    code, out, err = await concorder(db, tmp_path, "poll", "send", "views", "before", "--dry-run")
    assert code == 0 and "Would send views/before to 9 panel members" in out, err
    code, out, err = await concorder(db, tmp_path, "poll", "status")
    assert code == 0 and "pending" in out and "2027-01-31 18:30 UTC" in out, err
    code, out, err = await concorder(db, tmp_path, "poll", "send", "views", "before")
    assert code == 0 and "9 on the roll, 9 asked" in out, err
    code, out, err = await concorder(db, tmp_path, "poll", "send", "views", "nope")
    assert code == 1 and "has no wave 'nope' (waves: before, after)" in err
    for n, p in enumerate(people):
        for reply in ["2", str(1 + n % 5), "a"] if n < 8 else ["3"]:
            await say(relay, p, reply)
    code, out, err = await concorder(db, tmp_path, "poll", "report", "views")
    assert code == 1 and "needs two" in err
    code, out, err = await concorder(db, tmp_path, "poll", "status", "views")
    assert code == 0, err
    row = next(line for line in out.splitlines() if "before" in line)
    assert "open" in row and "9" in row and "8 (89%)" in row

    code, out, err = await concorder(db, tmp_path, "poll", "send", "views", "after")
    assert code == 0, err
    for n, p in enumerate(people[:8]):
        for reply in ["4", str(1 + n % 5), "b" if n % 2 else "a"]:
            await say(relay, p, reply)

    code, out, err = await concorder(
        db, tmp_path, "poll", "report", "views", "--by", "region", "--chart", "shift.svg"
    )
    assert code == 0, err
    assert "before against after" in out and "free-buses" in out and "suppressed" in out
    assert (tmp_path / "shift.svg").read_text().lstrip().startswith("<?xml")
    code, out, err = await concorder(
        db, tmp_path, "poll", "report", "views", "--format", "json", "--by", "region"
    )
    report = json.loads(out)
    rows = {(r["question"], r["group"]): r for r in report["rows"]}
    assert rows[("free-buses", "all")]["n"] == 8
    assert rows[("free-buses", "all")]["change"] == 2.0
    assert rows[("free-buses", "north")]["n"] == 7
    # One pair in the south: suppressed, and nothing of it is printed.
    assert rows[("free-buses", "south")] == {
        "question": "free-buses",
        "text": "Buses should be free for everyone under 18.",
        "kind": "agree",
        "group": "south",
        "suppressed": "fewer than 5 pairs",
    }
    assert rows[("fare-share", "all")]["after"] == 0.5
    code, out, err = await concorder(
        db,
        tmp_path,
        "poll",
        "report",
        "views",
        "--format",
        "csv",
        "--min-cell",
        "1",
        "--by",
        "region",
        "--chart",
        "shift.png",
    )
    assert code == 0, err
    table = list(csv.DictReader(io.StringIO(out)))
    south = next(r for r in table if r["question"] == "free-buses" and r["group"] == "south")
    assert south["n"] == "1" and south["suppressed"] == ""
    assert (tmp_path / "shift.png").read_bytes().startswith(b"\x89PNG")
    code, out, err = await concorder(
        db,
        tmp_path,
        "poll",
        "report",
        "views",
        "--by",
        "region",
        key="another-secret-key-0123456789abcdefgh",
    )
    assert code == 1 and "first used with another secret key" in err
    code, out, err = await concorder(db, tmp_path, "poll", "report", "views", "--chart", "x.gif")
    assert code == 1 and "give a .png or .svg file" in err
