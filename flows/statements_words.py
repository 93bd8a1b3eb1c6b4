"""The replies to a statement and the words of the opinion-map commands, in every shipped
language. They are data, as keywords are: anyone may type any language's word. The letters
A, D and P work everywhere (they are what the SMS prompt suggests)."""

from __future__ import annotations

from flows.text import fold

AGREE, DISAGREE, PASS = "agree", "disagree", "pass"
# As Pol.is exports them (store.statements): agree 1, disagree -1, pass 0.
VALUES = {AGREE: 1, DISAGREE: -1, PASS: 0}

_REPLIES = {
    AGREE: ("a", "agree", "yes", "daccord", "oui", "deacuerdo", "si", "acuerdo"),
    DISAGREE: (
        "d",
        "disagree",
        "no",
        "pasdaccord",
        "non",
        "desaccord",
        "endesacuerdo",
        "desacuerdo",
    ),
    PASS: ("p", "pass", "skip", "passer", "jepasse", "paso", "pasar", "nosé", "nose"),
}
REPLIES = {fold(word): answer for answer, words in _REPLIES.items() for word in words}

# Go through the statements again (unanswered first; all of them once all are answered).
AGAIN_WORDS = {"opinions", "opinion", "avis", "opiniones"}
# PROPOSE <a statement>: a participant's own statement, for the organisers to approve.
PROPOSE_WORDS = {"propose", "proposer", "proponer", "propuesta"}


def answer_of(text: str) -> str | None:
    """agree, disagree, pass, or None for a reply that is none of them."""
    return REPLIES.get(fold(text))


def proposal_of(text: str) -> str | None:
    """The statement a PROPOSE message carries ('' for the word alone), else None."""
    head, _, rest = text.strip().partition(" ")
    if fold(head) not in PROPOSE_WORDS:
        return None
    return rest.strip()
