"""Benchmark of the stratified draw: 2,000 respondents, 150 seats, 4 categories.

For each algorithm: the time of one draw and the lowest selection probability, side by
side. maximin (and nash) compute the distribution over panels, so their probabilities are
exact; legacy draws person by person and computes none, so its lowest probability is
estimated from repeated draws with different seeds (the share of draws each person is in).
leximin needs the commercial Gurobi solver and is listed as unavailable without it.

maximin solves one integer program per respondent before it optimises; on a small machine
2,000 respondents can take longer than the time budget, in which case the run is stopped
and the table says how far it got and how long the first phase would take at that pace.

A smaller comparison (200 respondents, 20 seats) follows, where maximin finishes.

Usage: .venv/bin/python bench/select.py [--budget 45] [--legacy-budget 25] [--nash]
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the standard library's `select` module: take its folder off the
# path before anything imports that module, and put the project root on instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from typing import Any  # noqa: E402

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bot import draw  # noqa: E402

RESPONDENTS, SEATS = 2000, 150
# Four categories with uneven shares, as in a real recruitment pool.
CATEGORIES = {
    "age": {"16-29": 0.22, "30-49": 0.33, "50-64": 0.25, "65+": 0.20},
    "gender": {"woman": 0.51, "man": 0.47, "other": 0.02},
    "education": {"school": 0.35, "college": 0.30, "degree": 0.35},
    "area": {"north": 0.30, "south": 0.25, "east": 0.25, "west": 0.20},
}
# Registration skews: graduates and older people answer more; the quotas correct it.
RESPONSE_SKEW = {"degree": 1.6, "school": 0.6, "65+": 1.4, "16-29": 0.7}

console = Console(width=150)


def synthetic_pool(size: int = RESPONDENTS, seed: int = 2026) -> list[draw.Respondent]:
    rng = random.Random(seed)
    people = []
    for i in range(size):
        attributes = {}
        for category, shares in CATEGORIES.items():
            weights = [share * RESPONSE_SKEW.get(value, 1.0) for value, share in shares.items()]
            attributes[category] = rng.choices(list(shares), weights)[0]
        household = f"h{i // 2}" if i % 10 < 2 else f"h-solo-{i}"  # one in ten live in pairs
        people.append(draw.Respondent(f"P{i:05d}", household, attributes))
    return people


def population_quotas(seats: int = SEATS, tolerance: float = 0.15) -> draw.Quotas:
    """Quotas from the population shares (not the pool's), within +/- tolerance."""
    spec = {category: {value: {"min": int(share * seats * (1 - tolerance)),
                               "max": int(share * seats * (1 + tolerance)) + 1}
                       for value, share in shares.items()}
            for category, shares in CATEGORIES.items()}
    return draw.quota_bounds(spec, seats)


class Tracker:
    """Remembers how far a solve got, for a run stopped at the time limit."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.phase: dict[str, Any] = {}
        self.phase_started = self.started
        self.current = 0

    def __call__(self, event: dict[str, Any]) -> None:
        if event["event"] == "start":
            self.phase, self.phase_started, self.current = event, time.monotonic(), 0
        elif event["event"] == "update":
            self.current = event["current"]

    def where(self) -> str:
        name = self.phase.get("name", "starting")
        total = self.phase.get("total")
        if not total or not self.current:
            return f"stopped in phase {name}"
        pace = (time.monotonic() - self.phase_started) / self.current
        return (f"stopped in phase {name} at {self.current}/{total} "
                f"(that phase alone would take ~{pace * total / 60:.0f} min)")


def run_distribution(inp: draw.DrawInput, algorithm: str, budget: float) -> dict[str, Any]:
    if algorithm == "leximin" and not draw.gurobi_available():
        return {"algorithm": algorithm, "note": "unavailable: needs the Gurobi solver"}
    tracker = Tracker()
    console.print(f"[bold]{algorithm}[/]: one draw (time limit {budget:g} s) ...")
    started = time.monotonic()
    try:
        result = draw.run_draw(inp, "2026", algorithm, progress=tracker, time_limit=budget)
    except draw.DrawError as error:
        note = tracker.where() if error.kind == "timeout" else error.message
        return {"algorithm": algorithm, "seconds": time.monotonic() - started,
                "note": f"did not finish in {budget:g} s: {note}" if error.kind == "timeout"
                else note}
    return {"algorithm": algorithm, "seconds": time.monotonic() - started,
            "lowest": result.lowest_probability, "mean": result.mean_probability,
            "quotas_met": all(row.met for row in result.quota_table),
            "note": "exact, from the distribution over panels"}


def run_legacy(inp: draw.DrawInput, budget: float) -> dict[str, Any]:
    console.print(f"[bold]legacy[/]: one draw, then repeated draws for {budget:g} s ...")
    started = time.monotonic()
    first = draw.run_draw(inp, "2026", "legacy")
    seconds = time.monotonic() - started
    counts: Counter[str] = Counter(first.selected)
    draws, seed = 1, 1
    payload = {"mode": "select", "input": inp.canonical(), "algorithm": "legacy", "panels": 1,
               "pick_seed": None}
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        batch = [{**payload, "seed": str(s), "seed_number": s} for s in range(seed, seed + 10)]
        seed += len(batch)
        for answer in draw.rerun_many(batch):
            if isinstance(answer, dict):
                counts.update(answer["selected"])
                draws += 1
    frequencies = [counts[p.id] / draws for p in inp.respondents]
    never = sum(1 for f in frequencies if f == 0)
    return {"algorithm": "legacy", "seconds": seconds, "lowest": min(frequencies),
            "mean": sum(frequencies) / len(frequencies),
            "quotas_met": all(row.met for row in first.quota_table),
            "note": f"estimated from {draws} draws; never drawn: {never}"}


def compare(size: int, seats: int, args: argparse.Namespace, budget: float,
            legacy_budget: float) -> list[dict[str, Any]]:
    people = synthetic_pool(size)
    inp = draw.DrawInput(people, population_quotas(seats), seats, 0, one_per_household=True)
    console.rule(f"{size} respondents, {seats} seats")
    rows = [run_legacy(inp, legacy_budget), run_distribution(inp, "maximin", budget)]
    if args.nash:
        rows.append(run_distribution(inp, "nash", budget))
    else:
        rows.append({"algorithm": "nash", "note": "not run (add --nash)"})
    rows.append(run_distribution(inp, "leximin", budget))
    for row in rows:
        row["scale"] = f"{size} / {seats}"
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=45,
                        help="time limit for one maximin (or nash) draw of 2,000, seconds")
    parser.add_argument("--legacy-budget", type=float, default=25,
                        help="time spent on repeated legacy draws of 2,000, seconds")
    parser.add_argument("--nash", action="store_true", help="also run nash (as slow as maximin)")
    parser.add_argument("--no-small", action="store_true",
                        help="skip the 200-respondent comparison")
    args = parser.parse_args()

    console.print(f"{len(CATEGORIES)} categories, one per household; {draw.LIBRARY} "
                  f"{draw.library_version()}.")
    started = time.monotonic()
    rows = compare(RESPONDENTS, SEATS, args, args.budget, args.legacy_budget)
    if not args.no_small:
        # Small enough for maximin to finish here, so both columns can be compared.
        rows += compare(200, 20, args, 60, 12)

    table = Table(title="Stratified draw: maximin against legacy")
    for column in ("Respondents / seats", "Algorithm", "One draw", "Lowest probability",
                   "Mean", "Quotas met", "Note"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["scale"], row["algorithm"],
            f"{row['seconds']:.1f} s" if "seconds" in row else "-",
            f"{row['lowest']:.3%}" if row.get("lowest") is not None else "-",
            f"{row['mean']:.3%}" if row.get("mean") is not None else "-",
            {True: "yes", False: "NO"}.get(row.get("quotas_met"), "-"),
            row.get("note", ""))
    console.print(table)
    console.print("The fairest possible lowest probability is seats / respondents "
                  f"({SEATS / RESPONDENTS:.1%} and 10.0%). Total "
                  f"{time.monotonic() - started:.0f} s.")


if __name__ == "__main__":
    main()
