"""`concorder publish`: a whole small assembly (recruited, drawn, confirmed, a ballot
voted and closed, recommendations answered, a checkpoint signed) published as a Data
Package that the `frictionless` library finds valid, and in which no address, handle,
name or text a participant used appears."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from frictionless import validate
from sqlalchemy import select, update

from bot.bootstrap import publication_writers
from bot.services import audit_checkpoints
from bot.services import publish as pub
from bot.services import recommendations as recs
from bot.services.ballots import opening, records
from bot.services.publish import suppression
from store.models import Contact, InboundMessage, utcnow
from store.recruitment import CONFIRMED, SELECTED, PoolEntry, Selection
from store.statements import APPROVED, Statement, StatementVote
from tests import table_talk
from tests.ballot_world import Voter, say
from tests.calendar_world import calendar_fixture  # noqa: F401  (the `calendar` fixture)
from tests.recommendation_world import DAYTIME, accepted, recorded
from tests.table_talk import BUS, RENT
from tests.test_draw import HALF_WOMEN, concorder, draw_panel_of_four, phone_of

NAMES = ["Priya Raman", "Joseph Okafor", "Marta Lindqvist", "Chen Wei"]
HANDLES = ["priya_r", "jo_okafor"]
FREE_TEXT = [
    "I live at 12 Elm Road, behind the bakery",
    "Write to me at marta.l@example.org please",
    "My neighbour thinks the 47 bus is always late",
]

STATEMENTS = [
    "Buses should run all night.",
    "Parking in the centre should cost more.",
    "Bike lanes should be separated from cars.",
    "The tram line should reach the hospital.",
    "Fares should be free for everyone under 18.",
    "Car traffic should be banned on market days.",
    "Bus stops need shelters and benches.",
]


def with_addresses(people) -> list[str]:
    """Contributions that carry a participant's phone, handle, name or e-mail."""
    return [
        f"Appelez-moi au {phone_of(people[3].id)} pour le covoiturage du marché",
        f"Je suis @{HANDLES[0]} sur Telegram pour le marché du samedi",
        f"{NAMES[2]} propose un marché couvert le samedi matin",
        "Écrivez à marta.l@example.org pour le marché aux vélos",
    ]


