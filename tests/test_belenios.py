"""Ballots run as Belenios elections, with the real belenios-tool: the election set up at
opening and each voter sent their credential in their language; votes by signed Twilio
webhooks and Telegram webhook updates, encrypted with the voter's credential, a revote
replacing a ballot as Belenios does; at the close the archive published, verified by
belenios-tool itself and its result the one the service announces; a tampered ballot box
fails verification."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.bootstrap import create_app
from bot.services.ballots import opening, records
from bot.settings import Settings
from flows.ballot_spec import load_ballots
from store.belenios import BeleniosBallot, BeleniosCredential, BeleniosElection
from tests.ballot_world import LANGUAGES, last_message, messages, panel, voter
from tests.telegram_peer import bot_api_fixture  # noqa: F401  (fixture)
from tests.test_draw import concorder
from tests.test_telegram_webhook import SECRET, callback_update
from tests.twilio_peer import sign, twilio_settings


def names(raw: bytes, text: str) -> bool:
    """Whether `text` stands in `raw` as a whole: not inside a longer run of letters and
    digits (the archive's numbers are hundreds of digits long, so a seven-digit chat id
    turns up inside one now and then)."""
    return (
        re.search(rb"(?<![0-9A-Za-z])" + re.escape(text.encode()) + rb"(?![0-9A-Za-z])", raw)
        is not None
    )


BELENIOS_FILE = Path(__file__).resolve().parent / "ballots" / "belenios.toml"
CREDENTIAL = re.compile(r"\b[1-9A-HJ-NP-Za-km-z]{3}(?:-[1-9A-HJ-NP-Za-km-z]{3}){4}\b")
# A tracker is base64: it may start or end with + or /, where \b finds no word edge.
TRACKER = re.compile(r"(?<![A-Za-z0-9+/])([A-Za-z0-9+/]{43})(?![A-Za-z0-9+/])")


@pytest.fixture(autouse=True)
def belenios_tool():
    if shutil.which("belenios-tool") is None:
        pytest.fail(
            "belenios-tool is not installed: `apt-get install -y belenios-tool` "
            "(the README's test command and .ci/run install it).",
            pytrace=False,
        )


@pytest.fixture
def belenios_dir(tmp_path) -> Path:
    return tmp_path / "elections"


@pytest.fixture(autouse=True)
def one_secret_key(monkeypatch):
    """The service and the commands run from the test's directory share one key, as a
    deployment's do (the database refuses a command with another)."""
    monkeypatch.setenv("CONCORDER_SECRET_KEY", "belenios-test-secret-key-0123456789abcdef")


@pytest.fixture
def settings(db, belenios_dir) -> Settings:
    return Settings(
        CONCORDER_DATABASE_URL=db.url, CONCORDER_BELENIOS_DIR=str(belenios_dir), _env_file=None
    )


class Phones:
    """Voters writing to the service's own webhooks: SMS signed as Twilio signs them,
    Telegram updates with the webhook's secret."""

    def __init__(self, client, db):
        self.client, self.db, self.n = client, db, 0
        self.last: tuple[str, dict] | None = None

    async def post(self, path: str, **request) -> None:
        self.last = (path, request)
        response = await self.client.post(path, **request)
        assert response.status == 200, await response.text()

    async def again(self) -> None:
        """The last request delivered once more, as a provider retrying it would."""
        path, request = self.last
        await self.post(path, **request)

    async def sms(self, v, text: str) -> None:
        self.n += 1
        form = {"MessageSid": f"SM{self.n:032d}", "From": v.address, "To": "+15005550006"}
        form |= {"Body": text, "NumMedia": "0", "AccountSid": "AC" + "0" * 32}
        url = str(self.client.make_url("/webhooks/twilio/sms"))
        await self.post("/webhooks/twilio/sms", data=form, headers=sign(url, form))

    async def press(self, v, key: str) -> None:
        """A press on the button `key` of the voter's latest keyboard."""
        self.n += 1
        buttons = (await last_message(self.db.sessions, v)).buttons or []
        data = next(b["data"] for b in buttons if b["data"].endswith(f":{key}"))
        update = callback_update(self.n, data, chat=int(v.address))
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        await self.post("/webhooks/telegram", json=update, headers=headers)


async def serve_phones(db, bot_api, aiohttp_client, belenios_dir, **settings) -> Phones:
    """The service with SMS, Telegram and Belenios, and the phones that talk to it."""
    served = twilio_settings(
        db.url,
        TELEGRAM_BOT_TOKEN="123:abc",
        TELEGRAM_API_BASE_URL=bot_api.url,
        TELEGRAM_WEBHOOK_SECRET=SECRET,
        CONCORDER_BELENIOS_DIR=str(belenios_dir),
        **settings,
    )
    client = await aiohttp_client(create_app(served, migrate=False, dispatch=False))
    return Phones(client, db)


