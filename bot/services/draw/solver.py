"""Inside the child interpreter: the `sortition-algorithms` calls for one payload.

Only the child imports the library (and the solver), lazily, in these functions.

Solver: the library's maximin and nash solve one integer program per respondent (and one
more per respondent no committee covers yet) before they optimise. With the library's
default backend ("highspy") each costs 0.4 to 1 s for 2,000 respondents on two cores, as
its HiGHS wrapper solves every program twice (setting the objective already solves); the
library's "mip-cbc" backend (python-mip with the free CBC solver) solves it once, five to
eight times faster, so a draw of 2,000 takes minutes instead of half an hour or more
(bench/draw.py measures both). The lowest probability is the same (it is an optimum),
but the panel a seed yields depends on the backend: the audit records it, and a payload
that names one ("solver_backend") re-runs with that one.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bot.services.draw.rules import (
    KINDS_BACKEND,
    SOLVER_BACKEND,
    DrawError,
    SolverUnavailable,
    reserve_order,
)


def solve(payload: Mapping[str, Any], reporter: Any = None) -> dict[str, Any]:
    if payload["mode"] == "batch":
        answers = []
        for one in payload["payloads"]:
            try:
                answers.append({"result": solve(one, reporter)})
            except DrawError as error:
                answers.append(
                    {
                        "error": {
                            "message": error.message,
                            "kind": error.kind,
                            "categories": error.categories,
                        }
                    }
                )
        return {"answers": answers}
    if payload["mode"] == "select":
        if payload.get("solver_backend") == KINDS_BACKEND:
            from bot.services.draw import by_kinds

            return by_kinds.solve_select(payload, reporter, _explain_infeasible, _quota_table)
        return _solve_select(payload, reporter)
    if payload["mode"] == "replace":
        return _solve_replace(payload, reporter)
    raise DrawError(f"Unknown draw mode {payload['mode']!r}.")


def _library_settings(payload: Mapping[str, Any]) -> Any:
    from sortition_algorithms import Settings

    household = bool(payload["input"]["one_per_household"])
    return Settings(
        id_column="id",
        columns_to_keep=[],
        check_same_address=household,
        check_same_address_columns=["household"] if household else [],
        selection_algorithm=payload["algorithm"],
        solver_backend=_solver_backend(payload),
        random_number_seed=int(payload["seed_number"]),
    )


def _solver_backend(payload: Mapping[str, Any]) -> str:
    """The backend a payload names (a recorded one keeps its own), else SOLVER_BACKEND.
    Never a silent fallback to another: the same seed would give another panel."""
    backend = str(payload.get("solver_backend") or SOLVER_BACKEND)
    if backend.startswith("mip") and importlib.util.find_spec("mip") is None:
        raise SolverUnavailable(
            f"The draw runs on the {backend!r} solver backend, which needs the Python package "
            "'mip' (python-mip, with the free CBC solver): pip install 'mip>=1.17,<2'."
        )
    return backend


def _features(quotas: Mapping[str, Mapping[str, Sequence[int]]], size: int) -> Any:
    from sortition_algorithms import read_in_features
    from sortition_algorithms.errors import SelectionError

    body = [
        {"feature": c, "value": v, "min": str(b[0]), "max": str(b[1])}
        for c, values in quotas.items()
        for v, b in values.items()
    ]
    try:
        features, _, _ = read_in_features(["feature", "value", "min", "max"], body, size)
    except SelectionError as error:
        raise _explain(error, quotas) from None
    return features


def _people(rows: Iterable[Mapping[str, Any]], features: Any, settings: Any) -> Any:
    from sortition_algorithms import read_in_people
    from sortition_algorithms.errors import SelectionError

    categories = list(features)
    missing: dict[str, list[str]] = {}
    body = []
    for row in rows:
        attributes = row["attributes"]
        for category in categories:
            if attributes.get(category) in (None, ""):
                missing.setdefault(category, []).append(row["id"])
        # Without a household, a person is a household of their own.
        body.append(
            {
                "id": row["id"],
                "household": row["household"] or f"solo:{row['id']}",
                **{c: attributes.get(c) or "" for c in categories},
            }
        )
    if missing:
        detail = "; ".join(
            f"{c}: {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}"
            for c, ids in missing.items()
        )
        raise DrawError(
            f"Some respondents have no answer for a quota category ({detail}).", list(missing)
        )
    try:
        people, _ = read_in_people(["id", "household", *categories], body, features, settings)
    except SelectionError as error:
        raise DrawError(
            "Some answers are not values the quotas know: "
            + "; ".join(str(error).splitlines()[:10]),
            categories,
        ) from None
    return people


def _explain(error: Exception, quotas: Mapping[str, Any]) -> DrawError:
    """A library error as a DrawError naming the categories in conflict."""
    from sortition_algorithms.errors import InfeasibleQuotasError

    if isinstance(error, InfeasibleQuotasError):
        changed = []
        for category, values in error.features.items():
            for value, bounds in values.items():
                original = quotas.get(category, {}).get(value)
                if original and (bounds.min, bounds.max) != tuple(original):
                    changed.append(category)
        categories = sorted(set(changed))
        advice = [line.replace("  ", " ") for line in error.lines()[1:]]
        return DrawError(
            "The quotas cannot all be met with these respondents. Categories in conflict: "
            f"{', '.join(categories) or 'unknown'}. Smallest change that would work: "
            + " ".join(advice),
            categories,
            kind="infeasible",
        )
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    text = text.replace("features", "categories").replace("feature", "category")
    named = sorted(c for c in quotas if f"'{c}'" in text or f" {c} " in f" {text} ")
    if named:
        text += f" (categories: {', '.join(named)})"
    return DrawError(text, named, kind="infeasible")


def _run(
    features: Any,
    people: Any,
    size: int,
    settings: Any,
    quotas: Mapping[str, Any],
    *,
    reporter: Any,
    number_selections: int = 1,
    already_selected: Any = None,
) -> tuple[list[frozenset[str]], dict[str, float]]:
    from sortition_algorithms import run_stratification

    ok, panels, report = run_stratification(
        features,
        people,
        size,
        settings,
        number_selections=number_selections,
        already_selected=already_selected,
        progress_reporter=reporter,
    )
    if not ok:
        error = report.last_error() or DrawError(report.as_text())
        if isinstance(error, DrawError):
            raise error
        if isinstance(error, RuntimeError) and "urobi" in str(error):
            raise SolverUnavailable(str(error.args[0] if error.args else error))
        explained = _explain(error, quotas)
        if explained.kind == "infeasible" and _is_infeasible_quotas(error):
            explained = _name_conflict(explained, quotas, people, size, settings)
        raise explained
    return panels, _probabilities(report)


def _is_infeasible_quotas(error: Exception) -> bool:
    from sortition_algorithms.errors import InfeasibleQuotasCantRelaxError, InfeasibleQuotasError

    return isinstance(error, InfeasibleQuotasError | InfeasibleQuotasCantRelaxError)


def _feasible(quotas: Mapping[str, Any], people: Any, size: int, settings: Any) -> bool:
    from sortition_algorithms.committee_generation import find_any_committee
    from sortition_algorithms.errors import SelectionError, SortitionBaseError

    try:
        find_any_committee(
            _features(quotas, size),
            people,
            size,
            settings.normalised_address_columns,
            settings.solver_backend,
        )
    except (SelectionError, SortitionBaseError, DrawError):
        return False
    return True


def _name_conflict(
    error: DrawError, quotas: Mapping[str, Any], people: Any, size: int, settings: Any
) -> DrawError:
    """Which categories clash: drop categories one at a time while the rest stay
    infeasible; those left form a smallest set that cannot be met together."""
    conflict = list(quotas)
    for category in list(quotas):
        trial = {c: quotas[c] for c in conflict if c != category}
        if not trial or not _feasible(trial, people, size, settings):
            if trial:
                conflict.remove(category)
    if len(conflict) == 1 and _feasible({}, people, size, settings) is False:
        conflict = []
    if not conflict:
        return DrawError(
            "The panel cannot be filled with one person per household: too few "
            "households among the respondents.",
            [],
            kind="infeasible",
        )
    advice = error.message.split("Smallest change that would work:", 1)[-1].strip()
    return DrawError(
        f"The quotas cannot all be met with these respondents. Categories in conflict: "
        f"{', '.join(conflict)}. Smallest change that would work: {advice}",
        conflict,
        kind="infeasible",
    )


def _probabilities(report: Any) -> dict[str, float]:
    """Per-person selection probabilities from the library's distribution table."""
    for element in report.serialize().get("_data", []):
        headers = element.get("headers") or []
        if "Probability of selection" in headers:
            column = headers.index("Probability of selection")
            return {
                str(row[0]): float(str(row[column]).rstrip("%")) / 100 for row in element["data"]
            }
    return {}


