"""The draw's pure rules: seeds, hashes, the canonical input, quota bounds, the pick rule
and the reserve order, and the shapes of a draw's input and result.

Nothing here runs the solver or imports the `sortition-algorithms` library (apart from
reading its installed version): the solve itself runs in a child interpreter (worker.py,
solver.py), and anyone can re-check a recorded draw's hashes and pick with this module.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ALGORITHMS = ("maximin", "nash", "leximin", "legacy")
LIBRARY = "sortition-algorithms"
HASH_SEED = "0"  # the interpreter hash seed every solve runs under
FORMAT = 1  # version of the canonical input and of the pick rule below
SOLVER_BACKEND = "mip-cbc"  # the library's python-mip + CBC backend (see solver.py)
# Maximin and leximin on kinds of people with HiGHS (by_kinds.py, leximin.py). A recorded
# payload names its backend, so a draw is always re-run on the one it was made with.
KINDS_BACKEND = "highs-kinds"
KINDS_ALGORITHMS = ("maximin", "leximin")
# The packages whose versions can change a backend's result, recorded with every draw.
BACKEND_PACKAGES = {
    KINDS_BACKEND: ("highspy", "numpy"),
    SOLVER_BACKEND: (LIBRARY, "mip"),
    "highspy": (LIBRARY, "highspy"),
}


class DrawError(Exception):
    """The draw cannot run as asked; `categories` names the categories at fault, if any."""

    def __init__(self, message: str, categories: Sequence[str] = (), kind: str = "draw"):
        super().__init__(message)
        self.message = message
        self.categories = list(categories)
        self.kind = kind


class SolverUnavailable(DrawError):
    def __init__(self, message: str):
        super().__init__(message, kind="solver")


def library_version() -> str:
    return importlib.metadata.version(LIBRARY)


def gurobi_available() -> bool:
    return importlib.util.find_spec("gurobipy") is not None


def backend_for(algorithm: str) -> str:
    """The backend a new draw with this algorithm runs on."""
    return KINDS_BACKEND if algorithm in KINDS_ALGORITHMS else SOLVER_BACKEND


def backend_versions(backend: str) -> dict[str, str]:
    """The installed versions of what the backend's result depends on (and Python's)."""
    import platform

    versions = {"python": platform.python_version()}
    for package in BACKEND_PACKAGES.get(backend, (LIBRARY,)):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def check_algorithm(algorithm: str, backend: str | None = None) -> None:
    if algorithm not in ALGORITHMS:
        raise DrawError(f"Unknown algorithm {algorithm!r}: choose one of {', '.join(ALGORITHMS)}.")
    backend = backend or backend_for(algorithm)
    if algorithm == "leximin" and backend != KINDS_BACKEND and not gurobi_available():
        # The library would quietly fall back to maximin; an organiser must know instead.
        raise SolverUnavailable(
            "The leximin algorithm needs the commercial Gurobi solver (Python package "
            "'gurobipy' with a licence), and it is not installed. Use --algorithm maximin, "
            "which runs on the free CBC solver, or install Gurobi."
        )


# --- seeds, hashes ---------------------------------------------------------------------


def seed_number(seed: str) -> int:
    """The integer the library is seeded with. A plain positive number is used as is; any
    other text (e.g. lottery numbers "07 12 33") through SHA-256. Never 0: the library
    reads 0 as "use the system's random source", which could not be re-run."""
    text = str(seed).strip()
    if not text:
        raise DrawError("The seed is empty: give a number or a phrase announced in advance.")
    if text.isdigit() and 0 < int(text) < 2**63:
        return int(text)
    return int(hashlib.sha256(text.encode()).hexdigest()[:15], 16) + 1


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_of(data: Any) -> str:
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


def panel_hash(members: Iterable[str]) -> str:
    """SHA-256 of the sorted member ids, one per line: checkable with any shell."""
    return hashlib.sha256("\n".join(sorted(members)).encode()).hexdigest()


def reserve_hash(ordered: Sequence[str]) -> str:
    """SHA-256 of the reserve ids in their order, one per line (the order matters)."""
    return hashlib.sha256("\n".join(ordered).encode()).hexdigest()


def panel_list_hash(hashes: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def pick_index(pick_seed: str, count: int) -> int:
    """The transparent lottery's final pick: SHA-256 of the announced seed, modulo the
    number of published panels (the bias of a 256-bit number modulo M is negligible)."""
    text = str(pick_seed).strip()
    if not text:
        raise DrawError("The pick seed is empty.")
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % count


def reserve_order(seed: str, ids: Iterable[str]) -> list[str]:
    """The order the reserve is called in: by SHA-256 of seed and id, so anyone can check."""
    return sorted(ids, key=lambda pid: hashlib.sha256(f"{seed}:{pid}".encode()).hexdigest())


# --- input -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Respondent:
    id: str  # pseudonymous participant id
    household: str | None
    attributes: Mapping[str, str]


@dataclass(frozen=True)
class Bounds:
    min: int
    max: int


Quotas = dict[str, dict[str, Bounds]]


def quota_bounds(spec: Mapping[str, Mapping[str, Any]], panel_size: int) -> Quotas:
    """Quotas as min/max per category value. Each value may be given as {"min", "max"},
    as {"share": 0.25}, as a bare share or as a percentage ("25%", or {"share": "25%"});
    a share becomes floor/ceil of share x panel (48% of 40 seats: 19 to 20)."""
    quotas: Quotas = {}
    problems = []
    for category, values in spec.items():
        quotas[category] = {}
        if not isinstance(values, Mapping) or not values:
            problems.append(f"{category}/*: give a table of values with their quotas")
            continue
        for value, target in values.items():
            place = f"{category}/{value}"
            try:
                bounds = _bounds(target, panel_size)
                if bounds is None:
                    problems.append(f"{place}: give min and max, or a share")
                    continue
            except (TypeError, ValueError) as error:
                problems.append(f"{place}: {error}")
                continue
            except DrawError as error:
                problems.append(f"{place}: {error.message}")
                continue
            if bounds.min < 0 or bounds.max < bounds.min:
                problems.append(f"{place}: min {bounds.min} and max {bounds.max} do not fit")
            quotas[category][value] = bounds
    if problems:
        raise DrawError(
            "Quotas are not usable: " + "; ".join(problems),
            sorted({p.split("/")[0] for p in problems}),
        )
    return quotas


def _bounds(target: Any, panel_size: int) -> Bounds | None:
    if isinstance(target, Bounds):
        return target
    if isinstance(target, int | float) and not isinstance(target, bool):
        return _share_bounds(float(target), panel_size)
    if isinstance(target, str) and target.strip().endswith("%"):
        return _share_bounds(_percent(target), panel_size)
    if isinstance(target, Mapping) and "share" in target:
        share = target["share"]
        share = _percent(share) if isinstance(share, str) else float(share)
        return _share_bounds(share, panel_size)
    if isinstance(target, Mapping) and {"min", "max"} <= set(target):
        return Bounds(_whole(target["min"]), _whole(target["max"]))
    return None


def _whole(number: Any) -> int:
    if isinstance(number, bool) or not isinstance(number, int):
        raise ValueError(f"{number!r} is not a whole number")
    return number


def _percent(text: str) -> float:
    text = text.strip()
    if not text.endswith("%"):
        raise ValueError(f"{text!r} is not a share: write 48% or 0.48")
    return float(text[:-1].strip()) / 100


def _share_bounds(share: float, panel_size: int) -> Bounds:
    if not 0 <= share <= 1:
        raise DrawError(f"A target share must be between 0 and 1, not {share}.")
    exact = share * panel_size
    return Bounds(math.floor(exact + 1e-9), math.ceil(exact - 1e-9))


@dataclass(frozen=True)
class DrawInput:
    respondents: Sequence[Respondent]
    quotas: Quotas
    panel_size: int
    reserve_size: int = 0
    one_per_household: bool = False
    # How far the organisers accept each quota be relaxed (min_flex, max_flex): only for
    # the advice when the quotas cannot be met; never part of the draw or its record.
    flex: Quotas = field(default_factory=dict, compare=False)

    def canonical(self) -> dict[str, Any]:
        """The pseudonymised input: ids, household numbers (not the organiser's household
        or address ids) and the quota categories only, in a fixed order."""
        return _canonical(
            self.respondents,
            self.quotas,
            self.one_per_household,
            panel_size=self.panel_size,
            reserve_size=self.reserve_size,
        )

    def sha256(self) -> str:
        return sha256_of(self.canonical())


@dataclass(frozen=True)
class ReplaceInput:
    """Replacements for a panel: `kept` stay, `leaving` go; candidates are tried tier by
    tier (the reserve, then everyone else not drawn) until the quotas can be met."""

    respondents: Sequence[Respondent]  # every kept member and every candidate
    quotas: Quotas
    panel_size: int
    kept: Sequence[str]
    leaving: Sequence[str]
    candidate_tiers: Sequence[Sequence[str]]
    one_per_household: bool = False

    def canonical(self) -> dict[str, Any]:
        data = _canonical(
            self.respondents, self.quotas, self.one_per_household, panel_size=self.panel_size
        )
        data["kept"] = sorted(self.kept)
        data["leaving"] = sorted(self.leaving)
        data["candidate_tiers"] = [sorted(tier) for tier in self.candidate_tiers]
        return data

    def sha256(self) -> str:
        return sha256_of(self.canonical())


def _canonical(
    respondents: Sequence[Respondent], quotas: Quotas, one_per_household: bool, **sizes: int
) -> dict[str, Any]:
    categories = list(quotas)
    households: dict[str, str] = {}
    rows = []
    seen: set[str] = set()
    for person in sorted(respondents, key=lambda r: r.id):
        if person.id in seen:
            raise DrawError(f"Respondent {person.id} appears twice in the draw input.")
        seen.add(person.id)
        household = None
        if person.household:
            household = households.setdefault(person.household, f"h{len(households) + 1}")
        rows.append(
            {
                "id": person.id,
                "household": household,
                "attributes": {c: person.attributes.get(c) for c in categories},
            }
        )
    return {
        "format": FORMAT,
        "quotas": {
            c: {v: [b.min, b.max] for v, b in values.items()} for c, values in quotas.items()
        },
        "one_per_household": one_per_household,
        "respondents": rows,
        **sizes,
    }


# --- output ------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuotaRow:
    category: str
    value: str
    min: int
    max: int
    pool: int
    selected: int

    @property
    def met(self) -> bool:
        return self.min <= self.selected <= self.max


@dataclass
class Draw:
    """A completed draw, or (with `pick` None) a published list of panels awaiting the pick."""

    selected: list[str]
    reserve: list[str]
    quota_table: list[QuotaRow]
    lowest_probability: float | None
    mean_probability: float | None
    audit: dict[str, Any]
    canonical_input: dict[str, Any]
    panels: list[list[str]] = field(default_factory=list)  # transparent lottery only
    pick: int | None = None
    notes: list[str] = field(default_factory=list)
    # Each respondent's selection probability (exact, or estimated: see `estimate`).
    probabilities: dict[str, float] = field(default_factory=dict)
    lottery: dict[str, Any] | None = None  # m, and what rounding to m panels changed
    solve: dict[str, Any] | None = None  # kinds, levels, linear programs, seconds
    estimate: dict[str, Any] | None = None  # legacy: {"draws": N} the estimate came from

    @property
    def published_panels(self) -> list[dict[str, Any]]:
        return [
            {"index": i, "sha256": panel_hash(p), "members": sorted(p)}
            for i, p in enumerate(self.panels)
        ]

    @property
    def complete(self) -> bool:
        return not self.panels or self.pick is not None


@dataclass
class Replacement:
    added: list[str]
    tier: int  # 0: from the reserve; 1: from everyone else not drawn
    quota_table: list[QuotaRow]
    audit: dict[str, Any]
    canonical_input: dict[str, Any]


def draw_from_answer(answer: dict[str, Any], payload: dict[str, Any]) -> Draw:
    panels = answer.get("panels") or []
    extra: dict[str, Any] = {}
    if panels:
        hashes = [panel_hash(p) for p in panels]
        extra = {"panels": len(panels), "panel_list_sha256": panel_list_hash(hashes)}
        if answer.get("pick") is not None:
            extra.update(pick_seed=payload.get("pick_seed"), pick_index=answer["pick"])
            if payload.get("pick_number") is not None:
                extra["pick_number"] = payload["pick_number"]
        if answer.get("lottery"):
            extra["lottery_max_change"] = answer["lottery"]["max_change"]
    if answer.get("probabilities"):
        extra["probabilities_sha256"] = sha256_of(answer["probabilities"])
    if answer.get("selected") is not None:
        extra.update(
            selected_sha256=panel_hash(answer["selected"]),
            reserve_sha256=reserve_hash(answer["reserve"]),
            selected=len(answer["selected"]),
            reserve=len(answer["reserve"]),
        )
    return Draw(
        selected=answer.get("selected") or [],
        reserve=answer.get("reserve") or [],
        quota_table=[QuotaRow(**row) for row in answer.get("quota_table") or []],
        lowest_probability=answer.get("lowest_probability"),
        mean_probability=answer.get("mean_probability"),
        audit=_audit(payload, **extra),
        canonical_input=payload["input"],
        panels=panels,
        pick=answer.get("pick"),
        notes=answer.get("notes") or [],
        probabilities=answer.get("probabilities") or {},
        lottery=answer.get("lottery"),
        solve=answer.get("solve"),
    )


def _audit(payload: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "mode": payload["mode"],
        "seed": payload["seed"],
        "seed_number": payload["seed_number"],
        "algorithm": payload["algorithm"],
        "library": LIBRARY,
        "library_version": library_version(),
        "solver_backend": payload.get("solver_backend", SOLVER_BACKEND),
        "versions": payload.get("versions"),
        "python_hash_seed": HASH_SEED,
        "input_sha256": sha256_of(payload["input"]),
        "panel_size": payload["input"]["panel_size"],
        "reserve_size": payload["input"].get("reserve_size", 0),
        "one_per_household": payload["input"]["one_per_household"],
        **extra,
    }


def replacement_from_answer(answer: dict[str, Any], payload: dict[str, Any]) -> Replacement:
    audit = _audit(
        payload,
        added_sha256=panel_hash(answer["added"]),
        added=len(answer["added"]),
        tier=answer["tier"],
    )
    return Replacement(
        added=answer["added"],
        tier=answer["tier"],
        quota_table=[QuotaRow(**row) for row in answer["quota_table"]],
        audit=audit,
        canonical_input=payload["input"],
    )
