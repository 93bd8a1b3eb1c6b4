"""`concorder erase` and `concorder person export`: tables, dry runs that change nothing,
clear errors; and `serve` erases what is due on a timer of its own."""

from __future__ import annotations

import json

from bot.services import privacy
from tests.conftest import EXAMPLE_ASSEMBLY
from tests.test_draw import concorder
from tests.test_erasure import _dump
from tests.test_recruitment_flows import PHONE, invitation_of, invited, say  # noqa: F401

NO_RETENTION = """
[assembly]
name = "Test Jury"

[consent]
version = "v1"
text = { en = "We keep your answers." }
"""


async def opened_by_the_service(db, tmp_path) -> None:
    """The database has met the key these commands use (the first to open it records it)."""
    code, _, _ = await concorder(db, tmp_path, "outbox", "status")
    assert code == 0


async def test_erase_and_export_from_the_command_line(db, relay, invited, tmp_path):  # noqa: F811
    await say(db, relay, PHONE, "1")
    pid = (await invitation_of(db, PHONE)).participant_id
    await opened_by_the_service(db, tmp_path)
    before = await _dump(db)

    code, out, _ = await concorder(db, tmp_path, "erase", "+447700900101", "--dry-run")
    assert code == 0
    assert f"{pid}: what would be erased (dry run)" in out
    assert "contacts" in out and "inbound_messages" in out and "kept (pseudonymous)" in out
    assert await _dump(db) == before

    code, out, _ = await concorder(
        db, tmp_path, "person", "export", "07700 900101", "-o", "me.json"
    )
    assert code == 0 and "Wrote everything held about" in out
    exported = json.loads((tmp_path / "me.json").read_text())
    assert exported["participant_id"] == pid
    assert exported["tables"]["contacts"]["rows"][0]["address"] == PHONE
    assert exported["tables"]["inbound_messages"]["rows"][0]["text"] == "1"
    assert (tmp_path / "me.json").stat().st_mode & 0o777 == 0o600

    code, out, _ = await concorder(db, tmp_path, "erase", PHONE)
    assert code == 0 and f"Erased {pid}" in out
    code, out, _ = await concorder(db, tmp_path, "erase", pid)
    assert code == 0 and "was erased before" in out
    code, out, _ = await concorder(db, tmp_path, "person", "export", pid)
    assert code == 0 and PHONE not in out and json.loads(out)["participant_id"] == pid


async def test_erase_names_bad_input_plainly(db, tmp_path):
    table = [
        (["erase", "+447700900999"], 1, "Not found"),
        (["erase", "PAAAAAAAAAAAA"], 1, "No participant has the id PAAAAAAAAAAAA."),
        (["erase"], 2, "Give one PERSON, or --due"),
        (["erase", PHONE, "--due"], 2, "Give one PERSON, or --due"),
        (["person", "export", "12345"], 1, "Not found"),
    ]
    (tmp_path / "plain.toml").write_text(NO_RETENTION)
    table.append(
        (["erase", "--due", "--assembly", str(tmp_path / "plain.toml")], 2, "no [retention]")
    )
    for args, expected_code, message in table:
        code, out, err = await concorder(db, tmp_path, *args)
        assert code == expected_code, args
        assert message in err + out, args
        assert "Traceback" not in err + out


async def test_erase_due_shows_a_table_and_a_dry_run_changes_nothing(
    db,
    relay,
    invited,  # noqa: F811
    tmp_path,
):
    await say(db, relay, PHONE, "1")
    await say(db, relay, PHONE, "withdraw")
    await opened_by_the_service(db, tmp_path)
    before = await _dump(db)
    assembly = str(EXAMPLE_ASSEMBLY / "assembly.toml")
    code, out, _ = await concorder(
        db, tmp_path, "erase", "--due", "--dry-run", "--assembly", assembly
    )
    assert code == 0 and "Dry run: nothing was changed." in out
    assert "0 people due; 0 organisers' records due." in out  # 30 days have not passed
    assert await _dump(db) == before


def test_serve_erases_what_is_due_on_a_timer(settings, assembly):
    from bot.bootstrap import build, create_app
    from scheduler.timers import TIMERS

    names = [t.name for t in create_app(relay=build(settings, assembly=assembly))[TIMERS]]
    assert "privacy: erase what retention says is due" in names
    assert privacy.running.TICK_SECONDS <= 3600
