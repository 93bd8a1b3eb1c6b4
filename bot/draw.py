"""The stratified draw over plain data, with the `sortition-algorithms` library.

Input: respondents (pseudonymous id, household, attribute values), quotas (min/max per
category value, or target shares), panel size, reserve size, a seed and an algorithm.
Output: the selected, an ordered reserve, the quota table (target vs selected), the lowest
and mean selection probability (for the algorithms that compute a distribution) and an
audit record anyone can use to re-run the draw.

Reproducibility: the library keeps committees in Python sets of strings, whose iteration
order depends on the interpreter's hash seed, so the same seed could give another panel in
another process. Every solve therefore runs in a child interpreter with PYTHONHASHSEED
fixed (`python -m bot.draw`), which also keeps the solver's console output off ours. The
child reads one JSON payload per line and answers with JSON lines: progress events, then
one result or one error. It is reused for the next solve of the same process.

Solver: the library's maximin and nash solve one integer program per respondent (and one
more per respondent no committee covers yet) before they optimise. With the library's
default backend ("highspy") each costs 0.4 to 1 s for 2,000 respondents on two cores, as
its HiGHS wrapper solves every program twice (setting the objective already solves); the
library's "mip-cbc" backend (python-mip with the free CBC solver) solves it once, five to
eight times faster, so a draw of 2,000 takes minutes instead of half an hour or more
(bench/select.py measures both). The lowest probability is the same (it is an optimum),
but the panel a seed yields depends on the backend: the audit records it, and a payload
that names one ("solver_backend") re-runs with that one.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

ALGORITHMS = ("maximin", "nash", "leximin", "legacy")
LIBRARY = "sortition-algorithms"
HASH_SEED = "0"  # the interpreter hash seed every solve runs under
FORMAT = 1  # version of the canonical input and of the pick rule below
SOLVER_BACKEND = "mip-cbc"  # the library's python-mip + CBC backend (see the docstring)


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


def check_algorithm(algorithm: str) -> None:
    if algorithm not in ALGORITHMS:
        raise DrawError(f"Unknown algorithm {algorithm!r}: choose one of {', '.join(ALGORITHMS)}.")
    if algorithm == "leximin" and not gurobi_available():
        # The library would quietly fall back to maximin; an organiser must know instead.
        raise SolverUnavailable(
            "The leximin algorithm needs the commercial Gurobi solver (Python package "
            "'gurobipy' with a licence), and it is not installed. Use --algorithm maximin, "
            "which runs on the free CBC solver, or install Gurobi.")


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
    as {"share": 0.25} or as a bare share; a share becomes floor/ceil of share x panel."""
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
                if isinstance(target, Bounds):
                    bounds = target
                elif isinstance(target, int | float) and not isinstance(target, bool):
                    bounds = _share_bounds(float(target), panel_size)
                elif isinstance(target, Mapping) and "share" in target:
                    bounds = _share_bounds(float(target["share"]), panel_size)
                elif isinstance(target, Mapping) and {"min", "max"} <= set(target):
                    bounds = Bounds(_whole(target["min"]), _whole(target["max"]))
                else:
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
        raise DrawError("Quotas are not usable: " + "; ".join(problems),
                        sorted({p.split("/")[0] for p in problems}))
    return quotas


def _whole(number: Any) -> int:
    if isinstance(number, bool) or not isinstance(number, int):
        raise ValueError(f"{number!r} is not a whole number")
    return number


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

    def canonical(self) -> dict[str, Any]:
        """The pseudonymised input: ids, household numbers (not the organiser's household
        or address ids) and the quota categories only, in a fixed order."""
        return _canonical(self.respondents, self.quotas, self.one_per_household,
                          panel_size=self.panel_size, reserve_size=self.reserve_size)

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
        data = _canonical(self.respondents, self.quotas, self.one_per_household,
                          panel_size=self.panel_size)
        data["kept"] = sorted(self.kept)
        data["leaving"] = sorted(self.leaving)
        data["candidate_tiers"] = [sorted(tier) for tier in self.candidate_tiers]
        return data

    def sha256(self) -> str:
        return sha256_of(self.canonical())


