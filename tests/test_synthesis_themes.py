"""Themes in what the small groups wrote: per prompt and language, each with its size,
words, the tables and quota categories that raised it and quotes by pseudonym; hidden
messages, passes and facilitators' posts left out; and, against the project's labelled set
(tests/data/themes_labelled.csv, en and fr), an agreement printed as a number and better
than chance. The number of themes is the silhouette's choice, never the labels'."""

from __future__ import annotations

import csv
import json
import random
from datetime import timedelta
from pathlib import Path

from sklearn.metrics import normalized_mutual_info_score
from typer.testing import CliRunner

from bot.bootstrap import build_cli
from bot.services.synthesis import contributions, report, themes
from store.deliberation import MESSAGE, PASS, POST
from store.models import Participant, utcnow
from store.recruitment import REGISTERED, Invitation, PoolEntry, RegistrationAnswer
from tests import table_talk
from tests.table_talk import BUS, RENT

LABELLED = Path(__file__).resolve().parent / "data" / "themes_labelled.csv"


async def _world(db) -> None:
    """Two tables talking about one prompt: table 1 about buses (the young), table 2 about
    rent (the old), one French voice, a hidden message, a PASS and a facilitator's post."""
    now = utcnow()
    async with db.sessions.begin() as session:
        prompt = table_talk.prompt(
            "priorities", {"en": "What should change?"}, now + timedelta(hours=1)
        )
        session.add(prompt)
        await session.flush()
        people = []
        for n in range(12):
            pid = f"PT{n:04d}"
            age = "18-29" if n < 6 else "65+"
            session.add(Participant(id=pid, language="en"))
            await session.flush()
            session.add(PoolEntry(participant_id=pid, attributes={"age": age}))
            session.add(
                Invitation(
                    participant_id=pid,
                    code_hash=f"h{n}",
                    channel="sms",
                    language="en",
                    status=REGISTERED,
                )
            )
            session.add(
                RegistrationAnswer(
                    participant_id=pid, question_id="area", answer="north", answered_at=now
                )
            )
            people.append(pid)

        def said(pid, table, text, kind=MESSAGE, language="en", hidden=False):
            hidden_at = now if hidden else None
            session.add(
                table_talk.said(
                    prompt, table, pid, text, language=language, kind=kind, hidden_at=hidden_at
                )
            )

        for pid, text in zip(people[:6], BUS, strict=True):
            said(pid, 1, text)
        for pid, text in zip(people[6:], RENT, strict=True):
            said(pid, 2, text)
        said(people[0], 1, "The rent of my neighbour is nobody's business.", hidden=True)
        said(people[1], 1, "", kind=PASS)
        said(None, 1, "Please keep it short.", kind=POST)
        said(people[2], 1, "Le bus est toujours en retard.", language="fr")


async def test_each_theme_has_its_size_tables_categories_and_quotes(db):
    await _world(db)
    async with db.sessions() as session:
        texts = await contributions.load(session)
    assert sorted(texts) == [("priorities", "en"), ("priorities", "fr")]
    english = texts[("priorities", "en")]
    assert len(english) == 12  # no hidden message, no PASS, no post
    found = themes.find(english, prompt="priorities", language="en")
    assert sorted(t.size for t in found.themes) == [6, 6]
    bus = next(t for t in found.themes if "bus" in t.terms)
    rent = next(t for t in found.themes if "rent" in t.terms)
    assert bus.tables == {1: 6} and rent.tables == {2: 6}
    assert bus.categories["age"] == {"18-29": 6} and rent.categories["age"] == {"65+": 6}
    assert bus.categories["area"] == {"north": 6}
    assert all(p.startswith("PT") and "bus" in q.lower() for p, q in bus.quotes)
    md = report.themes([found], [None], "md")
    assert "Raised at table 1 (6)." in md and "- age: 18-29 (6)" in md
    plain = json.loads(report.themes([found], [None], "json"))
    assert plain[0]["themes"][0]["quotes"][0]["pseudonym"].startswith("PT")


def _labelled() -> dict[str, tuple[list[themes.Text], list[str]]]:
    out: dict[str, tuple[list[themes.Text], list[str]]] = {}
    with LABELLED.open() as f:
        for row in csv.DictReader(f):
            texts, labels = out.setdefault(row["language"], ([], []))
            texts.append(themes.Text(int(row["id"]), f"L{row['id']}", row["text"]))
            labels.append(row["topic"])
    return out


def test_the_labelled_set_is_big_enough_and_bilingual():
    sets = _labelled()
    assert set(sets) == {"en", "fr"}
    for texts, labels in sets.values():
        assert len(texts) >= 120 and len(set(labels)) >= 5
        assert min(labels.count(t) for t in set(labels)) >= 15


def test_themes_agree_with_the_labels_better_than_chance():
    """The measured agreement, printed; chance is the same themes against shuffled labels."""
    rng = random.Random(0)
    for language, (texts, labels) in _labelled().items():
        found = themes.find(texts, prompt="labelled", language=language)
        score = themes.agreement(found, labels)
        shuffled = []
        for _ in range(30):
            mixed = labels[:]
            rng.shuffle(mixed)
            shuffled.append(normalized_mutual_info_score(mixed, found.labels))
        chance = sum(shuffled) / len(shuffled)
        spread = (sum((s - chance) ** 2 for s in shuffled) / len(shuffled)) ** 0.5
        print(f"{language}: {score.themes} themes, ARI {score.ari:.3f}, NMI {score.nmi:.3f}")
        print(f"{language}: NMI by chance {chance:.3f} ± {spread:.3f}")
        assert score.nmi > chance + 4 * spread and score.ari > 0.02


def test_the_command_prints_the_agreement_with_a_labelled_set(tmp_path):
    out = tmp_path / "themes.csv"
    runner = CliRunner()
    result = runner.invoke(
        build_cli(),
        ["synthesize", "themes", "--labelled", str(LABELLED), "--language", "fr"]
        + ["--format", "csv", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "themes_labelled (fr)" in result.output and "NMI" in result.output
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert rows and {r["language"] for r in rows} == {"fr"}
    bad = tmp_path / "bad.csv"
    bad.write_text("language,topic,text\nen,transport,Buses\nen,,No topic here\n")
    result = runner.invoke(build_cli(), ["synthesize", "themes", "--labelled", str(bad)])
    assert result.exit_code == 1 and "bad.csv, line 3" in result.output
