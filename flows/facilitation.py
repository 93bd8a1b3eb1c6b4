"""Facilitators' chat commands: write to a table or all, open a prompt, pause, resume,
close, hide a message, move a member, see who has spoken.

An engine command, as the organisers' are: it works whatever flow the facilitator is in.
What it knows comes from ctx.facts.facilitation (bot.services.facilitation fills it only
for a chat that may facilitate and a message shaped like a command): the round under way,
the tables this chat may act on and how each stands. It answers, and emits
"facilitation.asked" with the action and tables; the service's turn hook does the action
in the same transaction. A table that is not theirs is refused ("facilitation.refused").
"""

from __future__ import annotations

from babel.lists import format_list

from flows import events
from flows.deliberation import FACILITATOR, passed_line, post_line, relay_line
from flows.engine import Conversation
from flows.facilitation_facts import FacilitationFacts, LineFacts
from flows.facilitation_words import (
    ALL,
    CLOSE,
    HIDE,
    MOVE,
    PAUSE,
    POST,
    PROMPT,
    RESUME,
    SHOW,
    STATS,
    Command,
    parse,
)
from flows.model import Inbound


def facilitator_commands(conv: Conversation, inbound: Inbound) -> bool:
    facts = conv.ctx.facts.facilitation
    if facts is None or inbound.button is not None:
        return False
    command = parse(inbound.text)
    if command is None:
        return False
    if facts.round is None:
        conv.say(conv._("No tables are allocated yet, so there is no table to act on."))
        return True
    HANDLERS[command.action](conv, facts, command)
    return True


def facilitator_help(conv: Conversation) -> str:
    return conv._(
        "Facilitator commands: T4 followed by a message writes to table 4, ALL followed by a "
        "message to all your tables; PROMPT T4 followed by a question opens it there; PAUSE "
        "T4, RESUME T4, CLOSE T4 (ends the prompt); HIDE 123 removes message 123; MOVE 4C T5 "
        "seats Member C of table 4 at table 5; WHO T4 shows who has spoken, SHOW T4 the last "
        "messages."
    )


def _list(conv: Conversation, numbers: list[int]) -> str:
    """'table 4' or 'tables 4, 5 and 6', in the facilitator's language."""
    listed = format_list([str(n) for n in sorted(numbers)], locale=conv.t.locale)
    return conv.t.ngettext("table {tables}", "tables {tables}", len(numbers), tables=listed)


def _ask(conv: Conversation, facts: FacilitationFacts, action: str, tables, **data) -> None:
    conv.emit(
        events.FACILITATION_ASKED,
        action=action,
        round=facts.round,
        tables=sorted(tables),
        by=facts.by,
        **data,
    )


def _tables(conv: Conversation, facts: FacilitationFacts, command: Command) -> list[int] | None:
    """The tables a command is about, or None after saying why it cannot be done."""
    _ = conv._
    mine = facts.table_numbers if facts.mine is None else facts.mine
    if command.problem:
        conv.say(
            _('I did not understand "{word}". Name tables like T4, or ALL.', word=command.problem)
        )
        return None
    if command.tables == ALL:
        return list(mine)
    if not command.tables:
        if len(mine) == 1 or (command.action == STATS and facts.mine is None):
            return list(mine)
        conv.say(_("Which table? Add it to the command, as in PAUSE T4, or ALL for every one."))
        return None
    for number in command.tables:
        if number not in facts.table_numbers:
            conv.say(
                _(
                    "There is no table {table} in round {round}: the tables are 1 to {last}.",
                    table=number,
                    round=facts.round,
                    last=max(facts.table_numbers, default=0),
                )
            )
            return None
        if number not in mine:
            _refuse(conv, facts, command.action, number)
            return None
    return sorted(set(command.tables))


def _refuse(conv: Conversation, facts: FacilitationFacts, action: str, table: int) -> None:
    conv.emit(events.FACILITATION_REFUSED, action=action, table=table, by=facts.by)
    conv.say(
        conv._(
            "Table {table} is not yours: you facilitate {mine}.",
            table=table,
            mine=_list(conv, facts.mine or []),
        )
    )