def _canonical(respondents: Sequence[Respondent], quotas: Quotas, one_per_household: bool,
               **sizes: int) -> dict[str, Any]:
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
        rows.append({"id": person.id, "household": household,
                     "attributes": {c: person.attributes.get(c) for c in categories}})
    return {
        "format": FORMAT,
        "quotas": {c: {v: [b.min, b.max] for v, b in values.items()}
                   for c, values in quotas.items()},
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

    @property
    def published_panels(self) -> list[dict[str, Any]]:
        return [{"index": i, "sha256": panel_hash(p), "members": sorted(p)}
                for i, p in enumerate(self.panels)]

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


Progress = Callable[[dict[str, Any]], None]


def run_draw(inp: DrawInput, seed: str, algorithm: str = "maximin", *, panels: int = 1,
             pick_seed: str | None = None, progress: Progress | None = None,
             time_limit: float | None = None) -> Draw:
    """Select a panel (and its reserve). With panels > 1: compute that many quota-compliant
    panels; without `pick_seed` stop there (to publish them), with it pick one."""
    check_algorithm(algorithm)
    if panels < 1:
        raise DrawError("--panels must be at least 1.")
    if panels > 1 and algorithm == "legacy":
        raise DrawError("The legacy algorithm cannot make a transparent lottery of several "
                        "panels; use maximin or nash with --panels.")
    if pick_seed is not None and panels == 1:
        raise DrawError("A pick seed only applies to a transparent lottery (--panels M).")
    if inp.panel_size < 1:
        raise DrawError("The panel size must be at least 1.")
    canonical = inp.canonical()
    payload = {"mode": "select", "input": canonical, "seed": seed,
               "seed_number": seed_number(seed), "algorithm": algorithm, "panels": panels,
               "pick_seed": pick_seed}
    answer = _solve_in_child(payload, progress, time_limit)
    return draw_from_answer(answer, payload)


def run_replace(inp: ReplaceInput, seed: str, algorithm: str = "maximin", *,
                progress: Progress | None = None) -> Replacement:
    check_algorithm(algorithm)
    missing = inp.panel_size - len(inp.kept)
    if missing < 1:
        raise DrawError("The panel is full: nobody needs replacing.")
    payload = {"mode": "replace", "input": inp.canonical(), "seed": seed,
               "seed_number": seed_number(seed), "algorithm": algorithm}
    answer = _solve_in_child(payload, progress)
    audit = _audit(payload, added_sha256=panel_hash(answer["added"]), added=len(answer["added"]),
                   tier=answer["tier"])
    return Replacement(added=answer["added"], tier=answer["tier"],
                       quota_table=[QuotaRow(**row) for row in answer["quota_table"]],
                       audit=audit, canonical_input=payload["input"])


def rerun(payload: Mapping[str, Any], progress: Progress | None = None) -> dict[str, Any]:
    """Run a recorded payload again (for --verify): the child's raw answer."""
    check_algorithm(payload["algorithm"])
    return _solve_in_child(dict(payload), progress)


def rerun_many(payloads: Sequence[Mapping[str, Any]], progress: Progress | None = None,
               time_limit: float | None = None) -> list[dict[str, Any] | DrawError]:
    """Several recorded payloads in one child process: an answer or a DrawError each."""
    if not payloads:
        return []
    for payload in payloads:
        check_algorithm(payload["algorithm"])
    answers = _solve_in_child({"mode": "batch", "payloads": list(payloads)}, progress,
                              time_limit)
    return [DrawError(a["error"]["message"], a["error"].get("categories", ()),
                      a["error"].get("kind", "draw")) if "error" in a else a["result"]
            for a in answers["answers"]]


def draw_from_answer(answer: dict[str, Any], payload: dict[str, Any]) -> Draw:
    panels = answer.get("panels") or []
    extra: dict[str, Any] = {}
    if panels:
        hashes = [panel_hash(p) for p in panels]
        extra = {"panels": len(panels), "panel_list_sha256": panel_list_hash(hashes)}
        if answer.get("pick") is not None:
            extra.update(pick_seed=payload["pick_seed"], pick_index=answer["pick"])
    if answer.get("selected") is not None:
        extra.update(selected_sha256=panel_hash(answer["selected"]),
                     reserve_sha256=reserve_hash(answer["reserve"]),
                     selected=len(answer["selected"]), reserve=len(answer["reserve"]))
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
        "python_hash_seed": HASH_SEED,
        "input_sha256": sha256_of(payload["input"]),
        "panel_size": payload["input"]["panel_size"],
        "reserve_size": payload["input"].get("reserve_size", 0),
        "one_per_household": payload["input"]["one_per_household"],
        **extra,
    }


