"""`concorder rehearse`: the example assembly run end to end with simulated people, on a
scratch database and the simulator only.

The full run (invitations to the last poll wave) is made once for the module; the other
tests use a handful of people, so the draw stops the run early (too few registered) and
each takes a couple of seconds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from pathlib import Path

import pytest
from aiohttp import web
from typer.testing import CliRunner

from bot.bootstrap import build_cli
from bot.services.rehearsal import rehearse
from bot.services.rehearsal.report import FUNNEL
from bot.services.rehearsal.world import SandboxError, sandbox_settings
from bot.settings import Settings
from flows.model import Turn

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "citizens-jury" / "assembly.toml"
SMALL = 8  # fewer than the panel: registration, then the draw says it cannot be made
FULL = 30  # with this seed, enough registrations to fill the panel within its quotas


@pytest.fixture(scope="module")
def full_run():
    # Module fixtures may be first requested from inside a running loop: a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        run = rehearse(EXAMPLE, FULL, "b", base=Settings(_env_file=None))
        return pool.submit(asyncio.run, run).result()


async def test_the_example_assembly_rehearses_with_every_message_answered(full_run):
    data = full_run.data()
    assert data["never_answered"] == []
    # A replacement that cannot keep the quotas is a finding, not a stop; nothing else is.
    assert [p for p in data["problems"] if not p.startswith("replace:")] == []
    phases = [p["phase"] for p in data["phases"]]
    for phase in ("pool and invitations", "draw", "groups", "table prompts", "ballot fares"):
        assert phase in phases
    invitations = data["phases"][0]
    assert invitations["sms_segments"] > 0
    assert invitations["sms_cost"] == pytest.approx(
        invitations["sms_segments"] * Settings(_env_file=None).sms_cost_per_segment, abs=1e-3
    )


async def test_the_funnel_adds_up(full_run):
    funnel = full_run.data()["funnel"]
    assert [f["step"] for f in funnel] == list(FUNNEL)
    assert funnel[0]["people"] == FULL
    for before, after in zip(funnel, funnel[1:], strict=False):
        assert after["people"] <= before["people"]
        assert after["dropped"] == before["people"] - after["people"]
    steps = {f["step"]: f["people"] for f in funnel}
    assert steps["drawn"] == 12  # the panel
    assert steps["voted"] > 0 and steps["spoke"] > 0


async def test_the_same_seed_gives_the_same_report():
    first = await rehearse(EXAMPLE, SMALL, "same", base=Settings(_env_file=None))
    second = await rehearse(EXAMPLE, SMALL, "same", base=Settings(_env_file=None))
    assert first.data() == second.data()
    assert first.problems and "draw" in first.problems[0]


async def test_a_message_left_unanswered_is_listed_with_its_step_and_pseudonym():
    """A planted fault: the service says nothing back to the first reply to an invitation
    (however often that turn is worked out: a batch may hand it to the one-message path)."""
    dropped = []

    def plant(relay) -> None:
        handle = relay.engine.handle

        def forgetful(state, inbound, ctx):
            turn = handle(state, inbound, ctx)
            key = (ctx.participant_id, state.prompt_id)
            if state.flow == "invitation" and dropped in ([], [key]):
                dropped[:] = [key]
                return Turn(turn.state, [], turn.events)
            return turn

        relay.engine.handle = forgetful

    report = await rehearse(EXAMPLE, SMALL, "same", base=Settings(_env_file=None), prepare=plant)
    [missed] = report.data()["never_answered"]
    assert missed["participant"] == dropped[0][0]
    assert missed["step"] == "invitation"
    assert "+44" not in json.dumps(report.data())  # pseudonyms, never phone numbers


@pytest.fixture
async def provider(monkeypatch):
    """A stand-in for Telegram's and Twilio's APIs that records any request it gets, and
    the environment of a live service pointing at it."""
    seen: list[str] = []

    async def anything(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"ok": True, "result": {}, "sid": "SM1", "status": "queued"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    for name, value in {
        "TELEGRAM_BOT_TOKEN": "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi",
        "TELEGRAM_API_BASE_URL": base,
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "f" * 32,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_API_BASE_URL": base,
        "CONCORDER_PUBLIC_URL": "https://relay.example.org",
    }.items():
        monkeypatch.setenv(name, value)
    yield seen
    await runner.cleanup()


async def test_nothing_reaches_a_real_provider_whatever_the_settings_say(provider, tmp_path):
    live = Settings(_env_file=None)
    assert live.real_channel_configured  # the environment names real accounts
    sandbox = sandbox_settings(tmp_path, live, "s")
    assert set(sandbox.simulated_channels) == {"sms", "telegram"}
    assert not sandbox.real_channel_configured
    report = await rehearse(EXAMPLE, SMALL, "s", base=live)
    sent = sum(sum(p["messages"].values()) for p in report.data()["phases"])
    assert sent > SMALL  # the invitations and the replies went out, to the simulator
    assert provider == []


def test_the_sandbox_refuses_to_start_with_a_real_channel(tmp_path, monkeypatch):
    monkeypatch.setattr(Settings, "real_channel_configured", property(lambda self: True))
    with pytest.raises(SandboxError):
        sandbox_settings(tmp_path, Settings(_env_file=None), "s")


def test_the_command_writes_its_report_and_leaves_no_database_behind(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONCORDER_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'live.db'}")
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        build_cli(),
        ["rehearse", "--assembly", str(EXAMPLE), "--people", str(SMALL), "--seed", "cli"]
        + ["--format", "json", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["people"] == SMALL and data["funnel"][0]["people"] == SMALL
    assert not (tmp_path / "live.db").exists()  # the live database is never opened
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