def _under_way(facts: FacilitationFacts, tables: list[int]) -> tuple[list[int], list[int]]:
    """The tables with a prompt open or paused, and the others."""
    going = [t for t in tables if facts.tables[t].prompt is not None]
    return going, [t for t in tables if t not in going]


def _nothing(conv: Conversation, idle: list[int]) -> None:
    if idle:
        conv.say(
            conv._(
                "Nothing is under way at {tables}: open a prompt there with PROMPT T{table} "
                "followed by the question.",
                tables=_list(conv, idle),
                table=idle[0],
            )
        )


def _post(conv: Conversation, facts: FacilitationFacts, command: Command) -> None:
    if not command.text:
        conv.say(conv._("Write the message after the table: T4 Hello everyone, or ALL Hello."))
        return
    tables = _tables(conv, facts, command)
    if tables is None:
        return
    going, idle = _under_way(facts, tables)
    if going:
        _ask(conv, facts, POST, going)
        conv.say(conv._("Sent to {tables}.", tables=_list(conv, going)))
    _nothing(conv, idle)


def _prompt(conv: Conversation, facts: FacilitationFacts, command: Command) -> None:
    if not command.text:
        conv.say(conv._("Write the question after the table: PROMPT T4 What matters most?"))
        return
    tables = _tables(conv, facts, command)
    if tables is None:
        return
    busy = [t for t in tables if facts.tables[t].prompt is not None]
    free = [t for t in tables if t not in busy]
    if free:
        _ask(conv, facts, PROMPT, free)
        conv.say(conv._("Opened your prompt at {tables}.", tables=_list(conv, free)))
    if busy:
        conv.say(
            conv._(
                "A prompt is still under way at {tables}: CLOSE it first.",
                tables=_list(conv, busy),
            )
        )


def _pause_or_resume(conv: Conversation, facts: FacilitationFacts, command: Command) -> None:
    tables = _tables(conv, facts, command)
    if tables is None:
        return
    going, idle = _under_way(facts, tables)
    pausing = command.action == PAUSE
    change = [t for t in going if facts.tables[t].paused != pausing]
    same = [t for t in going if t not in change]
    if change:
        _ask(conv, facts, command.action, change)
        conv.say(
            conv._(
                "Paused {tables}: the members are told, and what they write waits until RESUME.",
                tables=_list(conv, change),
            )
            if pausing
            else conv._(
                "Resumed {tables}: what was written meanwhile goes on now.",
                tables=_list(conv, change),
            )
        )
    if same:
        tables_text = _list(conv, same)
        conv.say(
            conv._("Already paused: {tables}.", tables=tables_text)
            if pausing
            else conv._("Not paused: {tables}.", tables=tables_text)
        )
    _nothing(conv, idle)


def _close(conv: Conversation, facts: FacilitationFacts, command: Command) -> None:
    tables = _tables(conv, facts, command)
    if tables is None:
        return
    going, idle = _under_way(facts, tables)
    if going:
        _ask(conv, facts, CLOSE, going)
        conv.say(
            conv._(
                "Closed the prompt at {tables}: held messages go first, then the members are told.",
                tables=_list(conv, going),
            )
        )
    _nothing(conv, idle)


def _hide(conv: Conversation, facts: FacilitationFacts, command: Command) -> None:
    _ = conv._
    if command.problem:
        conv.say(_("Write the number shown before the message, as in HIDE 123."))
        return
    table = facts.hide_table
    if table is None:
        conv.say(
            _("There is no message {ref} in round {round}.", ref=command.ref, round=facts.round)
        )
        return
    if facts.mine is not None and table not in facts.mine:
        _refuse(conv, facts, HIDE, table)
        return
    if facts.hidden_before:
        conv.say(_("Message {ref} was hidden already.", ref=command.ref))
        return
    _ask(conv, facts, HIDE, [table], ref=command.ref)
    conv.say(
        _(
            "Message {ref} is hidden: the others at table {table} are told it was removed.",
            ref=command.ref,
            table=table,
        )
    )


