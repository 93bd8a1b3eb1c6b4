"""Voting: the ballot's question, the voter's choice said back to them, and YES to cast it.

On SMS a vote is typed ("2", "bus", "3 1 2"); on Telegram it is buttons (one press, or one
press per mark for a ranking, an approval or grades), and typing works too. Nothing counts
before the voter confirms the summary. A cast vote leaves the flow in the state's
`ballot_cast`, with the receipt code from the facts; the service's handler of the vote's
event (bot/services/ballots/voting.py) takes it out before the state is written and
records it apart. The audit event says only that this person voted in this ballot.
A voter may vote again until the close (VOTE); the last vote counts.
"""

from __future__ import annotations

from typing import Any

from flows import ballot_text as bt
from flows import events
from flows.engine import Answer, Conversation, Flow, match_choice
from flows.facts import BallotFacts
from flows.model import Inbound
from flows.text import fold

NAME = "ballot"
CAST = "ballot_cast"  # the state key the service takes a cast vote from
# Set in the state of everyone on a ballot's roll when it opens: only their turns read
# the ballots (one query fewer for everyone else).
ON_ROLL = "on_ballot_roll"
# Set when STOP ends a ballot conversation with a choice waiting for YES (the choice itself
# goes): whoever comes back is told that vote was not cast.
UNCONFIRMED = "ballot_unconfirmed"
VOTE_WORDS = {"vote", "voter", "votar", "voto"}
DONE = "done"
KIND = "ballot"  # the outbox kind of every message of this flow
BELENIOS = "belenios"  # a definition's `system` for a verifiable Belenios election


def _ballots(conv: Conversation) -> list[BallotFacts]:
    return conv.ctx.facts.ballots or []


def _ballot(conv: Conversation) -> BallotFacts | None:
    wanted = conv.state.data.get(NAME, {}).get("id")
    return next((b for b in _ballots(conv) if b.id == wanted), None)


def next_ballot(conv: Conversation) -> BallotFacts | None:
    """The open ballot to offer: the first not voted in, else the first open."""
    open_ = [b for b in _ballots(conv) if b.status == "open"]
    return next((b for b in open_ if not b.voted), open_[0] if open_ else None)


def _say(conv: Conversation, text: str) -> None:
    # Marked, so the close can blank what these messages said (their choices, receipts).
    conv.say(text, kind=KIND)


def _ask(conv: Conversation, step: str, text: str, choices: tuple = ()) -> None:
    conv.ask(step, text, choices, kind=KIND)