# --- the child process -----------------------------------------------------------------


class _Worker:
    """A child interpreter with a fixed hash seed that solves one payload per input line.

    It is kept for the next solve (starting Python and the solver costs seconds); it ends
    when this process closes its input, and is killed on a time limit or an interrupt."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONHASHSEED": HASH_SEED}
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self.errors = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.draw"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.errors, text=True, bufsize=1, env=env, cwd=root)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def ask(self, payload: dict[str, Any], progress: Progress | None,
            time_limit: float | None) -> dict[str, Any]:
        process = self.process
        assert process.stdin and process.stdout
        timer = threading.Timer(time_limit, process.kill) if time_limit else None
        try:
            process.stdin.write(canonical_json(payload) + "\n")
            process.stdin.flush()
            if timer:
                timer.start()
            for line in process.stdout:
                message = json.loads(line)
                if "progress" not in message:
                    return message
                if progress is not None:
                    progress(message["progress"])
        except BrokenPipeError:
            pass
        finally:
            if timer:
                timer.cancel()
        code = process.wait()
        if timer and timer.finished.is_set():
            raise DrawError(f"Stopped after the time limit of {time_limit:g} s.",
                            kind="timeout")
        self.errors.seek(0)
        tail = self.errors.read()[-2000:]
        raise DrawError(f"The selection process stopped unexpectedly (exit {code}). "
                        f"Its last output:\n{tail}")

    def close(self) -> None:
        if self.alive:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.errors):
            if stream:
                stream.close()


_worker: _Worker | None = None
_worker_lock = threading.Lock()


def _solve_in_child(payload: dict[str, Any], progress: Progress | None,
                    time_limit: float | None = None) -> dict[str, Any]:
    """Run `payload` in the child interpreter; with `time_limit` (seconds), stop it then."""
    global _worker
    with _worker_lock:
        if _worker is None or not _worker.alive:
            _worker = _Worker()
        try:
            answer = _worker.ask(payload, progress, time_limit)
        except BaseException:
            _worker.close()  # interrupted or dead: never leave a solver running
            _worker = None
            raise
    if "error" in answer:
        error = answer["error"]
        if error.get("kind") == "solver":
            raise SolverUnavailable(error["message"])
        raise DrawError(error["message"], error.get("categories", ()), error.get("kind", "draw"))
    return answer["result"]


class _Reporter:
    """The library's ProgressReporter, forwarding events as JSON lines (throttled)."""

    def __init__(self, out: TextIO):
        self.out = out
        self.last = 0.0

    def _send(self, event: dict[str, Any]) -> None:
        self.out.write(json.dumps({"progress": event}) + "\n")
        self.out.flush()

    def start_phase(self, name: str, total: int | None = None, *,
                    message: str | None = None) -> None:
        self._send({"event": "start", "name": name, "total": total, "message": message})

    def update(self, current: int, *, message: str | None = None) -> None:
        now = time.monotonic()
        if now - self.last >= 0.2:
            self.last = now
            self._send({"event": "update", "current": current, "message": message})

    def end_phase(self) -> None:
        self._send({"event": "end"})


def _child_main() -> None:
    # The solver writes to file descriptor 1; keep that for stderr and talk on a copy.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for line in sys.stdin:
        payload = json.loads(line)
        try:
            answer = {"result": solve(payload, _Reporter(out))}
        except DrawError as error:
            answer = {"error": {"message": error.message, "kind": error.kind,
                                "categories": error.categories}}
        except Exception as error:  # a library failure: say which, keep serving
            traceback.print_exc()
            answer = {"error": {"message": f"The selection library failed: "
                                           f"{type(error).__name__}: {error}", "kind": "crash"}}
        out.write(canonical_json(answer) + "\n")
        out.flush()


