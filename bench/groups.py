"""Benchmark of the small-group tables: a confirmed panel of 100-150 people, 4 quota
categories, two languages, tables of 6, several rounds.

For each panel: our seeded swap search against the two baselines computed in the same run
from the same inputs and seed (one random allocation; the best of 100 random shuffles per
round by the same score, as the Sortition Foundation's GroupSelect does), with the score,
the sum of squared deviations from an even mix, the largest deviation at any table and
the repeat meetings (lower is better for all), and the time each took.

The figures depend on the machine and on what else runs on it: the run prints the load
average at its start and end.

Usage: .venv/bin/python -m bench.groups [--people 100 150] [--rounds 4] [--seed 2026]
"""

from __future__ import annotations

import argparse
import os
import random
import time

from rich.console import Console
from rich.table import Table

from bot.services.groups.allocate import (
    Member,
    Problem,
    best_of_shuffles,
    layout_of,
    random_allocation,
    search,
)

CATEGORIES = {
    "age": ["16-29", "30-44", "45-64", "65+"],
    "gender": ["woman", "man"],
    "area": ["north", "south", "east", "west", "centre"],
    "education": ["school", "college", "degree"],
}


def panel(people: int, seed: int) -> tuple[Member, ...]:
    """A panel such as a draw gives: uneven shares, a fifth speaking French."""
    rng = random.Random(seed)
    weights = {c: [rng.uniform(0.5, 2) for _ in v] for c, v in CATEGORIES.items()}
    return tuple(
        Member(
            f"P{i:05d}",
            "fr" if rng.random() < 0.2 else "en",
            {c: rng.choices(v, weights[c])[0] for c, v in CATEGORIES.items()},
        )
        for i in range(people)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, nargs="+", default=[100, 150])
    parser.add_argument("--size", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seed", default="2026")
    args = parser.parse_args()
    console = Console()
    console.print(f"load average at start: {os.getloadavg()[0]:.2f}")
    view = Table(title="Small-group tables: ours against two baselines (lower is better)")
    for column in ("people", "allocation", "score", "mix", "max deviation", "repeats", "time"):
        view.add_column(column, justify="left" if column == "allocation" else "right")
    for people in args.people:
        problem = Problem(
            panel(people, people), tuple(CATEGORIES), args.size, args.rounds, args.seed
        )
        layout = layout_of(problem)
        for name, run in (
            ("random", random_allocation),
            ("best of 100 shuffles", best_of_shuffles),
            ("ours (swap search)", search),
        ):
            start = time.perf_counter()
            quality = run(layout, args.seed).quality
            took = time.perf_counter() - start
            view.add_row(
                str(people),
                name,
                f"{quality.score:.1f}",
                f"{quality.mix:.1f}",
                f"{quality.max_deviation:.2f}",
                str(quality.repeats),
                f"{took:.2f} s",
            )
        view.add_section()
    console.print(view)
    console.print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