def _seat(conv: Conversation, facts: FacilitationFacts, member: str) -> tuple[int, str] | None:
    """The table and letter MOVE names: '4c', 'c' at one's only table, or a person's id."""
    if member[0] == "p" and len(member) > 2:
        if facts.member_seat is None:
            conv.say(
                conv._(
                    "{member} has no seat in round {round}.",
                    member=member.upper(),
                    round=facts.round,
                )
            )
        return facts.member_seat
    digits = member.rstrip("abcdefghijklmnopqrstuvwxyz")
    letter = member[len(digits) :].upper()
    mine = facts.table_numbers if facts.mine is None else facts.mine
    if not digits and len(mine) != 1:
        conv.say(
            conv._("Which table is Member {letter} at? Write MOVE 4{letter} T5.", letter=letter)
        )
        return None
    table = int(digits) if digits else mine[0]
    if table in facts.tables and letter not in facts.tables[table].letters:
        conv.say(conv._("Table {table} has no Member {letter}.", table=table, letter=letter))
        return None
    return table, letter


def _move(conv: Conversation, facts: FacilitationFacts, command: Command) -> None:
    if command.problem:
        conv.say(
            conv._(
                "Write who and where: MOVE 4C T5 seats Member C of table 4 at table 5 "
                "(MOVE C T5 at your only table)."
            )
        )
        return
    seat = _seat(conv, facts, command.member)
    if seat is None:
        return
    source, letter = seat
    mine = facts.table_numbers if facts.mine is None else facts.mine
    if source not in mine:
        _refuse(conv, facts, MOVE, source)
        return
    tables = _tables(conv, facts, command)
    if tables is None:
        return
    target = tables[0]
    if target == source:
        conv.say(
            conv._("Member {letter} already sits at table {table}.", letter=letter, table=source)
        )
        return
    _ask(conv, facts, MOVE, [source, target], source=source, target=target, letter=letter)
    conv.say(
        conv._(
            "Moving Member {letter} from table {source} to table {target}: they and both "
            "tables are told the new seats.",
            letter=letter,
            source=source,
            target=target,
        )
    )


def _stats(conv: Conversation, facts: FacilitationFacts, command: Command) -> None:
    tables = _tables(conv, facts, command)
    if tables is None:
        return
    _ask(conv, facts, STATS, tables)
    lines = []
    for number in tables:
        table = facts.tables[number]
        counts = ", ".join(
            f"{letter} {table.spoken.get(letter, 0)}" + ("*" if letter in table.passed else "")
            for letter in table.letters
        )
        if table.prompt is None:
            state = conv._("nothing under way")
        elif table.paused:
            state = conv._("prompt {prompt}, paused", prompt=table.prompt)
        else:
            state = conv._("prompt {prompt}", prompt=table.prompt)
        lines.append(
            conv._("Table {table} ({state}): {counts}", table=number, state=state, counts=counts)
        )
    lines.append(conv._("Messages this round by letter; * passed."))
    conv.say("\n".join(lines))


def line_text(conv: Conversation, line: LineFacts) -> str:
    """'#12 C: text' as the members read it, with the number HIDE takes."""
    if line.kind == "pass":
        said = passed_line(conv.t, line.letter)
    elif line.letter == FACILITATOR:
        said = post_line(conv.t, line.text)
    else:
        said = relay_line(line.letter, line.text)
    return f"#{line.id} {said}" + (" " + conv._("(kept back)") if line.held else "")


def _show(conv: Conversation, facts: FacilitationFacts, command: Command) -> None:
    tables = _tables(conv, facts, command)
    if tables is None:
        return
    _ask(conv, facts, SHOW, tables)
    parts = []
    for number in tables:
        lines = facts.lines.get(number, [])
        if not lines:
            parts.append(conv._("Table {table}: nothing written yet.", table=number))
            continue
        head = conv._(
            "Table {table}, the last messages (HIDE followed by the number removes one):",
            table=number,
        )
        parts.append("\n".join([head, *(line_text(conv, line) for line in lines)]))
    conv.say("\n\n".join(parts))


HANDLERS = {
    POST: _post,
    PROMPT: _prompt,
    PAUSE: _pause_or_resume,
    RESUME: _pause_or_resume,
    CLOSE: _close,
    HIDE: _hide,
    MOVE: _move,
    STATS: _stats,
    SHOW: _show,
}
