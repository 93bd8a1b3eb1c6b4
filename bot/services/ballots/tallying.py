"""The published results of a closed ballot: the method's tally of the counted votes, the
turnout and quorum, and every receipt code with the choice it carries (or "replaced"),
with digests the audit trail records.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any

from bot.services.ballots.counting import count
from bot.services.ballots.voting import count_options, count_params, counted_shape
from store.ballots import COUNTED, Ballot


def digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def results_of(
    ballot: Ballot, votes: list[dict[str, Any]], voters: int, voted: int
) -> dict[str, Any]:
    from bot.services.ballots.records import quorum_needed

    definition = ballot.definition
    method = definition["method"]
    counted = [counted_shape(method, v["choice"]) for v in votes if v["status"] == COUNTED]
    tally = count(method, count_options(ballot.id, definition), counted, **count_params(definition))
    plain_tally = json.loads(json.dumps(asdict(tally), default=list))
    trackers = sorted([v["tracker"], v["choice"], v["status"]] for v in votes)
    needed = quorum_needed(definition, voters)
    results = {
        "ballot": ballot.id,
        "method": method,
        "voters": voters,
        "voted": voted,
        "quorum": needed,
        "quorum_met": voted >= needed,
        "tally": plain_tally,
        "trackers": trackers,
    }
    results["trackers_sha256"] = digest(trackers)
    results["results_sha256"] = digest({k: results[k] for k in sorted(results)})
    return results