@pytest.fixture
async def phones(db, bot_api, aiohttp_client, belenios_dir):
    return await serve_phones(db, bot_api, aiohttp_client, belenios_dir)


async def create(db) -> None:
    async with db.sessions.begin() as session:
        await records.create(session, load_ballots(str(BELENIOS_FILE), LANGUAGES), source="file")


def tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["belenios-tool", *args], capture_output=True, text=True, timeout=120)


def box(archive: Path) -> tuple[list[str], list[list[int]] | None]:
    """The trackers of the ballots in an archive, in order, and its result if any."""
    with tarfile.open(archive) as tar:
        read = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    events = [json.loads(v) for k, v in read.items() if k.endswith(".event.json")]
    events.sort(key=lambda e: e["height"])
    trackers, result = [], None
    for event in events:
        data = read.get(f"{event.get('payload')}.data.json", b"")
        if event["type"] == "Ballot":
            digest = hashlib.sha256(data).digest()
            trackers.append(base64.b64encode(digest).decode().rstrip("="))
        elif event["type"] == "Result":
            result = json.loads(data)["result"]
    return trackers, result


async def test_a_belenios_ballot_by_sms_and_telegram_is_verified_by_belenios_tool(
    relay, db, phones, tmp_path
):
    en_sms, en_tg = voter(1, "sms"), voter(2, "telegram")
    fr_sms, es_tg = voter(3, "sms", "fr"), voter(4, "telegram", "es")
    es_sms, idle = voter(5, "sms", "es"), voter(6, "telegram")
    everyone = [en_sms, en_tg, fr_sms, es_tg, es_sms, idle]
    await panel(db.sessions, everyone)
    await create(db)
    opened = await opening.open_ballot(relay, "site")
    assert (opened.voters, opened.asked) == (6, 6)

    # Each voter is sent their own credential, in their language, and told what the
    # service sees.
    async with db.sessions() as session:
        held = dict(
            (
                await session.execute(
                    select(BeleniosCredential.participant_id, BeleniosCredential.private)
                )
            ).all()
        )
    intro = {"en": "verifiable ballot run with Belenios", "fr": "Belenios", "es": "Belenios"}
    for v in everyone:
        first = (await messages(db.sessions, v))[0]
        assert intro[v.language] in first
        assert CREDENTIAL.search(first).group(0) == held[v.id]
    assert "the service sees how you vote" in (await messages(db.sessions, en_sms))[0]
    assert len(set(held.values())) == 6

    given: dict[str, list[str]] = {}

    async def tracker_of(v) -> str:
        text = (await last_message(db.sessions, v)).text
        code = TRACKER.search(text).group(1)
        given.setdefault(v.id, []).append(code)
        return code

    await phones.sms(en_sms, "north")
    assert (
        "encrypts this vote with your credential" in (await last_message(db.sessions, en_sms)).text
    )
    await phones.sms(en_sms, "YES")
    first_of_en = await tracker_of(en_sms)
    await phones.press(en_tg, "river")
    await phones.press(en_tg, "yes")
    await tracker_of(en_tg)
    await phones.sms(fr_sms, "2")  # Bord de l'eau
    await phones.sms(fr_sms, "oui")
    await tracker_of(fr_sms)
    await phones.press(es_tg, "north")
    await phones.press(es_tg, "yes")
    await tracker_of(es_tg)
    await phones.sms(es_sms, "este")
    await phones.sms(es_sms, "si")
    await tracker_of(es_sms)
    # A revote: a new ballot with the same credential, which Belenios counts instead.
    await phones.sms(en_sms, "VOTE")
    await phones.sms(en_sms, "east")
    await phones.sms(en_sms, "yes")
    assert "replaces the one before" in (await last_message(db.sessions, en_sms)).text
    await tracker_of(en_sms)

    # While open, the box so far can be published and checked: six ballots, no result.
    code, out, err = await concorder(db, tmp_path, "ballot", "publish", "site", "--out", "snap")
    assert code == 0, err
    snapshot = next((tmp_path / "snap").glob("*.bel"))
    assert tool("election", "verify", "--dir", str(tmp_path / "snap")).returncode == 0
    trackers, result = box(snapshot)
    assert sorted(trackers) == sorted(t for codes in given.values() for t in codes)
    assert result is None

    closed = await records.close_ballot(relay, "site")
    results = closed.results
    assert (results["voters"], results["voted"]) == (6, 5)
    assert results["tally"]["details"]["counts"] == {"north": 1, "river": 2, "east": 2}
    assert results["tally"]["ballots"] == 5 and results["tally"]["winners"] == []  # no majority
    states = {t: s for t, _, s in results["trackers"]}
    assert states[first_of_en] == "replaced"
    assert sorted(s for s in states.values()) == ["counted"] * 5 + ["replaced"]
    assert all(choice is None for _, choice, _ in results["trackers"])

    code, out, err = await concorder(db, tmp_path, "ballot", "publish", "site", "--out", "public")
    assert code == 0 and "belenios-tool election verify --dir public" in out, err
    published = next((tmp_path / "public").glob("*.bel"))
    checked = tool("election", "verify", "--dir", str(tmp_path / "public"))
    assert checked.returncode == 0 and "all checks passed" in checked.stderr, checked.stderr
    trackers, result = box(published)
    assert result == [[1, 2, 2]] == results["belenios"]["result"]
    for codes in given.values():  # every voter finds each of their ballots in the box
        assert set(codes) <= set(trackers)
    code, out, err = await concorder(db, tmp_path, "ballot", "results", "site")
    assert code == 0 and out.count("encrypted") == 5 and first_of_en in out, err
    code, out, err = await concorder(db, tmp_path, "ballot", "verify", "site")
    assert code == 0 and "all checks passed" in out and "matches the published one" in out, err

    # Nothing left ties a voter to a credential, and the box names nobody.
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(BeleniosCredential)) == 0
        assert await session.scalar(select(func.count()).select_from(BeleniosBallot)) == 6
    raw = published.read_bytes()
    for v in everyone:
        assert not names(raw, v.id) and not names(raw, v.address)
        assert not names(raw, held[v.id])


