"""Writes tests/data/polis-planted/: a made-up conversation in Pol.is's export layout, with
three opinion groups planted (its group-id column), for the opinion map's tests and for
trying `concorder synthesize opinions --from-polis`.

No public Pol.is export (compdem/openData) could be had where this project is built, so
the fixture is generated; the layout follows Pol.is's own export (comments.csv, votes.csv,
participants-votes.csv, summary.csv). It is written here with the csv module alone, not
with bot/services/synthesis/polis.py, so reading it tests the reader against the layout.

    .venv/bin/python tests/data/make_polis_planted.py
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent / "polis-planted"
STATEMENTS = [
    "Buses should be free for everyone under 18.",
    "The town centre should be closed to cars on Saturdays.",
    "Cycle lanes matter more than parking spaces.",
    "Fuel taxes should pay for public transport.",
    "Parking in the centre should stay free.",
    "New roads are the best way to cut traffic jams.",
    "Speed cameras are mostly a way to raise money.",
    "Delivery vans need more loading bays in the centre.",
    "Villages need a bus at least every hour.",
    "Rural roads should be repaired before city ones.",
    "Pavements should be safe for wheelchairs and buggies.",
    "Bus timetables should be easier to read.",
]
# Each group's chance to agree (else disagree) per statement; None: mostly pass.
STANCE = {
    0: [0.9, 0.9, 0.85, 0.8, 0.1, 0.1, 0.2, 0.3, 0.5, 0.3, 0.9, 0.85],
    1: [0.15, 0.1, 0.1, 0.15, 0.9, 0.85, 0.8, 0.8, 0.4, 0.5, 0.85, 0.8],
    2: [0.5, 0.3, 0.3, 0.2, 0.5, 0.6, 0.5, 0.4, 0.95, 0.9, 0.9, 0.9],
}
SIZES = {0: 26, 1: 20, 2: 14}
T0 = 1_700_000_000


def when(stamp: int) -> str:
    import time

    return time.strftime(
        "%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)", time.gmtime(stamp)
    )


def main() -> None:
    rng = random.Random(14)
    people = [(pid, g) for pid, g in enumerate(g for g, n in SIZES.items() for _ in range(n))]
    rng.shuffle(people)
    people = [(pid, g) for pid, (_, g) in enumerate(people)]
    votes = []  # (timestamp, comment, voter, vote)
    stamp = T0
    for pid, group in people:
        seen = range(len(STATEMENTS)) if pid % 9 else rng.sample(range(len(STATEMENTS)), 4)
        for cid in seen:
            stamp += rng.randint(1, 40)
            roll = rng.random()
            vote = 0 if roll < 0.08 else (1 if rng.random() < STANCE[group][cid] else -1)
            votes.append((stamp, cid, pid, vote))
    # Two people change their mind later: the later vote counts.
    for pid in (3, 7):
        stamp += 100
        first = next(v for v in votes if v[2] == pid)
        votes.append((stamp, first[1], pid, -first[3] if first[3] else 1))
    last = {}
    for _, cid, pid, vote in votes:
        last[(pid, cid)] = vote
    OUT.mkdir(exist_ok=True)
    with (OUT / "comments.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "timestamp",
                "datetime",
                "comment-id",
                "author-id",
                "agrees",
                "disagrees",
                "moderated",
                "comment-body",
            ]
        )
        for cid, text in enumerate(STATEMENTS):
            agrees = sum(1 for (p, c), v in last.items() if c == cid and v == 1)
            disagrees = sum(1 for (p, c), v in last.items() if c == cid and v == -1)
            w.writerow([T0 + cid, when(T0 + cid), cid, 0, agrees, disagrees, 1, text])
        w.writerow(
            [
                T0 + 99,
                when(T0 + 99),
                len(STATEMENTS),
                5,
                0,
                0,
                -1,
                "An off-topic comment a moderator rejected.",
            ]
        )
    with (OUT / "votes.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "datetime", "comment-id", "voter-id", "vote"])
        for s, cid, pid, vote in sorted(votes, key=lambda v: (-v[0], v[1])):  # newest first
            w.writerow([s, when(s), cid, pid, vote])
    with (OUT / "participants-votes.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "participant",
                "group-id",
                "n-comments",
                "n-votes",
                "n-agree",
                "n-disagree",
                *range(len(STATEMENTS) + 1),
            ]
        )
        for pid, group in people:
            mine = [last.get((pid, c)) for c in range(len(STATEMENTS) + 1)]
            cast = [v for v in mine if v is not None]
            grouped = len(cast) >= 7
            w.writerow(
                [
                    pid,
                    group if grouped else "",
                    0,
                    len(cast),
                    cast.count(1),
                    cast.count(-1),
                    *["" if v is None else v for v in mine],
                ]
            )
    with (OUT / "summary.csv").open("w", newline="") as f:
        w = csv.writer(f)
        for row in [
            ("topic", "Getting around town (made-up conversation)"),
            ("url", ""),
            ("voters", len(people)),
            ("voters-in-conv", len(people)),
            ("commenters", 1),
            ("comments", len(STATEMENTS) + 1),
            ("groups", len(SIZES)),
            ("conversation-description", "Three planted opinion groups, for tests."),
        ]:
            w.writerow(row)


if __name__ == "__main__":
    main()