# --- inside the child: the library calls -----------------------------------------------
# Only the child imports sortition_algorithms (and the solver) here, lazily.


def solve(payload: Mapping[str, Any], reporter: Any = None) -> dict[str, Any]:
    if payload["mode"] == "batch":
        answers = []
        for one in payload["payloads"]:
            try:
                answers.append({"result": solve(one, reporter)})
            except DrawError as error:
                answers.append({"error": {"message": error.message, "kind": error.kind,
                                          "categories": error.categories}})
        return {"answers": answers}
    if payload["mode"] == "select":
        return _solve_select(payload, reporter)
    if payload["mode"] == "replace":
        return _solve_replace(payload, reporter)
    raise DrawError(f"Unknown draw mode {payload['mode']!r}.")


def _library_settings(payload: Mapping[str, Any]) -> Any:
    from sortition_algorithms import Settings

    household = bool(payload["input"]["one_per_household"])
    return Settings(id_column="id", columns_to_keep=[], check_same_address=household,
                    check_same_address_columns=["household"] if household else [],
                    selection_algorithm=payload["algorithm"],
                    solver_backend=_solver_backend(payload),
                    random_number_seed=int(payload["seed_number"]))


def _solver_backend(payload: Mapping[str, Any]) -> str:
    """The backend a payload names (a recorded one keeps its own), else SOLVER_BACKEND.
    Never a silent fallback to another: the same seed would give another panel."""
    backend = str(payload.get("solver_backend") or SOLVER_BACKEND)
    if backend.startswith("mip") and importlib.util.find_spec("mip") is None:
        raise SolverUnavailable(
            f"The draw runs on the {backend!r} solver backend, which needs the Python package "
            "'mip' (python-mip, with the free CBC solver): pip install 'mip>=1.17,<2'.")
    return backend


def _features(quotas: Mapping[str, Mapping[str, Sequence[int]]], size: int) -> Any:
    from sortition_algorithms import read_in_features
    from sortition_algorithms.errors import SelectionError

    body = [{"feature": c, "value": v, "min": str(b[0]), "max": str(b[1])}
            for c, values in quotas.items() for v, b in values.items()]
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
        body.append({"id": row["id"], "household": row["household"] or f"solo:{row['id']}",
                     **{c: attributes.get(c) or "" for c in categories}})
    if missing:
        detail = "; ".join(f"{c}: {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}"
                           for c, ids in missing.items())
        raise DrawError(f"Some respondents have no answer for a quota category ({detail}).",
                        list(missing))
    try:
        people, _ = read_in_people(["id", "household", *categories], body, features, settings)
    except SelectionError as error:
        raise DrawError("Some answers are not values the quotas know: "
                        + "; ".join(str(error).splitlines()[:10]), categories) from None
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
            + " ".join(advice), categories, kind="infeasible")
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    text = text.replace("features", "categories").replace("feature", "category")
    named = sorted(c for c in quotas if f"'{c}'" in text or f" {c} " in f" {text} ")
    if named:
        text += f" (categories: {', '.join(named)})"
    return DrawError(text, named, kind="infeasible")


def _run(features: Any, people: Any, size: int, settings: Any, quotas: Mapping[str, Any], *,
         reporter: Any, number_selections: int = 1, already_selected: Any = None
         ) -> tuple[list[frozenset[str]], dict[str, float]]:
    from sortition_algorithms import run_stratification

    ok, panels, report = run_stratification(
        features, people, size, settings, number_selections=number_selections,
        already_selected=already_selected, progress_reporter=reporter)
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
        find_any_committee(_features(quotas, size), people, size,
                           settings.normalised_address_columns, settings.solver_backend)
    except (SelectionError, SortitionBaseError, DrawError):
        return False
    return True


def _name_conflict(error: DrawError, quotas: Mapping[str, Any], people: Any, size: int,
                   settings: Any) -> DrawError:
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
        return DrawError("The panel cannot be filled with one person per household: too few "
                         "households among the respondents.", [], kind="infeasible")
    advice = error.message.split("Smallest change that would work:", 1)[-1].strip()
    return DrawError(
        f"The quotas cannot all be met with these respondents. Categories in conflict: "
        f"{', '.join(conflict)}. Smallest change that would work: {advice}", conflict,
        kind="infeasible")