async def answered_and_discussed(db, people) -> None:
    """Twelve people answer seven statements in two camps (the first six agree with the
    first four statements, the others with the next two; all agree with the last; one
    passes once), and
    discuss two prompts: buses and rent in English, a market in French with addresses."""
    now = utcnow()
    async with db.sessions.begin() as session:
        statements = [
            Statement(texts={"en": text, "fr": f"(fr) {text}"}, status=APPROVED, sent_at=now)
            for text in STATEMENTS
        ]
        session.add_all(statements)
        await session.flush()
        for n, person in enumerate(people[:12]):
            camp = n < 6
            for k, statement in enumerate(statements):
                vote = 1 if (k < 4) == camp else -1
                vote = 1 if k == 6 else (0 if (n, k) == (0, 1) else vote)
                session.add(
                    StatementVote(statement_id=statement.id, participant_id=person.id, vote=vote)
                )
        prompts = {}
        for key, question in (("priorities", "What should change?"), ("market", "Le marché?")):
            prompts[key] = table_talk.prompt(key, {"en": question, "fr": question}, now)
            session.add(prompts[key])
        await session.flush()
        spoken = [("priorities", "en", 1 + n // 6, t) for n, t in enumerate(BUS + RENT)]
        spoken += [("market", "fr", 3, t) for t in with_addresses(people)]
        for n, (key, language, table, text) in enumerate(spoken):
            pid = people[n % len(people)].id
            session.add(table_talk.said(prompts[key], table, pid, text, language=language))


async def small_assembly(db, relay) -> list[Voter]:
    """Sixteen registered, four drawn and confirmed (two of them on Telegram), a ballot of
    the four voted and closed, both recommendations recorded, one answered, a checkpoint."""
    people, _, result = await draw_panel_of_four(db, "maximin", HALF_WOMEN)
    voters = []
    async with db.sessions.begin() as session:
        entries = {
            e.participant_id: e for e in (await session.execute(select(PoolEntry))).scalars()
        }
        for n, person in enumerate(people):
            entries[person.id].attributes = {
                **entries[person.id].attributes,
                "name": NAMES[n % len(NAMES)],
            }
        for n, pid in enumerate(result.selected):
            if n < len(HANDLES):
                entries[pid].telegram_handle = HANDLES[n]
                address = str(8_123_456_700 + n)
                session.add(Contact(participant_id=pid, channel="telegram", address=address))
                voters.append(Voter(pid, "telegram", address, "en"))
            else:
                voters.append(Voter(pid, "sms", phone_of(pid), "en"))
        await session.execute(
            update(Selection).where(Selection.status == SELECTED).values(status=CONFIRMED)
        )
    for v, text in zip(voters, FREE_TEXT, strict=False):
        await say(relay, v, text)
    await answered_and_discussed(db, people)
    await recorded(db.sessions)
    await opening.open_ballot(relay, "r1")
    for v, choice in zip(voters, ["1", "1", "2", "1"], strict=True):
        await say(relay, v, choice)
        await say(relay, v, "yes")
    await records.close_ballot(relay, "r1")
    await recs.respond(relay, "night-buses", accepted(), now=DAYTIME)
    signer = audit_checkpoints.signer(relay.settings, relay.assembly, secret=b"k" * 32)
    await audit_checkpoints.take(db.sessions, signer)
    return voters, people


async def published(relay, out: Path, min_cell: int = 5) -> dict[str, list[dict]]:
    package = await pub.build(
        relay.sessions,
        publication_writers(),
        assembly=relay.assembly,
        calendar=relay.calendar,
        min_cell=min_cell,
    )
    package.write(out)
    tables = {}
    for resource in package.resources:
        with (out / resource.path).open(encoding="utf-8") as fp:
            tables[resource.name] = list(csv.DictReader(fp))
    return tables


async def what_participants_used(db) -> set[str]:
    """Every address, handle, name and free text the assembly's participants used."""
    found = set(NAMES) | set(HANDLES) | set(FREE_TEXT)
    async with db.sessions() as session:
        for address in (await session.execute(select(Contact.address))).scalars():
            found |= {address, address.lstrip("+")}
        for text in (await session.execute(select(InboundMessage.text))).scalars():
            if len(text) >= 8:  # free text, not a vote or a reply word
                found.add(text)
    return found


async def test_a_small_assembly_publishes_a_valid_package_naming_nobody(
    relay, db, assembly, calendar, tmp_path
):
    voters, people = await small_assembly(db, relay)
    out = tmp_path / "package"
    tables = await published(relay, out)

    report = validate(out / "datapackage.json")
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "message"])

    names = json.loads((out / "datapackage.json").read_text())["resources"]
    assert [r["name"] for r in names] == [
        "assembly",
        "calendar",
        "draws",
        "draw_probabilities",
        "draw_quotas",
        "participation",
        "ballot_results",
        "ballot_receipts",
        "recommendations",
        "recommendation_responses",
        "audit_checkpoint",
        "opinion_statements",
        "opinion_groups",
        "opinion_participants",
        "themes",
        "theme_quotes",
    ]
    # The name in the default language, then in each: readers of every language find theirs.
    (outline,) = tables["assembly"]
    assert outline["name"] == assembly.name == "Riverside Citizens' Jury on Transport"
    assert json.loads(outline["names"])["fr"] == "Jury citoyen de Riverside sur les transports"
    assert json.loads(outline["organisers"])["es"] == "Ayuntamiento de Riverside (ficticio)"
    descriptor = json.loads((out / "datapackage.json").read_text())
    assert descriptor["title"] == assembly.name
    assert "es: Jurado ciudadano de Riverside sobre el transporte" in descriptor["description"]
    assert len(tables["calendar"]) == len(calendar.sessions)
    (draw,) = tables["draws"]
    assert (draw["seed"], draw["algorithm"], draw["respondents"]) == ("2027", "maximin", "16")
    assert len(tables["draw_probabilities"]) == 16
    quotas = {r["value"]: (r["respondents"], r["panel"]) for r in tables["draw_quotas"]}
    assert quotas == {"woman": ("8", "2"), "man": ("8", "2")}  # the panel achieved, whole
    (result,) = tables["ballot_results"]
    assert (result["ballot"], result["voted"], json.loads(result["winners"])) == (
        "r1",
        "4",
        ["yes"],
    )
    assert len(tables["ballot_receipts"]) == 4
    night = next(r for r in tables["recommendations"] if r["recommendation"] == "night-buses")
    assert (night["ballot"], night["response"], night["responded_on"]) == (
        "r1",
        "accepted",
        "2026-12-20",
    )
    assert tables["audit_checkpoint"][0]["signed_note"].startswith("riverside-citizens-jury")
    everything = tables["participation"]
    total = next(r for r in everything if r["category"] == "(all)")
    # A panel of four: too few to show, even in all.
    assert (total["registered"], total["selected"], total["confirmed"]) == (
        "16",
        "suppressed",
        "suppressed",
    )

    opinion_map_and_themes(tables)

    # Quotes are published in the members' own words, with every address removed: the
    # texts that carried one are not published whole, and no address is.
    used = await what_participants_used(db) | set(with_addresses(people))
    assert len(used) > len(voters) * 2
    for path in sorted(out.iterdir()):
        text = path.read_text(encoding="utf-8")
        leaked = sorted(item for item in used if item in text)
        assert leaked == [], f"{path.name} holds {leaked}"


