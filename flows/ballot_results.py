"""A closed ballot's results as each voter reads them, in their language: turnout and
quorum, the outcome, and where the list of receipts is and how to check one's own. Pure:
the service passes the published results (bot/services/ballots/tallying.py).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from babel.lists import format_list

from flows import ballot_text as bt
from flows.i18n import Translator

KIND = "ballot_result"  # the outbox kind: results are public, never blanked at a close


def percent(share: float | str) -> str:
    return str(round(float(Fraction(share)) * 100))


def results_message(
    definition: dict[str, Any], results: dict[str, Any], t: Translator, *, voted: bool
) -> str:
    """What a person on the roll is told at the close (voted says whether they did)."""
    lines = [
        t.gettext(
            "Voting in “{title}” has closed: {voted} of {voters} voted.",
            title=bt.title(definition, t),
            voted=results["voted"],
            voters=results["voters"],
        )
    ]
    if results.get("quorum"):
        n = results["quorum"]
        lines.append(
            t.ngettext(
                "The quorum of {quorum} voter was met.",
                "The quorum of {quorum} voters was met.",
                n,
                quorum=n,
            )
            if results["quorum_met"]
            else t.ngettext(
                "The quorum of {quorum} voter was not met.",
                "The quorum of {quorum} voters was not met.",
                n,
                quorum=n,
            )
        )
    lines.append(outcome(definition, results["tally"], t))
    lines.append(receipts(definition, t, voted=voted))
    return "\n".join(lines)


def outcome(definition: dict[str, Any], tally: dict[str, Any], t: Translator) -> str:
    """The result in one or two sentences, in the voter's words."""
    if not tally["ballots"]:
        return t.gettext("No vote was cast.")
    labels = dict(bt.options(definition, t))
    method, details = definition["method"], tally["details"]
    if method == "scale":
        level = definition.get("threshold_level") or details["threshold_level"]
        values = {
            "share": percent(details["share_at_or_above_exact"]),
            "level": labels[str(level)],
            "needed": percent(details["threshold_share"]),
        }
        return (
            t.gettext(
                "Result: {share}% at “{level}” or above ({needed}% needed): adopted.", **values
            )
            if details["passed"]
            else t.gettext(
                "Result: {share}% at “{level}” or above ({needed}% needed): not adopted.",
                **values,
            )
        )
    if method == "ranking":
        order = ", ".join(
            f"{n}. {' = '.join(labels[k] for k in group)}"
            for n, group in enumerate(tally["ranking"], start=1)
        )
        return t.gettext("Result, in order: {order}.", order=order)
    if method == "majority_judgment":
        names = bt.grades(definition, t)
        grade = details["majority_grade_index"]
        order = ", ".join(
            f"{n}. {' = '.join(f'{labels[k]} ({names[len(names) - 1 - grade[k]]})' for k in group)}"
            for n, group in enumerate(tally["ranking"], start=1)
        )
        return t.gettext("Result, in order (majority grade): {order}.", order=order)
    counts = ", ".join(f"{labels[k]} {details['counts'][k]}" for k in tally["options"])
    winners = [labels[k] for k in tally["winners"]]
    if not winners:
        return t.gettext("Result: {counts}. No option had the majority needed.", counts=counts)
    return t.ngettext(
        "Result: {counts}. Chosen: {winners}.",
        "Result: {counts}. Chosen, tied: {winners}.",
        len(winners),
        counts=counts,
        winners=format_list(winners, locale=t.locale),
    )


def receipts(definition: dict[str, Any], t: Translator, *, voted: bool) -> str:
    """Where the list of receipt codes is, and what to look for in it."""
    where = definition.get("results_at")
    if isinstance(where, dict):
        where = bt.localised(where, t.language)
    if voted:
        return (
            t.gettext(
                "Check your vote: find the receipt code we gave you when you voted in the "
                "list of receipts published at {where}. It must show the vote you cast, or "
                "“replaced” if you voted again later.",
                where=where,
            )
            if where
            else t.gettext(
                "Check your vote: find the receipt code we gave you when you voted in the "
                "list of receipts the organisers publish. It must show the vote you cast, or "
                "“replaced” if you voted again later."
            )
        )
    return (
        t.gettext(
            "You did not vote. The list of receipts published at {where} shows every "
            "receipt code with the vote it carries, so anyone can count the votes again.",
            where=where,
        )
        if where
        else t.gettext(
            "You did not vote. The list of receipts the organisers publish shows every "
            "receipt code with the vote it carries, so anyone can count the votes again."
        )
    )
