"""`[[prompts]]` of the assembly file: the questions put to the small-group tables.

Each prompt opens at every table of its round at its session's start plus `after_minutes`
(the session's time as moved, if it was), or when a facilitator opens it. Read with the
assembly (flows/assembly.py: `Assembly.prompts`), so a mistake is named with its place
and line like every other: "prompts #2 (id 'q2') > minutes (line 212): ...".

The rules a table runs by, with their defaults:
- `minutes` (20): the prompt closes this long after it opened;
- `fair_share` (3): a member's messages relayed before everyone has answered; the next
  ones are kept and relayed once the limit lifts (or at the close);
- `close_missing` (1): once everyone seated but this many has answered (a message or
  PASS), the limit lifts and the prompt closes `grace_minutes` (2) later: one silent
  member never holds the table. 0 waits for everyone (then the timer decides);
- `nudge_minutes` (5): a member who has not answered by then gets one private nudge
  (0: never);
- `digest_minutes` (5): how often a member who chose DIGEST gets the table's messages.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from flows.config_file import Strict

ID_PATTERN = r"^[A-Za-z0-9_.-]{1,40}$"


def _localised(value: Any) -> Any:
    # A plain string is the same text in every language.
    return {"*": value} if isinstance(value, str) else value


class Prompt(Strict):
    id: str = Field(pattern=ID_PATTERN)
    session: str | None = None  # opened by the schedule at this session; None: by hand
    after_minutes: int = Field(0, ge=0, le=24 * 60)
    round: int = Field(ge=1, le=50)
    text: Annotated[dict[str, str], BeforeValidator(_localised)]
    minutes: int = Field(20, ge=1, le=24 * 60)
    fair_share: int = Field(3, ge=1, le=100)
    close_missing: int = Field(1, ge=0, le=20)
    grace_minutes: int = Field(2, ge=0, le=120)
    nudge_minutes: int = Field(5, ge=0, le=24 * 60)
    digest_minutes: int = Field(5, ge=1, le=120)


DEFAULTS = Prompt(id="now", round=1, text={"*": "-"})


def prompt_problems(prompts: list[Prompt], languages: list[str], sessions: Any) -> list[str]:
    """What the field checks cannot see: ids used twice, a text missing in a language, a
    session that does not exist."""
    session_ids = {
        str(s.get("id", f"s{n}"))
        for n, s in enumerate(sessions if isinstance(sessions, list) else [], start=1)
        if isinstance(s, dict)
    }
    problems: list[str] = []
    seen: set[str] = set()
    for n, prompt in enumerate(prompts, start=1):
        place = f"prompts #{n} (id {prompt.id!r})"
        if prompt.id in seen:
            problems.append(f"{place} > id: used twice")
        seen.add(prompt.id)
        if prompt.session is not None and prompt.session not in session_ids:
            known = ", ".join(sorted(session_ids)) or "none"
            problems.append(
                f"{place} > session: no session has the id {prompt.session!r} (ids: {known})"
            )
        if "*" not in prompt.text:
            problems += [
                f"{place} > text: no text in {code!r}"
                for code in languages
                if not (prompt.text.get(code) or "").strip()
            ]
    return problems
