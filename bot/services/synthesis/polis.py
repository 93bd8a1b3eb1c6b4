"""Pol.is's own CSV export, read and written: a conversation held on Pol.is can be mapped
here, and ours on any tool that reads Pol.is exports.

The export is a directory of four files (Pol.is's layout):
- comments.csv: timestamp, datetime, comment-id, author-id, agrees, disagrees, moderated
  (1 accepted, 0 not moderated, -1 rejected), comment-body;
- votes.csv: timestamp, datetime, comment-id, voter-id, vote (1 agree, -1 disagree, 0 pass);
- participants-votes.csv: participant, group-id, n-comments, n-votes, n-agree, n-disagree,
  then one column per comment id holding that participant's vote (empty: unseen);
- summary.csv: key,value lines with no header (topic, url, voters, voters-in-conv,
  commenters, comments, groups, conversation-description).

Reading prefers votes.csv (every vote in time order, the last counting) and takes the
groups Pol.is found from participants-votes.csv's group-id.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

from bot.services.synthesis.opinions import Conversation, OpinionMap

COMMENTS = ("timestamp", "datetime", "comment-id", "author-id", "agrees", "disagrees")
COMMENTS += ("moderated", "comment-body")
VOTES = ("timestamp", "datetime", "comment-id", "voter-id", "vote")
PARTICIPANTS = ("participant", "group-id", "n-comments", "n-votes", "n-agree", "n-disagree")
FILES = ("comments.csv", "votes.csv", "participants-votes.csv", "summary.csv")


class ExportProblem(ValueError):
    """A file of the export that cannot be read, named with its line."""


def _rows(path: Path, wanted: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in wanted if c not in (reader.fieldnames or ())]
        if missing:
            raise ExportProblem(f"{path}, line 1: no column {', '.join(missing)}")
        return [(n, row) for n, row in enumerate(reader, start=2)]


def _int(path: Path, line: int, column: str, value: str | None) -> int:
    try:
        return int(float(value or ""))
    except ValueError:
        raise ExportProblem(f"{path}, line {line}: {column} {value!r} is not a number") from None


def read(directory: str | Path) -> Conversation:
    folder = Path(directory)
    if not (folder / "comments.csv").is_file():
        raise ExportProblem(f"{folder}: no comments.csv (is this a Pol.is export?)")
    conv = Conversation(statements={}, votes={})
    path = folder / "comments.csv"
    for n, row in _rows(path, COMMENTS):
        cid = _int(path, n, "comment-id", row["comment-id"])
        conv.statements[cid] = row["comment-body"]
        conv.authors[cid] = row["author-id"]
        conv.moderated[cid] = _int(path, n, "moderated", row["moderated"] or "0")
    if (folder / "votes.csv").is_file():
        _read_votes(folder / "votes.csv", conv)
    if (folder / "participants-votes.csv").is_file():
        _read_matrix(folder / "participants-votes.csv", conv, votes=not conv.votes)
    if not conv.votes:
        raise ExportProblem(f"{folder}: neither votes.csv nor participants-votes.csv has a vote")
    conv.topic = read_summary(folder).get("topic", "")
    return conv


def _read_votes(path: Path, conv: Conversation) -> None:
    rows = _rows(path, VOTES)
    rows.sort(key=lambda nr: (_int(path, nr[0], "timestamp", nr[1]["timestamp"] or "0"), nr[0]))
    for n, row in rows:
        vote = _int(path, n, "vote", row["vote"])
        if vote not in (-1, 0, 1):
            raise ExportProblem(f"{path}, line {n}: vote {vote} is not 1, -1 or 0")
        conv.votes[(row["voter-id"], _int(path, n, "comment-id", row["comment-id"]))] = vote


def _read_matrix(path: Path, conv: Conversation, *, votes: bool) -> None:
    for n, row in _rows(path, PARTICIPANTS):
        who = row["participant"]
        if (row.get("group-id") or "").strip():
            conv.their_groups[who] = _int(path, n, "group-id", row["group-id"])
        if not votes:
            continue
        for column, value in row.items():
            if column and column.isdigit() and (value or "").strip():
                conv.votes[(who, int(column))] = _int(path, n, column, value)


def read_summary(folder: Path) -> dict[str, str]:
    path = folder / "summary.csv"
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8-sig") as f:
        return {row[0]: row[1] for row in csv.reader(f) if len(row) >= 2}


def _when(moment: datetime) -> tuple[int, str]:
    """Seconds since the epoch, and the date as Pol.is writes it (JavaScript's)."""
    utc = moment.astimezone(UTC)
    text = utc.strftime("%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)")
    return int(utc.timestamp()), text


def write(
    directory: str | Path,
    conv: Conversation,
    result: OpinionMap | None = None,
    *,
    when: datetime | None = None,
) -> list[Path]:
    """The four files; participants-votes.csv's group-id holds our groups when mapped."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    stamp, text = _when(when or datetime.now(UTC))
    statements = sorted(conv.statements)
    agrees = {s: 0 for s in statements}
    disagrees = {s: 0 for s in statements}
    for (_, s), vote in conv.votes.items():
        if s in agrees:
            agrees[s] += vote == 1
            disagrees[s] += vote == -1
    with (folder / "comments.csv").open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(COMMENTS)
        for s in statements:
            author = conv.authors.get(s, "")
            moderated = conv.moderated.get(s, 1)
            out.writerow(
                [stamp, text, s, author, agrees[s], disagrees[s], moderated, conv.statements[s]]
            )
    with (folder / "votes.csv").open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(VOTES)
        for (who, s), vote in sorted(conv.votes.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            out.writerow([stamp, text, s, who, vote])
    groups = {}
    if result is not None:
        groups = {p: int(g) for p, g in zip(result.participants, result.labels, strict=True)}
    people = conv.participants
    with (folder / "participants-votes.csv").open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow([*PARTICIPANTS, *statements])
        for who in people:
            mine = [conv.votes.get((who, s)) for s in statements]
            cast = [v for v in mine if v is not None]
            written = sum(1 for a in conv.authors.values() if a == who)
            out.writerow(
                [who, groups.get(who, ""), written, len(cast), cast.count(1), cast.count(-1)]
                + ["" if v is None else v for v in mine]
            )
    summary = [
        ("topic", conv.topic),
        ("url", ""),
        ("voters", len(people)),
        ("voters-in-conv", len(people)),
        ("commenters", len({a for a in conv.authors.values() if a})),
        ("comments", len(statements)),
        ("groups", len(result.groups) if result is not None else 0),
        ("conversation-description", conv.topic),
    ]
    with (folder / "summary.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(summary)
    return [folder / name for name in FILES]