def tampered(archive: Path, out: Path, change) -> Path:
    """A copy of the archive with `change(name, bytes) -> bytes` applied to each file."""
    out.mkdir()
    copy = out / archive.name
    with tarfile.open(archive) as tar, tarfile.open(copy, "w") as new:
        for member in tar.getmembers():
            data = change(member.name, tar.extractfile(member).read())
            member.size = len(data)
            new.addfile(member, io.BytesIO(data))
    return copy


async def test_a_tampered_ballot_box_or_result_fails_verification(relay, db, tmp_path):
    from tests.ballot_world import say

    voters = [voter(n, "sms") for n in range(1, 6)]
    await panel(db.sessions, voters)
    await create(db)
    await opening.open_ballot(relay, "adopt")
    for v, reply in zip(voters, ["yes", "yes", "no", "yes", "no"], strict=True):
        await say(relay, v, reply)
        await say(relay, v, "YES")
    closed = await records.close_ballot(relay, "adopt")
    assert closed.results["tally"]["details"]["counts"] == {"yes": 3, "no": 2}
    assert closed.results["tally"]["winners"] == []  # 3/5 is short of 2/3
    code, out, err = await concorder(db, tmp_path, "ballot", "publish", "adopt", "--out", "ok")
    assert code == 0, err
    archive = next((tmp_path / "ok").glob("*.bel"))
    assert tool("election", "verify", "--dir", str(tmp_path / "ok")).returncode == 0

    trackers, _ = box(archive)
    ballot_files = set()
    with tarfile.open(archive) as tar:
        for m in tar.getmembers():
            if m.name.endswith(".data.json") and b'"credential"' in tar.extractfile(m).read():
                ballot_files.add(m.name)
    assert len(ballot_files) == 5

    def flip_a_ballot(name: str, data: bytes) -> bytes:
        if name != sorted(ballot_files)[0]:
            return data
        ballot = json.loads(data)
        choice = ballot["answers"][0]["choices"][0]
        choice["alpha"], choice["beta"] = choice["beta"], choice["alpha"]
        return json.dumps(ballot, separators=(",", ":")).encode()

    bad = tampered(archive, tmp_path / "bad-ballot", flip_a_ballot)
    checked = tool("election", "verify", "--dir", str(bad.parent))
    assert checked.returncode != 0, checked.stderr

    def other_result(name: str, data: bytes) -> bytes:
        return data.replace(b'"result":[[3,2]]', b'"result":[[4,1]]')

    assert b'"result":[[3,2]]' in archive.read_bytes()
    bad = tampered(archive, tmp_path / "bad-result", other_result)
    assert b'"result":[[4,1]]' in bad.read_bytes()
    checked = tool("election", "verify", "--dir", str(bad.parent))
    assert checked.returncode != 0, checked.stderr

    # The service's own copy altered: `ballot verify` says so and fails.
    async with db.sessions() as session:
        row = await session.get(BeleniosElection, "adopt")
    shutil.copyfile(bad, Path(row.directory) / "public" / archive.name)
    code, out, err = await concorder(db, tmp_path, "ballot", "verify", "adopt")
    assert code == 1 and "verification FAILED" in err, out