def _probabilities(report: Any) -> dict[str, float]:
    """Per-person selection probabilities from the library's distribution table."""
    for element in report.serialize().get("_data", []):
        headers = element.get("headers") or []
        if "Probability of selection" in headers:
            column = headers.index("Probability of selection")
            return {str(row[0]): float(str(row[column]).rstrip("%")) / 100
                    for row in element["data"]}
    return {}


def _quota_table(quotas: Mapping[str, Mapping[str, Sequence[int]]],
                 rows: Sequence[Mapping[str, Any]], chosen: Iterable[str]) -> list[dict[str, Any]]:
    chosen = set(chosen)
    table = []
    for category, values in quotas.items():
        for value, (low, high) in values.items():
            pool = [r for r in rows if r["attributes"].get(category) == value]
            table.append({"category": category, "value": value, "min": low, "max": high,
                          "pool": len(pool),
                          "selected": sum(1 for r in pool if r["id"] in chosen)})
    return table


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
    panels, probabilities = _run(features, people, size, settings, quotas, reporter=reporter,
                                 number_selections=count)
    result: dict[str, Any] = {"notes": []}
    if probabilities:
        values = [probabilities.get(r["id"], 0.0) for r in rows]
        result["lowest_probability"] = min(values)
        result["mean_probability"] = sum(values) / len(values)
    if count > 1:
        result["panels"] = [sorted(p) for p in panels]
        if payload.get("pick_seed") is None:
            return result  # published, awaiting the announced pick seed
        result["pick"] = pick_index(payload["pick_seed"], count)
        chosen = panels[result["pick"]]
    else:
        chosen = panels[0]
    result["selected"] = sorted(chosen)
    result["quota_table"] = _quota_table(quotas, rows, chosen)
    result["reserve"] = _reserve(payload, rows, chosen, people, settings, reporter,
                                 result["notes"])
    return result


def _subset(people: Any, ids: Iterable[str]) -> Any:
    from copy import deepcopy

    keep = set(ids)
    subset = deepcopy(people)
    subset.remove_many([pid for pid in people if pid not in keep])
    return subset


def _reserve(payload: Mapping[str, Any], rows: Sequence[Mapping[str, Any]],
             chosen: frozenset[str], people: Any, settings: Any, reporter: Any,
             notes: list[str]) -> list[str]:
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
        remaining.remove_many([pid for pid in list(remaining)
                               if remaining.get_address(pid, ["household"]) in taken])
    if remaining.count < wanted:
        notes.append(f"Only {remaining.count} people remain for a reserve of {wanted}.")
        wanted = remaining.count
    if wanted < 1:
        return []
    if wanted == remaining.count:
        return reserve_order(payload["seed"], list(remaining))
    scaled = {c: {v: [math.floor(b[0] * wanted / size), math.ceil(b[1] * wanted / size)]
                  for v, b in values.items()} for c, values in data["quotas"].items()}
    loose = {c: {v: [0, wanted] for v in values} for c, values in data["quotas"].items()}
    for quotas in (scaled, loose):
        try:
            features = _features(quotas, wanted)
            picked, _ = _run(features, remaining, wanted, settings, quotas, reporter=reporter)
        except DrawError:
            notes.append("The reserve could not follow the scaled quotas; it was drawn "
                         "without them.")
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
        raise DrawError("Those staying already exceed a quota maximum in: "
                        + ", ".join(sorted(set(over))), sorted(set(over)), kind="infeasible")
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
            picked, _ = _run(features, people, needed, settings, remaining_quotas,
                             reporter=reporter, already_selected=already)
        except DrawError as error:
            last_error = error
            continue
        added = sorted(picked[0])
        table = _quota_table(data["quotas"], rows, [*kept, *added])
        return {"added": added, "tier": tier, "quota_table": table}
    if last_error is not None:
        raise last_error
    raise DrawError(f"Not enough candidates ({len(pool)}) to fill {needed} places.",
                    kind="infeasible")


if __name__ == "__main__":
    _child_main()
