"""A draw on kinds of people (backend KINDS_BACKEND): maximin or leximin on HiGHS, then one
panel of kinds drawn from the distribution and mapped back to people, uniformly within
each kind; or, for a lottery, the distribution rounded to m equally likely panels.

Runs in the child interpreter like solver.py. Every choice comes from one generator
seeded with the seed number, in a fixed order, so a payload always gives the same panel.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from bot.services.draw import kinds as kinds_of
from bot.services.draw import leximin, lottery
from bot.services.draw.rules import DrawError, pick_index, reserve_order


class _Steps:
    """Solver progress as the library's reporter events: kinds fixed of all, with the
    level, the number of linear programs and the lowest probability so far."""

    def __init__(self, reporter: Any, algorithm: str, count: int):
        self.reporter, self.algorithm = reporter, algorithm
        self.lowest: float | None = None
        if reporter is not None:
            reporter.start_phase(algorithm, count, message=f"{algorithm}: {count} kinds of people")

    def __call__(self, event: dict[str, Any]) -> None:
        if self.reporter is None:
            return
        if "lowest" in event:
            self.lowest = event["lowest"]
        lowest = f", lowest so far {self.lowest:.2%}" if self.lowest is not None else ""
        self.reporter.update(
            event["fixed"],
            message=f"{self.algorithm}: level {event['level']}, {event['lps']} LPs{lowest}",
        )

    def end(self) -> None:
        if self.reporter is not None:
            self.reporter.end_phase()


def _check_answers(rows: Sequence[Mapping[str, Any]], quotas: Mapping[str, Any]) -> None:
    missing: dict[str, list[str]] = {}
    unknown: list[str] = []
    for row in rows:
        for category, values in quotas.items():
            answer = row["attributes"].get(category)
            if answer in (None, ""):
                missing.setdefault(category, []).append(row["id"])
            elif answer not in values:
                unknown.append(f"{row['id']}: {category} = {answer!r}")
    if missing:
        detail = "; ".join(
            f"{c}: {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}"
            for c, ids in missing.items()
        )
        raise DrawError(
            f"Some respondents have no answer for a quota category ({detail}).", list(missing)
        )
    if unknown:
        raise DrawError(
            "Some answers are not values the quotas know: " + "; ".join(unknown[:10]),
            sorted({u.split(": ")[1].split(" = ")[0] for u in unknown}),
        )


def distribution(
    rows: Sequence[Mapping[str, Any]],
    quotas: Mapping[str, Any],
    size: int,
    households: bool,
    algorithm: str,
    reporter: Any = None,
) -> tuple[kinds_of.Kinds, leximin.Distribution]:
    _check_answers(rows, quotas)
    if len(rows) < size:
        raise DrawError(f"Only {len(rows)} respondents for a panel of {size}.", kind="infeasible")
    kinds = kinds_of.group(rows, list(quotas), households)
    steps = _Steps(reporter, algorithm, len(kinds))
    try:
        space = leximin.PanelSpace(kinds, dict(quotas), size)
        return kinds, leximin.solve(space, algorithm, steps)
    finally:
        steps.end()


def _draw_one(kinds: kinds_of.Kinds, dist: leximin.Distribution, rng: random.Random) -> list[str]:
    """One panel of kinds by its probability, then people uniformly within each kind."""
    point, total = rng.random(), 0.0
    chosen = dist.panels[-1]
    for panel, weight in zip(dist.panels, dist.weights, strict=True):
        total += weight
        if point < total:
            chosen = panel
            break
    return kinds_of.people_for(kinds, chosen, rng)


def solve_select(
    payload: Mapping[str, Any], reporter: Any, explain: Any, quota_table: Any
) -> dict[str, Any]:
    """`explain(payload)` turns infeasible quotas into the library's advice (solver.py);
    `quota_table(quotas, rows, chosen)` is the quota table."""
    data = payload["input"]
    quotas, size, rows = data["quotas"], int(data["panel_size"]), data["respondents"]
    try:
        kinds, dist = distribution(
            rows, quotas, size, data["one_per_household"], payload["algorithm"], reporter
        )
    except leximin.Infeasible:
        raise explain(payload) from None
    rng = random.Random(int(payload["seed_number"]))
    result: dict[str, Any] = {
        "notes": [],
        "solve": {
            "kinds": len(kinds),
            "levels": dist.levels,
            "lps": dist.lps,
            "ilps": dist.ilps,
            "panels_in_support": len(dist.panels),
            "seconds": round(dist.seconds, 3),
        },
    }
    count = int(payload.get("panels") or 1)
    if count > 1:
        rounded = lottery.round_distribution(dist, kinds, count, rng)
        probabilities = rounded.probabilities
        result["panels"] = rounded.panels
        result["lottery"] = {
            "panels": count,
            "max_change": rounded.max_change,
            "lowest_before": rounded.lowest_before,
            "lowest_after": rounded.lowest_after,
        }
        pick = pick_of(payload, count)
        if pick is None:
            result.update(_summary(probabilities, rows))
            return result  # published, awaiting the public pick
        result["pick"] = pick
        chosen = rounded.panels[pick]
    else:
        probabilities = kinds_of.person_probabilities(kinds, dist.kind_probabilities)
        chosen = _draw_one(kinds, dist, rng)
    result.update(_summary(probabilities, rows))
    result["selected"] = sorted(chosen)
    result["quota_table"] = quota_table(quotas, rows, chosen)
    result["reserve"] = _reserve(payload, rows, set(chosen), rng, result["notes"])
    return result


def pick_of(payload: Mapping[str, Any], count: int) -> int | None:
    if payload.get("pick_number") is not None:
        number = int(payload["pick_number"])
        if not 0 <= number < count:
            raise DrawError(f"The pick must be a panel number from 0 to {count - 1}, not {number}.")
        return number
    if payload.get("pick_seed") is not None:
        return pick_index(payload["pick_seed"], count)
    return None


def _summary(probabilities: dict[str, float], rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    values = [probabilities.get(r["id"], 0.0) for r in rows]
    return {
        "probabilities": {r["id"]: round(probabilities.get(r["id"], 0.0), 12) for r in rows},
        "lowest_probability": min(values),
        "mean_probability": sum(values) / len(values),
    }


def _reserve(
    payload: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    chosen: set[str],
    rng: random.Random,
    notes: list[str],
) -> list[str]:
    """A second draw, by the same algorithm, among those not selected (and, with one per
    household, not living with someone selected), with the quotas scaled to its size."""
    data = payload["input"]
    wanted = int(data.get("reserve_size") or 0)
    if wanted < 1:
        return []
    size = int(data["panel_size"])
    taken = {r["household"] for r in rows if r["id"] in chosen and r["household"]}
    remaining = [
        r
        for r in rows
        if r["id"] not in chosen and not (data["one_per_household"] and r["household"] in taken)
    ]
    if len(remaining) < wanted:
        notes.append(f"Only {len(remaining)} people remain for a reserve of {wanted}.")
        wanted = len(remaining)
    if wanted < 1:
        return []
    if wanted == len(remaining):
        return reserve_order(payload["seed"], [r["id"] for r in remaining])
    scaled = {
        c: {
            v: [math.floor(b[0] * wanted / size), math.ceil(b[1] * wanted / size)]
            for v, b in values.items()
        }
        for c, values in data["quotas"].items()
    }
    loose = {c: {v: [0, wanted] for v in values} for c, values in data["quotas"].items()}
    for quotas in (scaled, loose):
        try:
            kinds, dist = distribution(
                remaining, quotas, wanted, data["one_per_household"], "maximin"
            )
        except leximin.Infeasible:
            notes.append(
                "The reserve could not follow the scaled quotas; it was drawn without them."
            )
            continue
        return reserve_order(payload["seed"], _draw_one(kinds, dist, rng))
    return []
