"""The stratified draw with the `sortition-algorithms` library.

Input: respondents (pseudonymous id, household, attribute values), quotas (min/max per
category value, or target shares), panel size, reserve size, a seed and an algorithm.
Output: the selected, an ordered reserve, the quota table (target vs selected), the lowest
and mean selection probability (for the algorithms that compute a distribution) and an
audit record anyone can use to re-run the draw.

rules.py holds the pure rules (seeds, hashes, canonical input, pick rule); worker.py runs
each solve in a child interpreter (solver.py is what runs there); records.py gathers the
input and writes the result; verify.py re-runs recorded draws and compares.
"""

import importlib
from typing import TYPE_CHECKING

from bot.services.draw.rules import (
    KINDS_BACKEND,
    LIBRARY,
    SOLVER_BACKEND,
    Bounds,
    Draw,
    DrawError,
    DrawInput,
    QuotaRow,
    Quotas,
    ReplaceInput,
    Replacement,
    Respondent,
    SolverUnavailable,
    backend_for,
    backend_versions,
    check_algorithm,
    draw_from_answer,
    gurobi_available,
    library_version,
    panel_hash,
    panel_list_hash,
    pick_index,
    quota_bounds,
    seed_number,
)
from bot.services.draw.worker import (
    Progress,
    SolverWorker,
    rerun,
    rerun_many,
    run_draw,
    run_replace,
)

# The solver's child interpreter imports this package too: the records, the verification
# and their database layer (over a second to import) load only when first asked for.
_LATER = {
    "records": (
        "DrawRecordError",
        "DrawRules",
        "draw_input",
        "record_publication",
        "record_replacement",
        "record_selection",
        "recorded_rules",
        "refuse_second_draw",
        "replace_input",
        "rules_for",
        "rules_from_assembly",
        "rules_from_file",
        "replace_payload",
        "select_payload",
    ),
    "verify": (
        "BackendChanged",
        "RunCheck",
        "backend_changes",
        "check_record",
        "compare_audited",
        "compare_rerun",
        "verify_draws",
    ),
}

if TYPE_CHECKING:
    from bot.services.draw.records import (
        DrawRecordError,
        DrawRules,
        draw_input,
        record_publication,
        record_replacement,
        record_selection,
        recorded_rules,
        refuse_second_draw,
        replace_input,
        replace_payload,
        rules_for,
        rules_from_assembly,
        rules_from_file,
        select_payload,
    )
    from bot.services.draw.verify import (
        BackendChanged,
        RunCheck,
        backend_changes,
        check_record,
        compare_audited,
        compare_rerun,
        verify_draws,
    )


def __getattr__(name: str) -> object:
    for module, names in _LATER.items():
        if name in names:
            return getattr(importlib.import_module(f"{__name__}.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "KINDS_BACKEND",
    "LIBRARY",
    "SOLVER_BACKEND",
    "BackendChanged",
    "Bounds",
    "Draw",
    "DrawError",
    "DrawInput",
    "DrawRecordError",
    "DrawRules",
    "Progress",
    "QuotaRow",
    "Quotas",
    "ReplaceInput",
    "Replacement",
    "Respondent",
    "RunCheck",
    "SolverUnavailable",
    "SolverWorker",
    "backend_changes",
    "backend_for",
    "backend_versions",
    "check_algorithm",
    "check_record",
    "compare_audited",
    "compare_rerun",
    "draw_from_answer",
    "draw_input",
    "gurobi_available",
    "library_version",
    "panel_hash",
    "panel_list_hash",
    "pick_index",
    "quota_bounds",
    "record_publication",
    "record_replacement",
    "record_selection",
    "recorded_rules",
    "refuse_second_draw",
    "replace_input",
    "rerun",
    "rerun_many",
    "rules_for",
    "rules_from_assembly",
    "rules_from_file",
    "run_draw",
    "run_replace",
    "seed_number",
    "replace_payload",
    "select_payload",
    "verify_draws",
]