def _quota_table(
    quotas: Mapping[str, Mapping[str, Sequence[int]]],
    rows: Sequence[Mapping[str, Any]],
    chosen: Iterable[str],
) -> list[dict[str, Any]]:
    chosen = set(chosen)
    table = []
    for category, values in quotas.items():
        for value, (low, high) in values.items():
            pool = [r for r in rows if r["attributes"].get(category) == value]
            table.append(
                {
                    "category": category,
                    "value": value,
                    "min": low,
                    "max": high,
                    "pool": len(pool),
                    "selected": sum(1 for r in pool if r["id"] in chosen),
                }
            )
    return table


def _explain_infeasible(payload: Mapping[str, Any]) -> DrawError:
    """Quotas the kinds solver found infeasible: every problem at once, in the organiser's
    terms, with the smallest relaxation that works, checked (relax.py)."""
    from bot.services.draw import relax

    data = payload["input"]
    return relax.explain(
        data["respondents"],
        data["quotas"],
        int(data["panel_size"]),
        bool(data["one_per_household"]),
        payload.get("flex"),
    )


def _solve_select(payload: Mapping[str, Any], reporter: Any) -> dict[str, Any]:
    data = payload["input"]
    quotas, size = data["quotas"], int(data["panel_size"])
    rows = data["respondents"]
    settings = _library_settings(payload)
    features = _features(quotas, size)
    people = _people(rows, features, settings)
    if len(rows) < size:
        raise DrawError(f"Only {len(rows)} respondents for a panel of {size}.", kind="infeasible")
    count = int(payload.get("panels") or 1)
    panels, probabilities = _run(
        features, people, size, settings, quotas, reporter=reporter, number_selections=count
    )
    result: dict[str, Any] = {"notes": []}
    if probabilities:
        values = [probabilities.get(r["id"], 0.0) for r in rows]
        result["lowest_probability"] = min(values)
        result["mean_probability"] = sum(values) / len(values)
    if count > 1:
        result["panels"] = [sorted(p) for p in panels]
        from bot.services.draw.by_kinds import pick_of

        pick = pick_of(payload, count)
        if pick is None:
            return result  # published, awaiting the announced pick
        result["pick"] = pick
        chosen = panels[result["pick"]]
    else:
        chosen = panels[0]
    result["selected"] = sorted(chosen)
    result["quota_table"] = _quota_table(quotas, rows, chosen)
    result["reserve"] = _reserve(payload, rows, chosen, people, settings, reporter, result["notes"])
    return result


