"""Verifying recorded draws: each run against the audit trail and its selection rows, then
all of them re-run in one child process and compared with what was recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.draw.records import DrawRecordError
from bot.services.draw.rules import (
    LIBRARY,
    SOLVER_BACKEND,
    DrawError,
    backend_versions,
    library_version,
    panel_hash,
    panel_list_hash,
    reserve_hash,
    sha256_of,
)
from bot.services.draw.worker import Progress, rerun_many
from store import audit
from store.draw_records import PUBLISHED, REPLACE, SELECT, SUPERSEDED, DrawRun, runs
from store.models import AuditEvent
from store.recruitment import Selection


class BackendChanged(DrawRecordError):
    """A recorded draw would be re-run on other solver versions than it was made with."""


def backend_changes(payload: dict[str, Any]) -> list[str]:
    """How the solver backend here differs from the one a payload was recorded with
    (Python by its minor version): empty when the same, or when the record names none."""
    recorded = payload.get("versions")
    if not recorded:
        return []
    backend = payload.get("solver_backend") or SOLVER_BACKEND
    here = backend_versions(backend)
    changes = []
    for package in sorted(set(recorded) | set(here)):
        was, now = recorded.get(package, "not recorded"), here.get(package, "not installed")
        if package == "python":
            was, now = ".".join(was.split(".")[:2]), ".".join(now.split(".")[:2])
        if was != now:
            changes.append(f"{package} {was} recorded, {now} here")
    return changes


@dataclass
class RunCheck:
    draw_id: str
    kind: str
    differences: list[str]
    warnings: list[str]
    audited: dict[str, Any] | None = None  # the draw's audit event data

    @property
    def ok(self) -> bool:
        return not self.differences


def _compare(label: str, recorded: list[str], again: list[str], ordered: bool = False) -> list[str]:
    if recorded == again or (not ordered and sorted(recorded) == sorted(again)):
        return []
    only_recorded = sorted(set(recorded) - set(again))
    only_again = sorted(set(again) - set(recorded))
    if not only_recorded and not only_again:
        return [
            f"{label}: same people in another order "
            f"(recorded {', '.join(recorded)}; re-run {', '.join(again)})"
        ]
    return [
        f"{label} differs: only in the record {', '.join(only_recorded) or '-'}; "
        f"only in the re-run {', '.join(only_again) or '-'}"
    ]


async def check_record(
    session: AsyncSession, run: DrawRun
) -> tuple[list[str], list[str], dict[str, Any] | None]:
    """The recorded payload against the audit trail, and the rows against the result."""
    differences: list[str] = []
    warnings: list[str] = []
    event = (
        (
            await session.execute(select(AuditEvent).where(AuditEvent.seq == run.audit_seq))
        ).scalar_one_or_none()
        if run.audit_seq
        else None
    )
    input_hash = sha256_of(run.payload["input"])
    if event is None:
        differences.append("no audit event records this draw")
    else:
        for key, value in (
            ("input_sha256", input_hash),
            ("seed", run.payload["seed"]),
            ("algorithm", run.payload["algorithm"]),
        ):
            if event.data.get(key) != value:
                differences.append(
                    f"the recorded {key} does not match the audit trail "
                    f"({value} vs {event.data.get(key)})"
                )
        if event.data.get("library_version") != library_version():
            warnings.append(
                f"recorded with {LIBRARY} {event.data.get('library_version')},"
                f" re-run with {library_version()}"
            )
    if run.kind == SELECT and run.status != PUBLISHED:
        rows = {s.participant_id for s in (await session.execute(select(Selection))).scalars()}
        missing = sorted(set(run.result["selected"]) - rows)
        if missing:
            differences.append(f"selected but with no selection row: {', '.join(missing)}")
    return differences, warnings, (event.data if event is not None else None)


def compare_audited(audited: dict[str, Any] | None, again: dict[str, Any]) -> list[str]:
    """The re-run against the hashes in the audit trail (which cannot be edited unseen)."""
    if not audited:
        return []
    found = {}
    if "added" in again:
        found["added_sha256"] = panel_hash(again["added"])
    if again.get("panels"):
        found["panel_list_sha256"] = panel_list_hash([panel_hash(p) for p in again["panels"]])
        found["pick_index"] = again.get("pick")
    if again.get("selected") is not None:
        found["selected_sha256"] = panel_hash(again["selected"])
        found["reserve_sha256"] = reserve_hash(again["reserve"])
    if again.get("probabilities"):
        found["probabilities_sha256"] = sha256_of(again["probabilities"])
    names = {
        "probabilities_sha256": "selection probabilities",
        "added_sha256": "replacements",
        "panel_list_sha256": "list of panels",
        "pick_index": "pick",
        "selected_sha256": "panel",
        "reserve_sha256": "reserve",
    }
    return [
        f"the re-run's {names[key]} does not match the audit trail"
        for key, value in found.items()
        if key in audited and audited[key] != value
    ]


def compare_rerun(run: DrawRun, again: dict[str, Any]) -> list[str]:
    recorded = run.result
    if run.kind == REPLACE:
        return _compare("replacements", recorded["added"], again["added"])
    differences = []
    if recorded.get("panels"):
        again_hashes = [panel_hash(p) for p in again.get("panels") or []]
        if again_hashes != recorded["panels"]:
            differences.append(
                "the list of panels differs (list hash "
                f"{panel_list_hash(recorded['panels'])} recorded, "
                f"{panel_list_hash(again_hashes)} re-run)"
            )
        if recorded.get("pick") != again.get("pick"):
            differences.append(
                f"the pick differs: panel {recorded.get('pick')} recorded, "
                f"{again.get('pick')} re-run"
            )
    differences += _compare_probabilities(recorded, again)
    if run.status != PUBLISHED:
        differences += _compare("panel", recorded["selected"], again.get("selected") or [])
        differences += _compare(
            "reserve", recorded["reserve"], again.get("reserve") or [], ordered=True
        )
    return differences


def _compare_probabilities(recorded: dict[str, Any], again: dict[str, Any]) -> list[str]:
    """Exact probabilities must come back the same; estimated ones are not re-estimated."""
    before = recorded.get("probabilities") or {}
    if not before or recorded.get("estimate"):
        return []
    after = again.get("probabilities") or {}
    worst = max(before, key=lambda pid: abs(before[pid] - after.get(pid, -1.0)))
    change = abs(before[worst] - after.get(worst, -1.0))
    if change <= 1e-9:
        return []
    return [
        f"the selection probabilities differ (most for {worst}: "
        f"{before[worst]:.6%} recorded, {after.get(worst, 0.0):.6%} re-run)"
    ]


async def verify_draws(
    sessions: async_sessionmaker[AsyncSession],
    progress: Progress | None = None,
    on_run: Callable[[DrawRun], None] | None = None,
    allow_backend_change: bool = False,
) -> list[RunCheck]:
    """Every recorded draw checked and re-run. A draw recorded on other solver versions
    than these is refused (BackendChanged) unless `allow_backend_change`: then a warning."""
    async with sessions() as session:
        recorded = [r for r in await runs(session) if r.status != SUPERSEDED]
        if not recorded:
            raise DrawRecordError("No draw is recorded yet: nothing to verify.")
        checks = []
        changed = {run.draw_id: backend_changes(run.payload) for run in recorded}
        if any(changed.values()) and not allow_backend_change:
            raise BackendChanged(
                "Not re-run: the solver backend differs from the one the draw was made with "
                "("
                + "; ".join(f"{d}: {', '.join(c)}" for d, c in changed.items() if c)
                + "). Another backend may give another panel from the same seed. Re-run "
                "with the recorded versions, or give --allow-backend-change to compare anyway."
            )
        for run in recorded:
            differences, warnings, audited = await check_record(session, run)
            warnings += [f"re-run on another backend: {c}" for c in changed[run.draw_id]]
            checks.append(RunCheck(run.draw_id, run.kind, differences, warnings, audited))
        chain = await audit.verify(session)
        trail = RunCheck(
            "audit trail",
            "audit",
            [] if chain.ok else [f"broken at event {chain.first_bad_seq}: {chain.reason}"],
            [],
        )
    if on_run:
        for run in recorded:
            on_run(run)
    # One child process re-runs them all, in the order they were made.
    answers = await asyncio.to_thread(rerun_many, [r.payload for r in recorded], progress)
    for run, check, again in zip(recorded, checks, answers, strict=True):
        if isinstance(again, DrawError):
            check.differences.append(f"the re-run failed: {again.message}")
            continue
        check.differences += compare_rerun(run, again)
        check.differences += compare_audited(check.audited, again)
    return [trail, *checks]
