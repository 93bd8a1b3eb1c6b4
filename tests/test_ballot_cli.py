"""`concorder ballot` as organisers use it: create (a bad file named by line), open and close
with --dry-run, status (turnout only while open), results as a table, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json

from sqlalchemy import func, select

from store.ballots import Ballot, BallotVote
from store.models import OutboxMessage
from tests.ballot_world import BALLOTS_FILE, panel, say, voter
from tests.test_draw import concorder


async def _count(db, model) -> int:
    async with db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_create_open_vote_close_and_results(relay, db, tmp_path):
    code, out, err = await concorder(
        db, tmp_path, "ballot", "create", str(BALLOTS_FILE), "--dry-run"
    )
    assert code == 0, err
    assert "first" in out and "ranking" in out and "Dry run: nothing stored." in out
    assert await _count(db, Ballot) == 0
    code, out, err = await concorder(db, tmp_path, "ballot", "create", str(BALLOTS_FILE))
    assert code == 0 and out.count("created") == 6, err

    code, out, err = await concorder(db, tmp_path, "ballot", "open", "first")
    assert code == 1 and "Nobody may vote in first" in err
    voters = [voter(n, "sms") for n in range(1, 5)]
    await panel(db.sessions, voters)
    code, out, err = await concorder(db, tmp_path, "ballot", "open", "first", "--dry-run")
    assert code == 0 and "4 voters would be asked" in out, err
    assert await _count(db, OutboxMessage) == 0
    code, out, err = await concorder(db, tmp_path, "ballot", "open", "first")
    assert code == 0 and "4 voters, 4 asked" in out, err

    for v, reply in zip(voters[:3], ["1", "1", "3"], strict=True):
        await say(relay, v, reply)
        await say(relay, v, "yes")
    code, out, err = await concorder(db, tmp_path, "ballot", "status", "first")
    assert code == 0, err
    assert "open" in out and "75%" in out and "bus" not in out.lower()
    code, out, err = await concorder(db, tmp_path, "ballot", "results", "first")
    assert code == 1 and "results are hidden until it closes" in err

    code, out, err = await concorder(db, tmp_path, "ballot", "close", "first", "--dry-run")
    assert code == 0 and "3 of 4 have voted" in out, err
    code, out, err = await concorder(db, tmp_path, "ballot", "close", "first", "--vacuum-full")
    assert code == 0 and "3 of 4 voted" in out, err

    code, out, err = await concorder(db, tmp_path, "ballot", "results", "first")
    assert code == 0, err
    assert "Winner(s): More buses" in out and "Receipts" in out
    code, out, err = await concorder(db, tmp_path, "ballot", "results", "first", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sorted(r["choice"] for r in rows) == ["More buses", "More buses", "Wider pavements"]
    assert await _count(db, BallotVote) == 3
    code, out, err = await concorder(db, tmp_path, "ballot", "results", "first", "--format", "json")
    results = json.loads(out)
    assert results["tally"]["winners"] == ["bus"] and results["voted"] == 3
    code, out, err = await concorder(db, tmp_path, "ballot", "results", "first", "--format", "pdf")
    assert code == 1 and "one of table, csv, json" in err


async def test_a_bad_definition_is_named_by_place_and_line(db, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[ballots]]\nid = "x"\ntitle = { en = "T" }\nquestion = { en = "Q" }\n'
        'method = "borda"\n\n[[ballots]]\nid = "y"\ntitle = { en = "T" }\n'
        'question = { en = "Q" }\nmethod = "single"\noptions = []\nquorum = 1.5\n'
    )
    code, out, err = await concorder(db, tmp_path, "ballot", "create", str(bad))
    assert code == 1
    assert "ballots #1 (id 'x') (line 1): method 'borda': choose one of yes_no" in err
    assert "ballots #2 (id 'y') (line 7): give at least two options" in err
    bad.write_text(
        '[[ballots]]\nid = "x"\ntitle = { en = "T", es = "T" }\n'
        'question = { en = "Q" }\nmethod = "yes_no"\n'
    )
    code, out, err = await concorder(db, tmp_path, "ballot", "create", str(bad))
    assert code == 1 and "ballots #1 (id 'x') > title: no text in 'fr'" in err
    code, out, err = await concorder(db, tmp_path, "ballot", "status", "nope")
    assert code == 1 and "No ballot 'nope'" in err


async def test_results_show_each_methods_details(relay, db, tmp_path):
    code, out, err = await concorder(db, tmp_path, "ballot", "create", str(BALLOTS_FILE))
    voters = [voter(n, "sms") for n in range(1, 4)]
    await panel(db.sessions, voters)
    for ballot, replies, shown in [
        ("order", ["3 1", "3 2 1", "1"], ["pairwise (row over column)", "Winner(s): Night buses"]),
        ("agree", ["4", "5", "2"], ["Threshold (4/5 at level 4 or more): NOT met, 67%"]),
    ]:
        code, out, err = await concorder(db, tmp_path, "ballot", "open", ballot)
        assert code == 0, err
        for v, reply in zip(voters, replies, strict=True):
            await say(relay, v, reply)
            await say(relay, v, "yes")
        code, out, err = await concorder(db, tmp_path, "ballot", "close", ballot)
        code, out, err = await concorder(db, tmp_path, "ballot", "results", ballot)
        assert code == 0, err
        for expected in shown:
            assert expected in out
