"""The recommendations tracker: recommendations recorded with their vote, the authority's
responses as versions, and the confirmed panel told of each response in their language,
once, outside their quiet hours, in the transaction that records it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from bot.services import recommendations as recs
from store.models import AuditEvent, OutboxMessage, Participant
from store.recommendations import RecommendationResponse
from store.recruitment import RESERVE, Selection
from tests.ballot_world import LANGUAGES, panel, voter
from tests.recommendation_world import DAYTIME, PARTLY, accepted, partly, recorded
from tests.test_draw import concorder

PANEL = [voter(1, "sms", "en"), voter(2, "telegram", "fr"), voter(3, "sms", "es")]


async def _messages(db) -> list[OutboxMessage]:
    async with db.sessions() as session:
        return list(
            (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        )


async def _with_panel(db) -> None:
    """Three confirmed members, one confirmed who opted out, one on the reserve list."""
    out, reserve = voter(4, "sms"), voter(5, "telegram")
    await panel(db.sessions, [*PANEL, out, reserve])
    async with db.sessions.begin() as session:
        (await session.get(Participant, out.id)).opted_out = True
        row = (
            await session.execute(select(Selection).where(Selection.participant_id == reserve.id))
        ).scalar_one()
        row.status = RESERVE
    await recorded(db.sessions)


async def test_a_response_tells_each_confirmed_member_in_their_language(relay, db):
    await _with_panel(db)
    done = await recs.respond(relay, "night-buses", accepted(), now=DAYTIME)
    assert (done.version, done.recipients, done.not_reached) == (1, 3, 1)
    by_person = {m.participant_id: m for m in await _messages(db)}
    assert set(by_person) == {v.id for v in PANEL}  # not the opted out, not the reserve
    assert by_person[PANEL[0].id].text.startswith(
        'The authority has responded to the assembly\'s recommendation 1, "Night buses", on '
        "December 20, 2026: accepted.\nThe council will fund night buses from March."
    )
    assert "« Bus de nuit » : acceptée." in by_person[PANEL[1].id].text
    assert '"Autobuses nocturnos": aceptada.' in by_person[PANEL[2].id].text
    assert all(m.kind == "recommendation" and m.not_before == DAYTIME for m in by_person.values())
    async with db.sessions() as session:
        event = (
            await session.execute(select(AuditEvent).where(AuditEvent.kind == recs.RESPONDED))
        ).scalar_one()
    assert event.data["recipients"] == 3 and event.data["status"] == "accepted"
    assert "council" not in str(event.data)  # the text is in the record, its hash in the trail


async def test_a_response_at_night_waits_for_the_end_of_quiet_hours(relay, db):
    await _with_panel(db)
    night = datetime(2026, 12, 21, 23, 30, tzinfo=UTC)
    done = await recs.respond(relay, "night-buses", accepted(), now=night)
    assert done.held == 3
    assert {m.not_before for m in await _messages(db)} == {datetime(2026, 12, 22, 8, tzinfo=UTC)}


async def test_a_changed_response_names_the_version_it_replaces(relay, db):
    await _with_panel(db)
    await recs.respond(relay, "night-buses", accepted(), now=DAYTIME)
    with pytest.raises(recs.RecommendationProblem, match="give --replaces 1"):
        await recs.respond(relay, "night-buses", partly(), now=DAYTIME)
    with pytest.raises(recs.RecommendationProblem, match="has no response yet"):
        await recs.respond(relay, "free-under-18", partly(), replaces=1, now=DAYTIME)
    done = await recs.respond(relay, "night-buses", partly(), replaces=1, now=DAYTIME)
    assert done.version == 2
    english = [m.text for m in await _messages(db) if m.participant_id == PANEL[0].id]
    assert len(english) == 2 and "changed its response" in english[1]
    assert "now partly accepted.\nNight buses will run on two of the four lines" in english[1]
    async with db.sessions() as session:
        tracked = {t.recommendation.id: t for t in await recs.tracker(session)}
    assert tracked["night-buses"].status == "partly" and len(tracked["night-buses"].responses) == 2
    assert tracked["free-under-18"].status == "awaiting"


async def test_two_organisers_responding_at_once_record_one_response_and_one_message_each(
    relay, db
):
    await _with_panel(db)
    outcomes = await asyncio.gather(
        recs.respond(relay, "night-buses", accepted(), now=DAYTIME),
        recs.respond(relay, "night-buses", partly(), now=DAYTIME),
        return_exceptions=True,
    )
    done = [o for o in outcomes if isinstance(o, recs.Responded)]
    refused = [o for o in outcomes if isinstance(o, recs.RecommendationProblem)]
    assert len(done) == 1 and len(refused) == 1, outcomes
    async with db.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(RecommendationResponse))
    assert count == 1
    messages = await _messages(db)
    assert sorted(m.participant_id for m in messages) == sorted(v.id for v in PANEL)


async def test_a_dry_run_tells_nobody_and_records_nothing(relay, db):
    await _with_panel(db)
    done = await recs.respond(relay, "night-buses", accepted(), dry_run=True, now=DAYTIME)
    assert done.recipients == 3 and set(done.samples) == {"en", "fr", "es"}
    assert await _messages(db) == []
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(RecommendationResponse)) == 0


def test_files_name_their_mistakes(tmp_path):
    bad = tmp_path / "recs.toml"
    bad.write_text(
        '[[recommendations]]\nid = "a"\ntitle = { en = "A" }\ntext = { en = "x", fr = "y" }\n'
        '\n[[recommendations]]\nid = "Bad id"\ntitle = { en = "B" }\ntext = { en = "z" }\n'
    )
    with pytest.raises(recs.RecommendationError) as caught:
        recs.load_recommendations(bad, LANGUAGES)
    problems = "\n".join(caught.value.problems)
    assert "recommendations #2 (id 'Bad id') > id (line 7): String should match" in problems
    bad.write_text('[[recommendations]]\nid = "a"\ntitle = { en = "A" }\ntext = { en = "x" }\n')
    with pytest.raises(recs.RecommendationError) as caught:
        recs.load_recommendations(bad, LANGUAGES)
    assert caught.value.problems == [
        "recommendations #1 (id 'a') (line 1) > title: no text in fr, es",
        "recommendations #1 (id 'a') (line 1) > text: no text in fr, es",
    ]
    md = tmp_path / "response.md"
    md.write_text("Intro\n## en\nYes.\n## de\nJa.\n")
    with pytest.raises(recs.RecommendationError) as caught:
        recs.load_response(md, LANGUAGES)
    assert caught.value.problems == [
        "line 1: text before the first language heading (## en)",
        "section 'de': not a language of the assembly",
    ]
    with pytest.raises(recs.RecommendationError) as caught:
        recs.response_of(recs.load_response(PARTLY, LANGUAGES), "maybe", None, None, LANGUAGES)
    assert caught.value.problems == [
        "status 'maybe': use one of accepted, partly, rejected, pending",
        "no date: give --date YYYY-MM-DD (the authority's date)",
    ]


async def test_the_commands_add_respond_list_and_show(db, tmp_path):
    from tests.recommendation_world import ACCEPTED, RECOMMENDATIONS

    await panel(db.sessions, PANEL)
    code, out, err = await concorder(db, tmp_path, "recommendation", "add", str(RECOMMENDATIONS))
    assert code == 1 and "night-buses: no ballot 'r1'" in err
    from tests.ballot_world import create_ballots

    await create_ballots(db.sessions)
    args = ("recommendation", "add", str(RECOMMENDATIONS))
    code, out, err = await concorder(db, tmp_path, *args, "--dry-run")
    assert code == 0 and "Night buses" in out and "Dry run: nothing stored." in out, err
    code, out, err = await concorder(db, tmp_path, *args)
    assert code == 0 and "Recorded 2 recommendation(s)." in out, err
    code, out, err = await concorder(db, tmp_path, *args)
    assert code == 1 and "night-buses: already recorded" in err

    respond = ("recommendation", "respond", "night-buses", "--file", str(ACCEPTED))
    code, out, err = await concorder(db, tmp_path, *respond, "--dry-run")
    assert code == 0 and "Dry run: nothing recorded, nobody told." in out, err
    assert "acceptée" in out and await _messages(db) == []
    code, out, err = await concorder(db, tmp_path, *respond, "--status", "rejected")
    assert code == 2 and "--status rejected but the file says accepted" in err
    code, out, err = await concorder(db, tmp_path, *respond)
    assert code == 0 and "3 panel member(s) will be told" in out, err
    assert len(await _messages(db)) == 3
    code, out, err = await concorder(db, tmp_path, "recommendation", "list")
    assert code == 0 and "accepted" in out and "r1 (draft)" in out and "awaiting" in out, err
    code, out, err = await concorder(
        db, tmp_path, "recommendation", "show", "night-buses", "--language", "fr"
    )
    assert code == 0 and "Le conseil financera" in out, err
    code, out, err = await concorder(db, tmp_path, "recommendation", "show", "nope")
    assert code == 1 and "no recommendation 'nope'" in err
