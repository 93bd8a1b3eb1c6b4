"""Benchmark of the stratified draw: 2,000 respondents, 150 seats, 4 categories.

For each algorithm: the time of one draw and the lowest selection probability, side by
side. maximin (and nash) compute the distribution over panels, so their probabilities are
exact; legacy draws person by person and computes none, so its lowest probability is
estimated from repeated draws with different seeds (the share of draws each person is in).
leximin needs the commercial Gurobi solver and is listed as unavailable without it.

Why maximin's time is what it is: before it optimises, the library solves one integer
program (ILP) per respondent (its multiplicative-weights rounds: people.count of them,
not a setting a caller can change), then one per respondent still uncovered, then a
column generation (an LP and up to 11 ILPs per iteration). So the time is about
(time of one ILP) x (respondents + 1), and as much again for the optimisation. The run
first measures one ILP, exactly as the library builds and solves it, on each solver
backend installed: the draw's own (bot.services.draw.SOLVER_BACKEND, python-mip with CBC) and
the library's default (highspy, whose wrapper solves every ILP twice). If even the lower bound
does not fit the time budget, maximin is run instead at the largest smaller size whose
bound fits, beside legacy at that size, and the table says why.

The figures depend on the machine and on what else runs on it: the run prints the load
average at its start and end.

Usage: .venv/bin/python -m bench.draw [--budget 600] [--legacy-budget 25] [--nash]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.table import Table

from bot.services import draw
from bot.services.draw import solver as draw_solver

RESPONDENTS, SEATS = 2000, 150
SMALLER = [(1000, 75), (500, 40), (200, 20)]  # same seat share, tried when 2,000 cannot fit
# Four categories with uneven shares, as in a real recruitment pool.
CATEGORIES = {
    "age": {"16-29": 0.22, "30-49": 0.33, "50-64": 0.25, "65+": 0.20},
    "gender": {"woman": 0.51, "man": 0.47, "other": 0.02},
    "education": {"school": 0.35, "college": 0.30, "degree": 0.35},
    "area": {"north": 0.30, "south": 0.25, "east": 0.25, "west": 0.20},
}
# Registration skews: graduates and older people answer more; the quotas correct it.
RESPONSE_SKEW = {"degree": 1.6, "school": 0.6, "65+": 1.4, "16-29": 0.7}
PROBE_ROUNDS = 3

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
    spec = {
        category: {
            value: {
                "min": int(share * seats * (1 - tolerance)),
                "max": int(share * seats * (1 + tolerance)) + 1,
            }
            for value, share in shares.items()
        }
        for category, shares in CATEGORIES.items()
    }
    return draw.quota_bounds(spec, seats)


def draw_input(size: int, seats: int) -> draw.DrawInput:
    return draw.DrawInput(
        synthetic_pool(size), population_quotas(seats), seats, 0, one_per_household=True
    )


# --- one ILP, as the library solves it ----------------------------------------------------


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """The solvers print banners on file descriptor 1; keep them out of the table."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def backends() -> list[str]:
    found = [draw.SOLVER_BACKEND]
    if draw.SOLVER_BACKEND != "highspy" and importlib.util.find_spec("highspy"):
        found.append("highspy")
    return found


def seconds_per_ilp(inp: draw.DrawInput, backend: str) -> float:
    """The library's committee ILP, solved PROBE_ROUNDS times with the objective of its
    multiplicative-weights rounds (weights near 1, lowered for those just chosen)."""
    from sortition_algorithms.committee_generation.common import (
        ilp_results_to_committee,
        setup_committee_generation,
    )
    from sortition_algorithms.committee_generation.solver import SolverSense, solver_sum

    canonical = inp.canonical()
    payload = {
        "input": canonical,
        "algorithm": "maximin",
        "seed_number": 2026,
        "solver_backend": backend,
    }
    settings = draw_solver._library_settings(payload)
    features = draw_solver._features(canonical["quotas"], inp.panel_size)
    people = draw_solver._people(canonical["respondents"], features, settings)
    rng = random.Random(2026)
    with quiet_stdout():
        solver, agents = setup_committee_generation(
            features, people, inp.panel_size, settings.normalised_address_columns, backend
        )
        weights = {pid: rng.uniform(0.99, 1.0) for pid in agents}
        started = time.perf_counter()
        for _ in range(PROBE_ROUNDS):
            solver.set_objective(
                solver_sum(weights[p] * agents[p] for p in agents), SolverSense.MAXIMIZE
            )
            solver.optimize()
            for pid in ilp_results_to_committee(solver, agents):
                weights[pid] *= 0.8
    return (time.perf_counter() - started) / PROBE_ROUNDS