async def test_approval_with_a_revote_counts_each_voters_last_ballot(relay, db):
    from tests.ballot_world import press, say

    a, b, c = voter(1, "sms"), voter(2, "telegram"), voter(3, "sms", "fr")
    await panel(db.sessions, [a, b, c])
    await create(db)
    await opening.open_ballot(relay, "pick")
    await say(relay, a, "1 3")
    await say(relay, a, "yes")
    await press(relay, b, "lanes")
    await press(relay, b, "night")  # the second of two: the summary comes at once
    await press(relay, b, "yes")
    await say(relay, c, "2")
    await say(relay, c, "oui")
    await say(relay, c, "VOTER")  # the French VOTE
    await say(relay, c, "1")
    await say(relay, c, "oui")
    results = (await records.close_ballot(relay, "pick")).results
    assert results["tally"]["details"]["counts"] == {"tram": 2, "lanes": 1, "night": 2}
    assert results["tally"]["winners"] == ["tram", "night"] and results["tally"]["ballots"] == 3
    assert [s for _, _, s in results["trackers"]].count("replaced") == 1
    assert results["belenios"]["result"] == [[2, 1, 2]]


async def test_methods_belenios_does_not_count_are_refused_by_line(db, tmp_path):
    path = tmp_path / "ranked.toml"
    path.write_text(
        "[[ballots]]\n"
        'id = "order"\n'
        'system = "belenios"\n'
        'title = { en = "Order" }\n'
        'question = { en = "Rank them" }\n'
        'method = "ranking"\n'
        'options = [{ key = "a", label = { en = "A" } }, { key = "b", label = { en = "B" } }]\n'
    )
    code, out, err = await concorder(db, tmp_path, "ballot", "create", str(path))
    assert code == 1
    assert "ranked.toml" in err and "(line 1)" in err
    assert "yes_no, single, approval" in err and "ranking" in err


async def test_without_belenios_tool_opening_says_how_to_install_it(
    relay, db, tmp_path, monkeypatch
):
    await panel(db.sessions, [voter(1, "sms")])
    await create(db)
    monkeypatch.setenv("PATH", str(tmp_path))  # no belenios-tool on it
    code, out, err = await concorder(db, tmp_path, "ballot", "open", "adopt")
    assert code == 1
    assert "belenios-tool is not installed: `apt-get install -y belenios-tool`" in err
    code, out, err = await concorder(db, tmp_path, "ballot", "status", "adopt")
    assert "draft" in out and "yes_no (belenios)" in out  # nothing opened, nobody asked


async def test_after_the_close_no_credential_is_left_to_tie_a_voter_to_a_ballot(
    relay, db, settings
):
    from tests.ballot_world import press, say
    from tests.test_ballot_secrecy import delivered, tables_of
    from tests.test_erasure import _dump

    voters = [voter(n) for n in range(1, 5)]  # SMS and Telegram in turn
    await panel(db.sessions, voters)
    await create(db)
    await opening.open_ballot(relay, "site")
    for v, option in zip(voters, ["north", "river", "east", "river"], strict=True):
        if v.channel == "sms":
            await say(relay, v, option)
            await say(relay, v, "yes")
        else:
            await press(relay, v, option)
            await press(relay, v, "yes")
    async with db.sessions() as session:
        held = (await session.execute(select(BeleniosCredential.private))).scalars().all()
    during = (await _dump(db)).decode("utf-8", "replace")
    assert len(held) == 4 and all(c in during for c in held)  # the operator can link now

    await delivered(db, settings).drain()
    await records.close_ballot(relay, "site")
    after = (await _dump(db)).decode("utf-8", "replace")
    assert not [c for c in held if c in after]
    outbox = tables_of(after)["outbox"]
    assert len(outbox) >= 4 * 3  # the question, the summary and the tracker, blanked
    assert "You chose: " not in after
    # Only the results sent to everyone at the close still name an option.
    assert not [m for m in outbox if "North yard" in m and "has closed" not in m]
    ballots = tables_of(after)["belenios_ballots"]
    assert len(ballots) == 4 and not [v for v in voters if any(v.id in b for b in ballots)]
    assert set(BeleniosBallot.__table__.columns.keys()) == {"id", "ballot_id", "ballot", "tracker"}