def opinion_map_and_themes(tables) -> None:
    statements = tables["opinion_statements"]
    assert len(statements) == len(STATEMENTS)
    assert json.loads(statements[0]["text"])["en"] == STATEMENTS[0]
    common = [json.loads(s["text"])["en"] for s in statements if s["common_ground"] == "true"]
    assert common == [STATEMENTS[6]]
    groups = {p["group"] for p in tables["opinion_participants"]}
    assert groups == {"A", "B"} and len(tables["opinion_participants"]) == 12
    shares = {(r["statement"], r["group"]): r for r in tables["opinion_groups"]}
    last = statements[6]["statement"]
    assert shares[(last, "A")]["agree"] == "1.0" and shares[(last, "(all)")]["answered"] == "12"
    first = {shares[(statements[0]["statement"], g)]["representative"] for g in "AB"}
    assert first == {"agree", "disagree"}  # it sets both groups apart, each its way

    themes = {(r["prompt"], r["theme"]): r for r in tables["themes"]}
    sizes = sorted(int(r["size"]) for r in tables["themes"] if r["prompt"] == "priorities")
    assert sizes == [6, 6]
    bus = next(r for r in themes.values() if "bus" in json.loads(r["words"]))
    assert json.loads(bus["tables"]) == {"1": 6}
    # Contributions per quota value: six people, three women, hidden below five.
    assert json.loads(bus["categories"]) == {"gender": {"man": "suppressed", "woman": "suppressed"}}
    # No word of an address (a name, a mail domain) becomes a theme's word.
    words = {w for r in tables["themes"] for w in json.loads(r["words"])}
    assert not words & {"priya", "raman", "marta", "lindqvist", "example", "org"}, words
    quotes = [q["quote"] for q in tables["theme_quotes"] if q["prompt"] == "market"]
    assert len(quotes) == 4 and all("[retiré]" in q for q in quotes), quotes  # in French
    assert all(q["pseudonym"].startswith("P") for q in tables["theme_quotes"])


async def test_the_command_lists_the_resources_and_writes_them(db, tmp_path):
    out = tmp_path / "open-data"
    code, stdout, err = await concorder(db, tmp_path, "publish", "--out", str(out), "--dry-run")
    assert code == 0 and "participation" in stdout and "Dry run: nothing written" in stdout, err
    assert not out.exists()
    code, stdout, err = await concorder(db, tmp_path, "publish", "--out", str(out))
    assert code == 0 and "Wrote 17 files" in stdout, err
    assert validate(out / "datapackage.json").valid
    code, stdout, err = await concorder(
        db, tmp_path, "publish", "--out", str(out), "--min-cell", "0"
    )
    assert code == 2 and "--min-cell 0" in err