def tracker_text(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


class Ballot(Flow):
    name = NAME

    def enter(self, conv: Conversation) -> None:
        ballot = next_ballot(conv)
        if ballot is None:
            _say(conv, conv._("No ballot is open at the moment."))
            conv.finish()
            return
        self.ask(conv, f"ballot:{ballot.id}")

    def ask(self, conv: Conversation, step: str) -> None:
        named = step.startswith("ballot:")
        if named:  # a ballot named by the service (its opening)
            conv.state.data[NAME] = {"id": step.removeprefix("ballot:")}
            step = "choose"
        ballot = _ballot(conv)
        if ballot is None or ballot.status != "open":
            self._closed(conv, ballot)
            return
        d, t = ballot.definition, conv.t
        if named and ballot.credential and not ballot.voted:
            _say(conv, _belenios_intro(conv, ballot))
        if step == "confirm":
            self._ask_confirm(conv, d)
        elif step == "pick":
            self._ask_pick(conv, d)
        else:
            conv.state.data[NAME] = {"id": ballot.id}
            header = f"{bt.title(d, t)}\n{bt.question(d, t)}"
            if d["method"] not in bt.MULTI:
                _ask(conv, "choose", header, conv.choices(*bt.options(d, t)))
            elif conv.ctx.channel == "telegram":
                _say(conv, header)
                self._ask_pick(conv, d)
            else:
                _ask(conv, "choose", f"{header}\n\n{bt.numbered(d, t)}\n{bt.how_to_reply(d, t)}")

    def reply(self, conv: Conversation, step: str, answer: Answer) -> None:
        ballot = _ballot(conv)
        if ballot is None or ballot.status != "open":
            self._closed(conv, ballot, late=True)
            return
        d = ballot.definition
        if step == "confirm":
            self._confirm(conv, ballot, answer)
        elif step == "pick" and answer.choice is not None:
            self._picked(conv, d, answer.choice)
        else:
            self._typed(conv, d, answer)

    # ------------------------------------------------------------------ choosing

    def _typed(self, conv: Conversation, d: dict[str, Any], answer: Answer) -> None:
        try:
            vote = bt.parse(d, conv.t, answer.choice or answer.text)
        except bt.NotAVote as exc:
            _say(conv, exc.reason)
            self.ask(conv, conv.state.step or "choose")
            return
        self._pending(conv, vote)

    def _pending(self, conv: Conversation, vote: Any) -> None:
        conv.state.data[NAME]["pending"] = vote
        conv.state.data[NAME].pop("picked", None)
        self.ask(conv, "confirm")

    def _ask_pick(self, conv: Conversation, d: dict[str, Any]) -> None:
        """One press per mark: the next rank, another approved option, the next grade."""
        t, _ = conv.t, conv._
        picked = conv.state.data[NAME].setdefault("picked", [])
        done = (DONE, _("Done"))
        if d["method"] == "majority_judgment":
            label = bt.options(d, t)[len(picked)][1]
            grades = bt.grades(d, t)
            top = len(grades) - 1
            choices = [(f"g{top - n}", name) for n, name in enumerate(grades)]
            _ask(conv, "pick", _("Your grade for {option}:", option=label), conv.choices(*choices))
            return
        left = [(k, label) for k, label in bt.options(d, t) if k not in picked]
        extra = [done] if picked else []
        if d["method"] == "ranking":
            text = _("Your choice number {n}:", n=len(picked) + 1)
        else:
            text = _("Choose an option you approve of, or Done when you have finished.")
        _ask(conv, "pick", text, conv.choices(*left, *extra))

    def _picked(self, conv: Conversation, d: dict[str, Any], key: str) -> None:
        picked: list[Any] = conv.state.data[NAME].setdefault("picked", [])
        keys = [k for k, _ in bt.options(d, conv.t)]
        if d["method"] == "majority_judgment":
            picked.append(int(key.removeprefix("g")))
            if len(picked) == len(keys):
                self._pending(conv, dict(zip(keys, picked, strict=True)))
                return
        elif key == DONE:
            self._pending(conv, picked if d["method"] == "ranking" else self._ordered(keys, picked))
            return
        else:
            picked.append(key)
            limit = d.get("max_choices") or len(keys)
            if len(picked) == len(keys) or (d["method"] == "approval" and len(picked) == limit):
                ordered = picked if d["method"] == "ranking" else self._ordered(keys, picked)
                self._pending(conv, ordered)
                return
        self._ask_pick(conv, d)

    @staticmethod
    def _ordered(keys: list[str], picked: list[str]) -> list[str]:
        return sorted(picked, key=keys.index)

    # ------------------------------------------------------------------ confirming

    def _ask_confirm(self, conv: Conversation, d: dict[str, Any]) -> None:
        vote = conv.state.data[NAME].get("pending")
        _ = conv._
        described = bt.describe(d, conv.t, vote)
        _ask(
            conv,
            "confirm",
            _(
                "You chose: {vote}. The service encrypts this vote with your credential, "
                "so it sees your choice. Cast this vote?",
                vote=described,
            )
            if d.get("system") == BELENIOS
            else _("You chose: {vote}. Cast this vote?", vote=described),
            conv.choices(("yes", _("Yes, cast my vote")), ("no", _("No, choose again"))),
        )

    def _confirm(self, conv: Conversation, ballot: BallotFacts, answer: Answer) -> None:
        if answer.choice == "no":
            conv.state.data[NAME] = {"id": ballot.id}
            self.ask(conv, "choose")
            return
        if answer.choice != "yes":
            _say(conv, conv._("Reply YES to cast this vote, or NO to choose again."))
            self._ask_confirm(conv, ballot.definition)
            return
        code = conv.ctx.facts.ballot_tracker or ""
        if ballot.credential and not code:
            # Belenios could not encrypt it (the service's tool failed): nothing is cast,
            # the choice still waits for YES.
            _say(conv, _belenios_not_cast(conv))
            self._ask_confirm(conv, ballot.definition)
            return
        vote = conv.state.data[NAME].get("pending")
        conv.state.data.pop(NAME, None)
        conv.state.data[CAST] = {"ballot": ballot.id, "vote": vote, "tracker": code}
        conv.emit(events.BALLOT_VOTE_CAST, ballot=ballot.id)
        again = ballot.voted
        if ballot.credential:
            _say(conv, _belenios_cast(conv, code, again))
        else:
            _say(
                conv,
                conv._(
                    "Your vote is cast. Your receipt code is {code}: when voting closes, the "
                    "results list every receipt code with the vote it carries, so you can "
                    "check yours. Until then you may vote again (reply VOTE); only your last "
                    "vote counts.",
                    code=tracker_text(code),
                )
                if not again
                else conv._(
                    "Your new vote is cast and replaces the one before. Your receipt code is "
                    "{code}; the earlier code will be listed as replaced.",
                    code=tracker_text(code),
                ),
            )
        conv.finish()
        later = next(
            (b for b in _ballots(conv) if b.status == "open" and not b.voted and b.id != ballot.id),
            None,
        )
        if later is not None:
            conv.goto(NAME, f"ballot:{later.id}")

    def _closed(self, conv: Conversation, ballot: BallotFacts | None, late: bool = False) -> None:
        conv.state.data.pop(NAME, None)
        if ballot is not None and late:
            conv.emit(events.BALLOT_TOO_LATE, ballot=ballot.id)
        title = bt.title(ballot.definition, conv.t) if ballot is not None else ""
        _say(
            conv,
            conv._("Voting in “{title}” has closed; your reply was not counted.", title=title)
            if ballot is not None
            else conv._("No ballot is open at the moment."),
        )
        conv.finish()


def _belenios_intro(conv: Conversation, ballot: BallotFacts) -> str:
    return conv._(
        "“{title}” is a verifiable ballot run with Belenios. Your voting credential is "
        "{credential}: keep it to yourself. When you reply, the service encrypts your vote "
        "with your credential, so the service sees how you vote. When voting closes, the "
        "encrypted ballot box and the proofs of its count are published: anyone can check "
        "the result with belenios-tool, and you can check that your ballot is in the box.",
        title=bt.title(ballot.definition, conv.t),
        credential=ballot.credential,
    )


def _belenios_not_cast(conv: Conversation) -> str:
    return conv._(
        "Your vote could not be encrypted just now, because of a problem on our side, so it "
        "has NOT been cast and nothing was recorded. Your choice is kept: reply YES in a few "
        "minutes to try again, or NO to choose again."
    )


def _belenios_cast(conv: Conversation, tracker: str, again: bool) -> str:
    if again:
        return conv._(
            "Your new vote is encrypted and cast; it replaces the one before. Its ballot "
            "tracker is {tracker}.",
            tracker=tracker,
        )
    return conv._(
        "Your vote is encrypted and cast. Its ballot tracker is {tracker}: the published "
        "ballot box lists it, so you can check it is there. Until voting closes you may vote "
        "again (reply VOTE); only your last ballot counts.",
        tracker=tracker,
    )


def vote_command(conv: Conversation, inbound: Inbound) -> bool:
    """VOTE (VOTER, VOTAR): the open ballot again, for anyone on its roll."""
    if inbound.button is not None or fold(inbound.text) not in VOTE_WORDS:
        return False
    if not _ballots(conv):
        return False  # not a voter: the word is someone else's
    conv.goto(NAME)
    return True


def answers_ballot(conv: Conversation, inbound: Inbound) -> bool:
    """Whether a typed message answers the ballot question this person was last asked (or
    is VOTE while a ballot of theirs is open): another conversation under way, such as
    their table's prompt, lets it through to the vote instead of taking it as its own."""
    word = fold(inbound.text)
    if word in VOTE_WORDS:
        return bool(_ballots(conv))
    if conv.state.flow != NAME or conv.state.step is None:
        return False
    ballot = _ballot(conv)
    if ballot is None or ballot.status != "open":
        return False
    if match_choice(conv.state, inbound)[0] is not None:
        return True  # one of the options offered, or YES / NO to the summary
    if conv.state.step != "choose":
        return False
    try:
        bt.parse(ballot.definition, conv.t, inbound.text)
    except bt.NotAVote:
        return False
    return True
