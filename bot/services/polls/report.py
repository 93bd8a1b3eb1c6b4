"""A poll's report: for each question, the same people's first wave against their last,
with the paired tests and effect sizes of stats.py, overall and (with `by`) for each value
of a quota category, where a group of fewer than `min_cell` pairs is suppressed (its
numbers are not computed, so none can be read back from the others).

Agreement questions compare the 1 to 5 answers (a SKIP pairs with nothing); knowledge
questions compare right (1) against wrong or skipped (0); the knowledge score is each
person's share of knowledge questions right, among those who answered a knowledge
question in both waves.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.polls.pseudonyms import respondent
from bot.services.polls.records import PollProblem, get_poll, waves_of
from bot.services.polls.stats import Paired, paired
from flows.poll import localised
from store.polls import PENDING, PollAnswer, PollRoll
from store.recruitment import PoolEntry, RegistrationAnswer

SCORE = "knowledge-score"
OVERALL = "all"


@dataclass(frozen=True)
class Row:
    question: str  # a question id, or SCORE
    text: str
    kind: str  # agree | knowledge | score
    group: str  # OVERALL, or a category's value
    result: Paired | None  # None: suppressed (fewer than min_cell pairs)
    pairs: int  # shown as "< min_cell" when suppressed

    def plain(self, min_cell: int) -> dict[str, Any]:
        base = {"question": self.question, "text": self.text, "kind": self.kind}
        base["group"] = self.group
        if self.result is None:
            return {**base, "suppressed": f"fewer than {min_cell} pairs"}
        return {**base, **self.result.plain()}


@dataclass
class Report:
    poll: str
    title: str
    before: str  # wave ids compared
    after: str
    by: str | None
    min_cell: int
    respondents: dict[str, int] = field(default_factory=dict)  # per wave: who answered
    rows: list[Row] = field(default_factory=list)

    def plain(self) -> dict[str, Any]:
        return {
            "poll": self.poll,
            "title": self.title,
            "before": self.before,
            "after": self.after,
            "by": self.by,
            "min_cell": self.min_cell,
            "respondents": self.respondents,
            "rows": [r.plain(self.min_cell) for r in self.rows],
        }


def _pairs(values: dict[str, dict[str, float]], before: str, after: str, who) -> tuple:
    people = sorted(p for p in values if before in values[p] and after in values[p] and who(p))
    return [values[p][before] for p in people], [values[p][after] for p in people]


def build(
    definition: dict[str, Any],
    answers: list[tuple[str, str, str, str | None]],
    before: str,
    after: str,
    groups: dict[str, str] | None = None,
    min_cell: int = 5,
    language: str = "en",
) -> list[Row]:
    """The report's rows from answers (wave, question, respondent, value); `groups` maps a
    respondent to their category value. Pure."""
    questions = {q["id"]: q for q in definition["questions"]}
    by_question: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    score: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for wave, qid, who, value in answers:
        q = questions.get(qid)
        if q is None or wave not in (before, after):
            continue
        if q["kind"] == "agree":
            if value is not None:
                by_question[qid][who][wave] = float(value)
        else:
            right = float(value == q["answer"])
            by_question[qid][who][wave] = right
            score[who][wave].append(right)
    knowledge = [q for q in definition["questions"] if q["kind"] == "knowledge"]
    score_values = {
        who: {w: sum(v) / len(knowledge) for w, v in waves.items()} for who, waves in score.items()
    }
    names = sorted(set((groups or {}).values())) if groups is not None else []
    rows: list[Row] = []
    targets = [
        (q["id"], localised(q["text"], language), q["kind"], by_question[q["id"]])
        for q in definition["questions"]
    ]
    if knowledge:
        targets.append((SCORE, "Knowledge score (share right)", "score", score_values))
    for qid, text, kind, values in targets:
        for group in [OVERALL, *names]:

            def who(p: str, group: str = group) -> bool:
                return group == OVERALL or (groups or {}).get(p) == group

            b, a = _pairs(values, before, after, who)
            suppressed = group != OVERALL and len(b) < min_cell
            rows.append(Row(qid, text, kind, group, None if suppressed else paired(b, a), len(b)))
    return rows


async def category_of(
    session: AsyncSession, participant_ids: list[str], category: str
) -> dict[str, str]:
    """Each person's value of a quota category: their registration answer to it, else the
    pool file's attribute; "(none)" when neither says."""
    found = {p: "(none)" for p in participant_ids}
    rows = await session.execute(
        select(PoolEntry.participant_id, PoolEntry.attributes).where(
            PoolEntry.participant_id.in_(participant_ids)
        )
    )
    for pid, attributes in rows:
        if (attributes or {}).get(category) not in (None, ""):
            found[pid] = str(attributes[category])
    rows = await session.execute(
        select(RegistrationAnswer.participant_id, RegistrationAnswer.answer).where(
            RegistrationAnswer.participant_id.in_(participant_ids),
            RegistrationAnswer.question_id == category,
        )
    )
    for pid, answer in rows:
        found[pid] = answer
    return found


async def poll_report(
    session: AsyncSession,
    key: bytes,
    poll_id: str,
    *,
    by: str | None = None,
    min_cell: int = 5,
    language: str = "en",
) -> Report:
    poll = await get_poll(session, poll_id)
    waves = [w for w in await waves_of(session, poll_id) if w.status != PENDING]
    if len(waves) < 2:
        raise PollProblem(
            f"Poll {poll_id} has {len(waves)} wave(s) sent: a report compares the first "
            "wave with the last, so it needs two."
        )
    before, after = waves[0].wave_id, waves[-1].wave_id
    rows = await session.execute(
        select(
            PollAnswer.wave_id, PollAnswer.question_id, PollAnswer.respondent, PollAnswer.value
        ).where(PollAnswer.poll_id == poll_id)
    )
    answers = [tuple(row) for row in rows]
    groups = None
    if by is not None:
        people = sorted(
            set(
                (
                    await session.execute(
                        select(PollRoll.participant_id).where(PollRoll.poll_id == poll_id)
                    )
                ).scalars()
            )
        )
        values = await category_of(session, people, by)
        groups = {respondent(key, poll_id, p): v for p, v in values.items()}
        if answers and not {who for _, _, who, _ in answers} & set(groups):
            raise PollProblem(
                "No answer's pseudonym matches anyone on the roll: this command's secret "
                "is not the service's. Run it with the service's CONCORDER_SECRET_KEY (or "
                "from the directory that holds its key file)."
            )
    report = Report(
        poll_id,
        localised(poll.definition["title"], language),
        before,
        after,
        by,
        min_cell,
    )
    for wave in (before, after):
        report.respondents[wave] = len({r for w, _, r, _ in answers if w == wave})
    report.rows = build(poll.definition, answers, before, after, groups, min_cell, language)
    return report
