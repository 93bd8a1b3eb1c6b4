"""The opinion map: planted opinion groups are found, what sets each apart and the common
ground are reported; Pol.is's export layout is read (the last vote counting, rejected
comments left out, errors naming file and line) and written so that it reads back the
same; the command prints how close our groups come to the export's and draws the map."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score
from typer.testing import CliRunner

from bot.bootstrap import build_cli
from bot.services.synthesis import opinions, polis, report
from bot.services.synthesis.opinions import Conversation

PLANTED = Path(__file__).resolve().parent / "data" / "polis-planted"
AGREE_ALL = 8  # statement every group agrees with
SPLIT = 9  # statement where groups 0 and 1 disagree with each other, group 2 is unsure


def planted(seed: int = 1, sizes=(20, 15, 12), noise: float = 0.1) -> tuple[Conversation, dict]:
    """Three groups, each agreeing with its own statements (two apiece) and disagreeing
    with the others'; all agree with AGREE_ALL; a few answers missing; some noise."""
    rng = np.random.default_rng(seed)
    conv = Conversation(statements={s: f"Statement {s}" for s in range(10)}, votes={})
    truth = {}
    for group, size in enumerate(sizes):
        for n in range(size):
            who = f"P{group}{n:03d}"
            truth[who] = group
            for s in range(10):
                if s < 6:
                    vote = 1 if s // 2 == group else -1
                elif s == AGREE_ALL:
                    vote = 1
                elif s == SPLIT:
                    vote = {0: 1, 1: -1, 2: 0}[group]
                else:
                    vote = int(rng.choice([1, -1, 0]))
                if rng.random() < noise:
                    vote = int(rng.choice([1, -1, 0]))
                if rng.random() < 0.05 and s != AGREE_ALL:
                    continue  # not seen
                conv.votes[(who, s)] = vote
    return conv, truth


def test_planted_groups_are_found_with_what_sets_them_apart():
    conv, truth = planted()
    result = opinions.build(conv)
    assert len(result.groups) == 3
    ours = [int(g) for g in result.labels]
    assert adjusted_rand_score([truth[p] for p in result.participants], ours) > 0.9
    for group in result.groups:
        planted_group = Counter(truth[m] for m in group.members).most_common(1)[0][0]
        top = group.representative[0]
        # Its own statements, agreed with, another group's, disagreed with, or its own
        # side of the split.
        own = top.statement // 2 == planted_group and top.direction == "agree"
        other = top.statement < 6 and top.direction == "disagree"
        side = (top.statement, planted_group, top.direction) in {
            (SPLIT, 0, "agree"),
            (SPLIT, 1, "disagree"),
        }
        assert own or other or side, (planted_group, top)
        assert top.share > 0.7 and top.versus_rest > 1.5
    common = [c.statement for c in result.consensus if c.common_ground]
    assert common == [AGREE_ALL]
    assert result.consensus[0].statement == AGREE_ALL
    assert SPLIT not in common


def test_people_with_too_few_answers_are_left_out_of_the_groups():
    conv, _ = planted()
    for s in range(3, 10):
        conv.votes.pop(("P0000", s), None)
    result = opinions.build(conv)
    assert "P0000" not in result.participants and result.left_out == 1


def test_too_few_answers_for_a_map_says_so():
    conv = Conversation(statements={1: "a", 2: "b"}, votes={("p", 1): 1, ("q", 2): -1})
    with pytest.raises(ValueError, match="Too few answers"):
        opinions.build(conv)


def _matrix_votes(folder: Path) -> dict[tuple[str, int], int]:
    with (folder / "participants-votes.csv").open() as f:
        rows = list(csv.DictReader(f))
    return {
        (r["participant"], int(c)): int(v)
        for r in rows
        for c, v in r.items()
        if c.isdigit() and v != ""
    }


def test_a_polis_export_is_read_with_the_last_vote_counting():
    conv = polis.read(PLANTED)
    assert conv.topic.startswith("Getting around town")
    assert conv.votes == _matrix_votes(PLANTED)  # votes.csv, newest first, read oldest first
    assert conv.moderated[12] == -1
    result = opinions.build(conv)
    assert 12 not in result.statements  # rejected by the moderators
    assert result.compared == len(result.participants) > 40
    assert result.agreement_with_theirs is not None and result.agreement_with_theirs > 0.5


def test_our_export_reads_back_the_same(tmp_path):
    conv = polis.read(PLANTED)
    result = opinions.build(conv)
    polis.write(tmp_path, conv, result)
    again = polis.read(tmp_path)
    assert again.votes == conv.votes and again.statements == conv.statements
    assert again.moderated == conv.moderated
    ours = {p: int(g) for p, g in zip(result.participants, result.labels, strict=True)}
    assert again.their_groups == ours
    assert _matrix_votes(tmp_path) == conv.votes
    with (tmp_path / "summary.csv").open() as f:
        summary = dict(csv.reader(f))
    assert summary["groups"] == str(len(result.groups)) and summary["comments"] == "13"


def test_a_bad_export_names_its_file_and_line(tmp_path):
    shutil.copytree(PLANTED, tmp_path / "x")
    votes = tmp_path / "x" / "votes.csv"
    lines = votes.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ",7"
    votes.write_text("\n".join(lines) + "\n")
    with pytest.raises(polis.ExportProblem, match=r"votes.csv, line 4: vote 7"):
        polis.read(tmp_path / "x")
    with pytest.raises(polis.ExportProblem, match="no comments.csv"):
        polis.read(tmp_path)


def test_the_reports_in_every_format_name_groups_and_common_ground():
    conv, _ = planted()
    result = opinions.build(conv)
    md = report.opinions(result, "md", "Planted")
    assert "## Group A" in md and "## Common ground" in md and "Statement 8" in md
    plain = json.loads(report.opinions(result, "json"))
    assert [g["size"] for g in plain["groups"]] == sorted(
        (g["size"] for g in plain["groups"]), reverse=True
    )
    assert [c["statement"] for c in plain["consensus"] if c["common_ground"]] == [AGREE_ALL]
    rows = list(csv.DictReader(report.opinions(result, "csv").splitlines()))
    assert {r["kind"] for r in rows} == {"representative", "consensus", "common_ground"}


def test_the_command_maps_an_export_prints_the_agreement_and_draws(tmp_path):
    runner = CliRunner()
    chart, out = tmp_path / "map.svg", tmp_path / "ours"
    result = runner.invoke(
        build_cli(),
        [
            "synthesize",
            "opinions",
            "--from-polis",
            str(PLANTED),
            "--format",
            "json",
            "--chart",
            str(chart),
            "--export-polis",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "adjusted Rand index" in result.output
    start = result.output.index("{")
    plain = json.loads(result.output[start : result.output.rindex("}") + 1])
    assert plain["compared_with_export"]["adjusted_rand_index"] > 0.5
    assert "<svg" in chart.read_text()
    assert sorted(p.name for p in out.iterdir()) == sorted(polis.FILES)
    bad = runner.invoke(
        build_cli(), ["synthesize", "opinions", "--from-polis", str(PLANTED), "--chart", "x.gif"]
    )
    assert bad.exit_code == 1 and "x.gif" in bad.output
