"""Small-group conversation: prompts at the tables, members' messages relayed under their
seat letter, fair share, nudges, digests, and what facilitators may do. Each function is
one transaction with its audit events (participants by pseudonym and letter, never text).

Every function takes the built `Relay` first and runs in a transaction of
`relay.sessions` (a relay whose sessions lend an open transaction makes it part of that
one: the facilitators' functions never take the SQLite writer's queue, which a turn
holds); `now` (aware UTC) defaults to the clock; `by` names who acted in the audit
trail ("cli", "organiser:3", "facilitator:P1A2..."). Bad input (no allocation, a round
or table that does not exist, nothing open, an unknown contribution) raises
`DeliberationError` with a sentence to print.

Facilitators' operations
------------------------
open_prompt(relay, *, round_no: int, prompt: str | None = None,
            text: str | dict[str, str] | None = None, table: int | None = None,
            minutes: int | None = None, by: str = "facilitator",
            now: datetime | None = None) -> Opened
    Open a prompt now at one table (`table`) or every table of round `round_no`: the
    [[prompts]] entry `prompt` of the assembly file (its texts and settings), or a new one
    with `text` (one text for every language, or language -> text) and the file's defaults
    (`minutes`: 20). Each seated member gets it in their language with their letter. A table
    where another prompt is still open is left alone (`Opened.busy`); one where this prompt
    was already opened is too (`Opened.already`): opening twice never repeats it.

post(relay, text: str, *, round_no: int, table: int | None = None,
     by: str = "facilitator", now: datetime | None = None) -> Changed
    A facilitator's message to one table or all tables of the round ("Facilitator: ...")
    where a prompt is open or paused; kept in the table's stream (REPEAT, digests) as a
    contribution of kind "post", letter "*". Sent as written (no address is scrubbed).

pause(relay, *, round_no: int, table: int | None = None, by: str = "facilitator",
      now: datetime | None = None) -> Changed
resume(relay, *, round_no: int, table: int | None = None, by: str = "facilitator",
       now: datetime | None = None) -> Changed
    Pause or resume the open prompt at one table or all. While paused, members' messages
    are kept (held) and the members told so; resuming relays them in order. The prompt's
    timer does not stop (a facilitator ends or extends it by opening the next one).

end(relay, *, round_no: int, table: int | None = None, by: str = "facilitator",
    now: datetime | None = None) -> Changed
    Close the open (or paused) prompt at one table or all now: held messages are relayed
    first, then every member is told the prompt is closed.

hide(relay, contribution_id: int, *, by: str = "facilitator",
     now: datetime | None = None) -> Hidden
    Hide a member's message: it leaves REPEAT, digests and reports; if it was held it is
    never relayed; the table's other members get "A message from C was removed by the
    facilitator." The stored text stays for the record (retention rules apply).

speaking_counts(relay, round_no: int) -> dict[int, dict[str, Speaking]]
    Per table, per seat letter (every seat of the round, silent ones included): messages,
    passes, last message time and held messages, over every prompt of the round.

open_prompts(relay, round_no: int | None = None) -> list[PromptState]
    The table prompts open or paused (of one round, or all): who answered, who is awaited.

table_view(relay, round_no: int, table: int, *, last: int = 20) -> list[Line]
    The table's last lines in the current (or latest) prompt, for a facilitator to read:
    letter, text, hidden and held flags, and the contribution id `hide` takes.

move(session, participant_id, round_no, table, *, dry_run=False, now=None) -> Move
    Moving a member is `concorder groups move` (bot.services.groups.records.move_member,
    re-exported). The relay reads seats at each message, so from the move on the member
    writes to and hears from their new table, under their new letter.


The members' side (wired by `register`)
---------------------------------------
register(relay, reports: ReportSink = every organiser) -> None
    Where a member's REPORT goes: `async reports(session, settings, report: Report, now)
    -> rows queued`, run inside the member's turn (the composition root passes the
    facilitators' sink, bot.services.facilitation). Adds the facts provider (a seated
    member's open prompt: table, letter, paused) and the turn hook that stores
    contributions and relays them; flows/deliberation.py hears the members' words:
    REPEAT, PASS, REPORT, EVERY, DIGEST (in every language); anything else a seated
    member writes while their table's prompt is open is a contribution.

install(app, relay, dispatch) -> None
    The timer that runs `run_due` every few seconds (with `dispatch`).

run_due(relay, *, now: datetime | None = None) -> int
    One tick: plan the assembly file's prompts (opened at their session's start plus
    `after` minutes), then claim due jobs (open, nudge, digest, close) and run each in
    its own transaction. Returns the jobs run. Safe on several instances at once.
"""

from __future__ import annotations

from bot.services.deliberation.facilitation import (
    end,
    hide,
    open_prompts,
    pause,
    post,
    resume,
    speaking_counts,
    table_view,
)
from bot.services.deliberation.opening import open_prompt
from bot.services.deliberation.timing import run_due
from bot.services.deliberation.types import (
    Changed,
    DeliberationError,
    Hidden,
    Line,
    Opened,
    PromptState,
    Report,
    ReportSink,
    Speaking,
)
from bot.services.deliberation.wiring import install, register
from bot.services.groups.records import move_member as move

__all__ = [
    "Changed",
    "DeliberationError",
    "Hidden",
    "Line",
    "Opened",
    "PromptState",
    "Report",
    "ReportSink",
    "Speaking",
    "end",
    "hide",
    "install",
    "move",
    "open_prompt",
    "open_prompts",
    "pause",
    "post",
    "register",
    "resume",
    "run_due",
    "speaking_counts",
    "table_view",
]