@pytest.mark.parametrize("min_cell", [5, 2])
async def test_small_cells_and_those_that_give_them_away_are_hidden(sqlite_db, tmp_path, min_cell):
    """Seventeen registered: 9 north, 6 south, 2 centre. The 2 is hidden, and so is the
    south 6, which the total (17) would give away; with --min-cell 2 nothing is."""
    from tests.test_draw import Respondent, registered_pool

    areas = ["north"] * 9 + ["south"] * 6 + ["centre"] * 2
    people = [
        Respondent(
            f"P{n:05d}", f"H{n}", {"area": "x", "region": a, "age": "30-49", "gender": "woman"}
        )
        for n, a in enumerate(areas)
    ]
    await registered_pool(sqlite_db, people, questions=("region", "age", "gender"))
    from bot.bootstrap import build
    from bot.settings import Settings

    relay = build(
        Settings(CONCORDER_DATABASE_URL=sqlite_db.url, _env_file=None), sessions=sqlite_db.sessions
    )
    from flows.assembly import load_assembly
    from tests.conftest import EXAMPLE_ASSEMBLY

    relay.assembly = load_assembly(EXAMPLE_ASSEMBLY / "assembly.toml")
    tables = await published(relay, tmp_path / "p", min_cell=min_cell)
    by_value = {(r["category"], r["value"]): r["registered"] for r in tables["participation"]}
    if min_cell == 5:
        assert by_value[("region", "centre")] == "suppressed"
        assert by_value[("region", "south")] == "suppressed"  # 17 - 9 - x would give it away
        assert by_value[("region", "north")] == "9"
    else:
        assert by_value[("region", "centre")] == "2" and by_value[("region", "south")] == "6"
    assert by_value[("(all)", "(all)")] == "17"
    assert validate(tmp_path / "p" / "datapackage.json").valid


def test_secondary_suppression_hides_a_neighbour_in_every_sum_that_would_give_one_away():
    # Two categories over the same 20 people: a hidden count in one may not be recovered
    # from the shared total, nor through a cell hidden to protect another.
    cells = {"a1": 2, "a2": 8, "a3": 10, "b1": 12, "b2": 8, "all": 20}
    sums = [(["a1", "a2", "a3"], "all"), (["b1", "b2"], "all")]
    assert pub.suppress(cells, sums, 5) == {"a1", "a2"}
    # A cell hidden alone in its sum takes the smallest other count, a non-zero one before
    # a zero, never one published elsewhere; a zero when nothing else is left.
    cells = {"x": 3, "y": 0, "z": 9, "t": 12}
    assert pub.suppress(cells, [(["x", "y", "z"], "t")], 5, public={"t"}) == {"x", "z"}
    cells = {"x": 3, "y": 0, "t": 3}
    assert pub.suppress(cells, [(["x", "y"], "t")], 5, public={"t"}) == {"x", "y"}
    # Chains: hiding b1 to protect ... repeats until no sum holds exactly one hidden cell.
    cells = {"p": 1, "q": 7, "r": 9, "s": 6, "u": 13, "v": 16}
    sums = [(["p", "q"], "s2"), (["q", "r"], "v")]
    hidden = pub.suppress({**cells, "s2": 8}, sums, 5)
    assert hidden == {"p", "q", "r"}
    for parts, total in sums:
        assert sum(k in hidden for k in [*parts, total]) != 1


def test_counts_per_category_over_a_public_total_hide_the_small_and_their_giveaway():
    # Twenty respondents, published whole: three women would be recovered from the men's
    # count, so both read 'suppressed'; the areas' counts are all large enough to show.
    cells = {
        ("gender", "woman"): 3,
        ("gender", "man"): 17,
        ("area", "north"): 12,
        ("area", "south"): 8,
    }
    assert suppression.per_category(cells, 20, 5) == {
        ("gender", "woman"): "suppressed",
        ("gender", "man"): "suppressed",
        ("area", "north"): 12,
        ("area", "south"): 8,
    }