def _subset(people: Any, ids: Iterable[str]) -> Any:
    from copy import deepcopy

    keep = set(ids)
    subset = deepcopy(people)
    subset.remove_many([pid for pid in people if pid not in keep])
    return subset


def _reserve(
    payload: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    chosen: frozenset[str],
    people: Any,
    settings: Any,
    reporter: Any,
    notes: list[str],
) -> list[str]:
    """A second draw, by the same algorithm, among those not selected (and, with one per
    household, not living with someone selected), with the quotas scaled to its size."""
    data = payload["input"]
    wanted = int(data.get("reserve_size") or 0)
    if wanted < 1:
        return []
    size = int(data["panel_size"])
    remaining = _subset(people, [r["id"] for r in rows if r["id"] not in chosen])
    selected = _subset(people, chosen)
    if data["one_per_household"]:
        taken = {selected.get_address(pid, ["household"]) for pid in selected}
        remaining.remove_many(
            [pid for pid in list(remaining) if remaining.get_address(pid, ["household"]) in taken]
        )
    if remaining.count < wanted:
        notes.append(f"Only {remaining.count} people remain for a reserve of {wanted}.")
        wanted = remaining.count
    if wanted < 1:
        return []
    if wanted == remaining.count:
        return reserve_order(payload["seed"], list(remaining))
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
            features = _features(quotas, wanted)
            picked, _ = _run(features, remaining, wanted, settings, quotas, reporter=reporter)
        except DrawError:
            notes.append(
                "The reserve could not follow the scaled quotas; it was drawn without them."
            )
            continue
        return reserve_order(payload["seed"], picked[0])
    return []


def _solve_replace(payload: Mapping[str, Any], reporter: Any) -> dict[str, Any]:
    """Draw replacements: the quotas minus those who stay, the library's already_selected
    keeping households apart, candidates tier by tier."""
    data = payload["input"]
    rows = data["respondents"]
    by_id = {r["id"]: r for r in rows}
    kept = data["kept"]
    needed = int(data["panel_size"]) - len(kept)
    settings = _library_settings(payload)
    remaining_quotas: dict[str, dict[str, list[int]]] = {}
    over = []
    for category, values in data["quotas"].items():
        remaining_quotas[category] = {}
        for value, (low, high) in values.items():
            have = sum(1 for pid in kept if by_id[pid]["attributes"].get(category) == value)
            if have > high:
                over.append(category)
            remaining_quotas[category][value] = [max(0, low - have), max(0, high - have)]
    if over:
        raise DrawError(
            "Those staying already exceed a quota maximum in: " + ", ".join(sorted(set(over))),
            sorted(set(over)),
            kind="infeasible",
        )
    features = _features(remaining_quotas, needed)
    everyone = _people(rows, _features(data["quotas"], int(data["panel_size"])), settings)
    already = _subset(everyone, kept)
    last_error: DrawError | None = None
    pool: list[str] = []
    for tier, candidates in enumerate(data["candidate_tiers"]):
        pool = pool + [pid for pid in candidates if pid not in pool]
        if len(pool) < needed:
            continue
        try:
            people = _people([by_id[pid] for pid in pool], features, settings)
            picked, _ = _run(
                features,
                people,
                needed,
                settings,
                remaining_quotas,
                reporter=reporter,
                already_selected=already,
            )
        except DrawError as error:
            last_error = error
            continue
        added = sorted(picked[0])
        table = _quota_table(data["quotas"], rows, [*kept, *added])
        return {"added": added, "tier": tier, "quota_table": table}
    if last_error is not None:
        raise last_error
    raise DrawError(
        f"Not enough candidates ({len(pool)}) to fill {needed} places.", kind="infeasible"
    )
