"""Benchmark of the draw on kinds of people against the library called directly.

Instances:
- the two published instances of Flanigan et al. (Nature 2021) replication data,
  `example_large_200` (2,000 respondents, panel of 200; the paper: leximin minimum 10.0%
  exact, in a median 1,161.8 s on Gurobi) and `example_small_20` (200, panel of 20);
- a real-sized pool, generated and seeded: 300 respondents answering six categories with
  uneven shares, one in ten living in pairs (one per household), a panel of 40;
- many kinds: `bench/draw.py`'s pool, 2,000 respondents in four categories, one in ten
  sharing a household, 518 kinds, a panel of 150 (ours only: `--only many --budget 300`).

Per algorithm: the time of one draw (the solve in its child process, started fresh) and
the lowest and mean selection probability. Ours: maximin and leximin on kinds with HiGHS.
The baseline, in the same run: sortition-algorithms' own maximin (and nash with --nash) on
its CBC backend, each capped by --library-budget seconds (its maximin on the large
instance does not finish in 600 s here: the cap says so instead of waiting); legacy, whose
probabilities are estimated from --legacy-draws repeated draws (± one standard error).

Usage: .venv/bin/python -m bench.select [--library-budget 300] [--legacy-draws 500] [--nash]
                                        [--examples DIR] [--only NAME] [--budget SECONDS]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bot.services import draw
from bot.services.draw import probabilities as chances

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT.parent / "shared" / "data" / "sortition-examples"
PUBLISHED = {
    "example_large_200": "leximin 10.0% exact in a median 1,161.8 s (Gurobi); legacy <= 0.25%",
    "example_small_20": "leximin 10.0% exact in a median 2.7 s (Gurobi); legacy <= 1.21%",
}
SIX = {
    "age": {"16-29": 0.2, "30-44": 0.25, "45-64": 0.33, "65+": 0.22},
    "gender": {"woman": 0.51, "man": 0.49},
    "education": {"school": 0.4, "college": 0.3, "degree": 0.3},
    "area": {"north": 0.3, "south": 0.25, "east": 0.25, "west": 0.2},
    "ethnicity": {"white": 0.8, "asian": 0.1, "black": 0.05, "mixed": 0.05},
    "attitude": {"low": 0.3, "middle": 0.4, "high": 0.3},
}
SKEW = {"degree": 1.7, "school": 0.6, "65+": 1.4, "16-29": 0.6, "high": 1.5}

console = Console(width=160)


def published(folder: Path) -> tuple[draw.DrawInput, str]:
    quotas: dict[str, dict[str, dict[str, int]]] = {}
    with open(folder / "categories.csv", encoding="utf-8") as rows:
        for row in csv.DictReader(rows):
            bounds = {"min": int(row["min"]), "max": int(row["max"])}
            quotas.setdefault(row["category"], {})[row["feature"]] = bounds
    with open(folder / "respondents.csv", encoding="utf-8") as rows:
        people = [
            draw.Respondent(f"R{i:05d}", None, row) for i, row in enumerate(csv.DictReader(rows))
        ]
    stats = (folder / "published_statistics.txt").read_text(encoding="utf-8")
    size = int(stats.split("panel size k:")[1].split()[0])
    inp = draw.DrawInput(people, draw.quota_bounds(quotas, size), size)
    return inp, PUBLISHED.get(folder.name, "")


def real_pool(size: int = 300, seats: int = 40, seed: int = 2026) -> draw.DrawInput:
    rng = random.Random(seed)
    people = []
    for i in range(size):
        answers = {}
        for category, shares in SIX.items():
            weights = [share * SKEW.get(value, 1.0) for value, share in shares.items()]
            answers[category] = rng.choices(list(shares), weights)[0]
        household = f"h{i // 2}" if i % 10 < 2 else f"solo-{i}"
        people.append(draw.Respondent(f"P{i:05d}", household, answers))
    spec = {
        category: {
            value: {"min": int(share * seats * 0.8), "max": int(share * seats * 1.2) + 1}
            for value, share in shares.items()
        }
        for category, shares in SIX.items()
    }
    return draw.DrawInput(people, draw.quota_bounds(spec, seats), seats, 0, True)


def many_kinds() -> draw.DrawInput:
    """2,000 respondents in four categories, one in ten sharing a household: 518 kinds of
    people (those sharing a household are each a kind), a panel of 150."""
    from bench.draw import RESPONDENTS, SEATS, draw_input

    return draw_input(RESPONDENTS, SEATS)


class Lowest:
    """Progress events: remembers the last message (the kinds solver's lowest so far)."""

    def __init__(self) -> None:
        self.message = ""

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("message"):
            self.message = event["message"]


def one(inp: draw.DrawInput, algorithm: str, backend: str, budget: float | None) -> dict:
    name = f"{algorithm} ({'ours, kinds on HiGHS' if backend == draw.KINDS_BACKEND else 'library'})"
    console.print(f"[bold]{name}[/] ...")
    seen = Lowest()
    started = time.monotonic()
    try:
        result = draw.run_draw(
            inp, "2026", algorithm, backend=backend, progress=seen, time_limit=budget
        )
    except draw.DrawError as error:
        seconds = time.monotonic() - started
        note = (
            f"did not finish in {budget:g} s; stopped (last: {seen.message or '-'})"
            if error.kind == "timeout"
            else error.message
        )
        return {"algorithm": name, "seconds": seconds, "note": note}
    seconds = time.monotonic() - started
    solve = result.solve or {}
    note = (
        f"{solve['kinds']} kinds, {solve['levels']} levels, {solve['lps']} LPs, "
        f"{solve['ilps']} ILPs, solver {solve['seconds']:.1f} s"
        if solve
        else f"exact ({backend})"
    )
    return {
        "algorithm": name,
        "seconds": seconds,
        "lowest": result.lowest_probability,
        "mean": result.mean_probability,
        "note": note,
    }


def legacy(inp: draw.DrawInput, draws: int) -> dict:
    console.print(f"[bold]legacy (library)[/]: {draws} draws ...")
    started = time.monotonic()
    with draw.SolverWorker() as worker:
        estimate = chances.estimate_by_draws(inp, "2026", draws, worker=worker)
    seconds = (time.monotonic() - started) / draws
    found = chances.spread(estimate, draws)
    never = sum(1 for p in estimate.values() if p == 0)
    return {
        "algorithm": "legacy (library)",
        "seconds": seconds,
        "lowest": found.lowest,
        "mean": found.mean,
        "note": f"estimated from {draws} draws (± {chances.standard_error(0.1, draws):.1%} "
        f"near 10%); never drawn: {never}; time is per draw",
    }


def bench(
    name: str, inp: draw.DrawInput, note: str, args: argparse.Namespace, ours_only: bool = False
) -> list[dict]:
    console.rule(f"{name}: {len(inp.respondents)} respondents, panel of {inp.panel_size}")
    rows = [
        one(inp, "maximin", draw.KINDS_BACKEND, args.budget),
        one(inp, "leximin", draw.KINDS_BACKEND, args.budget),
    ]
    if ours_only:  # the library's maximin would solve one integer program per respondent
        for row in rows:
            row["instance"] = name
        return rows
    rows.append(one(inp, "maximin", draw.SOLVER_BACKEND, args.library_budget))
    if args.nash:
        rows.append(one(inp, "nash", draw.SOLVER_BACKEND, args.library_budget))
    rows.append(legacy(inp, args.legacy_draws))
    for row in rows:
        row["instance"] = name
    if note:
        rows.append({"instance": name, "algorithm": "published", "note": note})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library-budget", type=float, default=300)
    parser.add_argument("--legacy-draws", type=int, default=500)
    parser.add_argument("--nash", action="store_true", help="also the library's nash")
    parser.add_argument("--examples", type=Path, default=EXAMPLES)
    parser.add_argument("--only", help="one instance: large, small, real or many")
    parser.add_argument(
        "--budget", type=float, default=None, help="stop each of our solves after this many s"
    )
    args = parser.parse_args()
    load = os.getloadavg()
    console.print(
        f"{draw.LIBRARY} {draw.library_version()}; "
        f"ours: {draw.backend_versions(draw.KINDS_BACKEND)}; {os.cpu_count()} cores, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}."
    )
    instances = {
        "large": lambda: ("example_large_200", *published(args.examples / "example_large_200")),
        "small": lambda: ("example_small_20", *published(args.examples / "example_small_20")),
        "real": lambda: ("real pool, 6 categories", real_pool(), ""),
        # bench/draw.py's pool: 2,000 respondents, four categories, one per household.
        "many": lambda: ("518 kinds, panel of 150", many_kinds(), ""),
    }
    rows: list[dict] = []
    for key, make in instances.items():
        if args.only and args.only != key:
            continue
        name, inp, note = make()
        rows += bench(name, inp, note, args, ours_only=key == "many")
    table = Table(title="The draw: ours (kinds, HiGHS) against sortition-algorithms, same run")
    for column in ("Instance", "Algorithm", "Time", "Lowest", "Mean", "Note"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["instance"],
            row["algorithm"],
            f"{row['seconds']:.2f} s" if "seconds" in row else "-",
            f"{row['lowest']:.3%}" if row.get("lowest") is not None else "-",
            f"{row['mean']:.3%}" if row.get("mean") is not None else "-",
            row.get("note", ""),
        )
    console.print(table)
    load = os.getloadavg()
    console.print(
        f"Load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on "
        f"{os.cpu_count()} cores (other work on the machine slows every figure above)."
    )


if __name__ == "__main__":
    main()
