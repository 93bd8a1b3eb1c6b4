"""The draw: each run's seed, algorithm and input hash, every respondent's selection
probability by pseudonym, and the quotas against the panel achieved (small counts hidden
as in the participation table)."""

from __future__ import annotations

from bot.services.publish.context import Context
from bot.services.publish.package import Field, Resource
from bot.services.publish.suppression import SUPPRESSED, per_category
from flows.i18n import N_
from store.draw_records import runs


async def draws(session, context: Context) -> list[Resource]:
    recorded = await runs(session)
    run_rows, probabilities, quotas = [], [], []
    for run in recorded:
        data = run.payload.get("input", {})
        result = run.result or {}
        run_rows.append(
            {
                "draw_id": run.draw_id,
                "kind": run.kind,
                "status": run.status,
                "seed": run.seed,
                "algorithm": run.algorithm,
                "solver_backend": run.payload.get("solver_backend"),
                "library_version": run.library_version,
                "input_sha256": run.input_sha256,
                "respondents": len(data.get("respondents", [])),
                "panel_size": data.get("panel_size"),
                "reserve_size": data.get("reserve_size"),
                "one_per_household": data.get("one_per_household"),
                "lowest_probability": run.lowest_probability,
                "estimated_from_draws": (result.get("estimate") or {}).get("draws"),
                "audit_seq": run.audit_seq,
                "at": run.created_at,
            }
        )
        for pseudonym, value in sorted((result.get("probabilities") or {}).items()):
            probabilities.append(
                {"draw_id": run.draw_id, "pseudonym": pseudonym, "probability": value}
            )
        quotas += _quota_rows(run.draw_id, result.get("quota_table") or [], data, context)
    return [
        Resource(
            "draws",
            N_("The draws"),
            "Every stratified draw recorded (the selection, replacements, a published "
            "lottery): what re-runs it (`concorder select --verify`) besides its input, "
            "whose SHA-256 is given.",
            [
                Field("draw_id", "string", "The draw's id.", required=True),
                Field("kind", "string", "select or replace."),
                Field(
                    "status",
                    "string",
                    "done, published (a lottery awaiting its pick) or superseded.",
                ),
                Field("seed", "string", "The seed announced for the draw."),
                Field("algorithm", "string", "maximin, leximin, nash or legacy."),
                Field("solver_backend", "string", "The solver that computed it."),
                Field("library_version", "string", "The version of the selection code."),
                Field("input_sha256", "string", "SHA-256 of the pseudonymised input."),
                Field("respondents", "integer", "People the draw chose among."),
                Field("panel_size", "integer", "Places on the panel."),
                Field("reserve_size", "integer", "Places on the reserve list."),
                Field("one_per_household", "boolean", "At most one person per household."),
                Field("lowest_probability", "number", "The lowest selection probability."),
                Field(
                    "estimated_from_draws",
                    "integer",
                    "Probabilities estimated from this many repeated draws (legacy only).",
                ),
                Field("audit_seq", "integer", "The audit event that recorded it."),
                Field("at", "datetime", "When it was recorded (UTC)."),
            ],
            run_rows,
            ["draw_id"],
        ),
        Resource(
            "draw_probabilities",
            N_("Selection probabilities"),
            "Each respondent's probability of being selected, by pseudonym.",
            [
                Field("draw_id", "string", "The draw.", required=True),
                Field("pseudonym", "string", "The respondent's pseudonym.", required=True),
                Field("probability", "number", "Their selection probability, 0 to 1."),
            ],
            probabilities,
            ["draw_id", "pseudonym"],
        ),
        Resource(
            "draw_quotas",
            N_("Quotas against the panel achieved"),
            "Per quota category and value: the bounds, the respondents and the panel drawn "
            f"(shown whole). Respondents from 1 to {context.min_cell - 1}, and counts that "
            f"would give one away by subtraction, read '{SUPPRESSED}'.",
            [
                Field("draw_id", "string", "The draw.", required=True),
                Field("category", "string", "The quota category.", required=True),
                Field("value", "string", "Its value.", required=True),
                Field("min", "integer", "Fewest the panel may hold."),
                Field("max", "integer", "Most the panel may hold."),
                Field("respondents", "integer", "Respondents with this value."),
                Field("panel", "integer", "Panel members drawn with this value."),
                Field("met", "boolean", "Whether the panel is within the bounds."),
            ],
            quotas,
            ["draw_id", "category", "value"],
        ),
    ]


def _quota_rows(draw_id: str, table: list[dict], data: dict, context: Context) -> list[dict]:
    """The panel achieved is shown whole: it is what the quotas promised (a bound with
    min = max says it anyway). The respondents per value are counted like participation:
    small counts hidden, their total (in `draws`) public."""
    cells = {(row["category"], row["value"]): row["pool"] for row in table}
    shown = per_category(cells, len(data.get("respondents", [])), context.min_cell)
    return [
        {
            "draw_id": draw_id,
            "category": row["category"],
            "value": row["value"],
            "min": row["min"],
            "max": row["max"],
            "respondents": shown[(row["category"], row["value"])],
            "panel": row["selected"],
            "met": row["min"] <= row["selected"] <= row["max"],
        }
        for row in table
    ]