def minutes(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# --- the draws ----------------------------------------------------------------------------


class Tracker:
    """Remembers the library's phases (name, items done, seconds) for the notes."""

    def __init__(self) -> None:
        self.phases: list[dict[str, Any]] = []
        self.current: dict[str, Any] | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        if event["event"] == "start":
            self.current = {
                "name": event["name"],
                "total": event.get("total"),
                "done": 0,
                "started": time.monotonic(),
            }
            self.phases.append(self.current)
        elif event["event"] == "update" and self.current:
            self.current["done"] = event["current"]
        elif event["event"] == "end" and self.current:
            self.current["done"] = self.current["total"] or self.current["done"]
            self.current["seconds"] = time.monotonic() - self.current["started"]
            self.current = None

    def summary(self) -> str:
        parts = []
        for p in self.phases:
            seconds = p.get("seconds", time.monotonic() - p["started"])
            count = f" {p['done']}/{p['total']}" if p["total"] else f" {p['done']}"
            each = f", {seconds / p['done']:.2f} s each" if p["done"] else ""
            parts.append(f"{p['name']}{count if p['done'] else ''} in {minutes(seconds)}{each}")
        return "; ".join(parts)


def run_distribution(inp: draw.DrawInput, algorithm: str, budget: float) -> dict[str, Any]:
    if algorithm == "leximin" and not draw.gurobi_available():
        return {
            "algorithm": algorithm,
            "note": "the library's needs the Gurobi solver; ours on HiGHS: bench/select.py",
        }
    tracker = Tracker()
    console.print(f"[bold]{algorithm}[/]: one draw (time limit {budget:g} s) ...")
    started = time.monotonic()
    try:
        result = draw.run_draw(
            inp,
            "2026",
            algorithm,
            progress=tracker,
            time_limit=budget,
            backend=draw.SOLVER_BACKEND,  # the library's own (bench/select.py: the kinds)
        )
    except draw.DrawError as error:
        seconds = time.monotonic() - started
        if error.kind == "timeout":
            note = f"did not finish in {budget:g} s; stopped: {tracker.summary()}"
        else:
            note = error.message
        return {"algorithm": algorithm, "seconds": seconds, "note": note}
    return {
        "algorithm": algorithm,
        "seconds": time.monotonic() - started,
        "lowest": result.lowest_probability,
        "mean": result.mean_probability,
        "quotas_met": all(row.met for row in result.quota_table),
        "note": f"exact ({draw.SOLVER_BACKEND}); {tracker.summary()}",
    }


def run_legacy(inp: draw.DrawInput, budget: float) -> dict[str, Any]:
    console.print(f"[bold]legacy[/]: one draw, then repeated draws for {budget:g} s ...")
    # One child process for all the draws: starting one costs about a second.
    with draw.SolverWorker() as worker:
        started = time.monotonic()
        first = draw.run_draw(inp, "2026", "legacy", worker=worker)
        seconds = time.monotonic() - started
        counts: Counter[str] = Counter(first.selected)
        draws, seed = 1, 1
        payload = {
            "mode": "select",
            "input": inp.canonical(),
            "algorithm": "legacy",
            "panels": 1,
            "pick_seed": None,
        }
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline:
            batch = [{**payload, "seed": str(s), "seed_number": s} for s in range(seed, seed + 10)]
            seed += len(batch)
            for answer in draw.rerun_many(batch, worker=worker):
                if isinstance(answer, dict):
                    counts.update(answer["selected"])
                    draws += 1
    frequencies = [counts[p.id] / draws for p in inp.respondents]
    never = sum(1 for f in frequencies if f == 0)
    return {
        "algorithm": "legacy",
        "seconds": seconds,
        "lowest": min(frequencies),
        "mean": sum(frequencies) / len(frequencies),
        "quotas_met": all(row.met for row in first.quota_table),
        "note": f"estimated from {draws} draws (resolution 1/{draws}); never drawn: {never}",
    }


def compare(
    inp: draw.DrawInput,
    args: argparse.Namespace,
    *,
    legacy: bool,
    maximin: bool,
    budget: float,
    legacy_budget: float,
) -> list[dict[str, Any]]:
    size, seats = len(inp.respondents), inp.panel_size
    console.rule(f"{size} respondents, {seats} seats")
    rows = []
    if legacy:
        rows.append(run_legacy(inp, legacy_budget))
    if maximin:
        rows.append(run_distribution(inp, "maximin", budget))
        if args.nash:
            rows.append(run_distribution(inp, "nash", budget))
        rows.append(run_distribution(inp, "leximin", budget))
    for row in rows:
        row["scale"] = f"{size} / {seats}"
    return rows


def probe(size: int, seats: int) -> dict[str, float]:
    inp = draw_input(size, seats)
    return {backend: seconds_per_ilp(inp, backend) for backend in backends()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budget",
        type=float,
        default=600,
        help="time limit for one maximin (or nash) draw, seconds",
    )
    parser.add_argument(
        "--legacy-budget",
        type=float,
        default=25,
        help="time spent on repeated legacy draws of 2,000, seconds",
    )
    parser.add_argument("--nash", action="store_true", help="also run nash (as slow as maximin)")
    parser.add_argument(
        "--no-small", action="store_true", help="skip the 200-respondent comparison"
    )
    args = parser.parse_args()

    load = os.getloadavg()
    console.print(
        f"{len(CATEGORIES)} categories, one per household; {draw.LIBRARY} "
        f"{draw.library_version()}, solver backend {draw.SOLVER_BACKEND}; "
        f"{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f} at the start."
    )
    started = time.monotonic()

    console.rule("One integer program (ILP) of the library, per solver backend")
    probes = {RESPONDENTS: probe(RESPONDENTS, SEATS)}
    ilps = RESPONDENTS + 1  # one feasibility solve, then one per multiplicative-weights round
    explain = Table(
        title=f"maximin at {RESPONDENTS} / {SEATS}: at least {ilps} ILPs before it optimises"
    )
    for column in ("Solver backend", "One ILP (measured now)", "x ILPs = lower bound"):
        explain.add_column(column)
    for backend, seconds in probes[RESPONDENTS].items():
        explain.add_row(
            backend + (" (the draw's)" if backend == draw.SOLVER_BACKEND else " (library default)"),
            f"{seconds:.3f} s",
            minutes(seconds * ilps),
        )
    console.print(explain)

    inp = draw_input(RESPONDENTS, SEATS)
    bound = probes[RESPONDENTS][draw.SOLVER_BACKEND] * ilps
    fits = bound <= args.budget
    rows = compare(
        inp, args, legacy=True, maximin=fits, budget=args.budget, legacy_budget=args.legacy_budget
    )
    finished = fits and rows[1].get("lowest") is not None
    why = ""
    if not fits:
        why = (
            f"maximin at {RESPONDENTS} / {SEATS} not run: one ILP took "
            f"{probes[RESPONDENTS][draw.SOLVER_BACKEND]:.3f} s here x {ilps} ILPs the "
            f"library needs before optimising = {minutes(bound)} > budget "
            f"{minutes(args.budget)}."
        )
        rows.append({"scale": f"{RESPONDENTS} / {SEATS}", "algorithm": "maximin", "note": why})
    if not finished:
        # The largest smaller size whose lower bound fits the budget, beside legacy there.
        for size, seats in SMALLER:
            per_ilp = seconds_per_ilp(draw_input(size, seats), draw.SOLVER_BACKEND)
            if per_ilp * (size + 1) <= args.budget / 2:  # the optimisation costs as much again
                rows += compare(
                    draw_input(size, seats),
                    args,
                    legacy=True,
                    maximin=True,
                    budget=args.budget,
                    legacy_budget=args.legacy_budget / 2,
                )
                break
    elif not args.no_small:
        rows += compare(
            draw_input(200, 20), args, legacy=True, maximin=True, budget=120, legacy_budget=12
        )

    table = Table(title="Stratified draw: maximin against legacy")
    for column in (
        "Respondents / seats",
        "Algorithm",
        "One draw",
        "Lowest probability",
        "Mean",
        "Quotas met",
        "Note",
    ):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["scale"],
            row["algorithm"],
            minutes(row["seconds"]) if "seconds" in row else "-",
            f"{row['lowest']:.3%}" if row.get("lowest") is not None else "-",
            f"{row['mean']:.3%}" if row.get("mean") is not None else "-",
            {True: "yes", False: "NO"}.get(row.get("quotas_met"), "-"),
            row.get("note", ""),
        )
    console.print(table)
    load = os.getloadavg()
    console.print(
        "The fairest possible lowest probability is seats / respondents "
        f"({SEATS / RESPONDENTS:.1%} at {RESPONDENTS} / {SEATS}). Total "
        f"{minutes(time.monotonic() - started)}; load average at the end "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores "
        "(other work on the machine slows every figure above)."
    )
    if why:
        console.print(why)


if __name__ == "__main__":
    main()
