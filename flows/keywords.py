"""Keywords that work everywhere, in every shipped language, before any flow runs.

The words are data, not gettext messages: a French speaker who types STOP and an English
speaker who types ARRET must both be opted out whatever language their profile says.
"""

from __future__ import annotations

from enum import Enum

from flows.text import fold


class Keyword(Enum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


# Twilio's standard opt-out words first, then their equivalents in each shipped language.
OPT_OUT_WORDS = {
    "stop",
    "stopall",
    "unsubscribe",
    "cancel",
    "end",
    "quit",
    "revoke",
    "optout",
    # fr
    "arret",
    "arreter",
    "desabonner",
    "desinscrire",
    "desinscription",
    # es
    "alto",
    "parar",
    "baja",
    "darmedebaja",
    "cancelar",
    "detener",
}
# START and its equivalents: they opt in again on every channel.
OPT_IN_WORDS = {"start", "unstop", "reprendre", "reanudar", "alta"}
# Twilio's own opt-in words: the carrier delivers again to a number that texts one of them
# after STOP, so on SMS they opt in with us too. YES is one: by SMS a YES after STOP is
# never an answer (a vote it meant to confirm is not cast, and the person is told so).
# Elsewhere, and for OUI or SI that the carrier does not know, it stays unheard.
CARRIER_OPT_IN_WORDS = {"start", "yes", "unstop"}
HELP_WORDS = {"help", "info", "aide", "ayuda"}

# Words that switch the conversation language, mapped to the locale they choose.
LANGUAGE_WORDS = {
    "english": "en",
    "anglais": "en",
    "ingles": "en",
    "en": "en",
    "francais": "fr",
    "french": "fr",
    "frances": "fr",
    "fr": "fr",
    "espanol": "es",
    "spanish": "es",
    "espagnol": "es",
    "es": "es",
}


# Words that pick an offered option by its key, in every shipped language, besides its
# number and its label: an SMS invitation asks for YES or NO, consent for AGREE.
REPLY_WORDS = {
    "yes": {"yes", "y", "oui", "si", "ok", "yep"},
    "no": {"no", "n", "non", "nope"},
    "agree": {"agree", "iagree", "accept", "accepte", "jaccepte", "daccord", "acepto", "deacuerdo"},
    "disagree": {
        "disagree",
        "refuse",
        "jerefuse",
        "norefuse",
        "pasdaccord",
        "rechazo",
        "noacepto",
        "nodeacuerdo",
    },
    "confirm": {"confirm", "confirme", "confirmer", "jeconfirme", "confirmo", "confirmar"},
    "decline": {
        "decline",
        "refuse",
        "refuser",
        "jerefuse",
        "decliner",
        "jedecline",
        "rechazar",
        "rechazo",
        "declino",
    },
    # The question asked before WITHDRAW gives up a place (flows/leaving.py).
    "withdraw_me": {"leave", "partir", "jepars", "irme", "mevoy"},
    "keep_place": {"stay", "rester", "jereste", "quedarme", "mequedo"},
}

# The yes and no of questions that ask it in other words: where a question offers one of
# these options, the yes-words (or no-words) above pick it too, as someone on a basic phone
# answers "Êtes-vous d'accord ?" with OUI. Only after no option matched on its own terms.
YES_KEYS = ("agree", "confirm", "withdraw_me")
NO_KEYS = ("disagree", "decline", "keep_place")


def yes_or_no_choice(word: str, keys: list[str]) -> str | None:
    """The one offered option a folded yes-word or no-word stands for, or None when the
    word is neither or the question offers no such option (or several)."""
    if word in REPLY_WORDS["yes"]:
        picked = [key for key in keys if key in YES_KEYS]
    elif word in REPLY_WORDS["no"]:
        picked = [key for key in keys if key in NO_KEYS]
    else:
        return None
    return picked[0] if len(picked) == 1 else None


def keyword_of(text: str, channel: str | None = None) -> Keyword | None:
    """The keyword a whole message is, or None. Only whole messages count; on SMS the
    carrier's opt-in words are keywords too."""
    word = fold(text)
    if word in OPT_OUT_WORDS:
        return Keyword.OPT_OUT
    if word in OPT_IN_WORDS or (channel == "sms" and word in CARRIER_OPT_IN_WORDS):
        return Keyword.OPT_IN
    if word in HELP_WORDS:
        return Keyword.HELP
    return None


def opts_in_as_an_answer(text: str) -> bool:
    """An opt-in word that reads as an answer (YES): only the carrier makes it opt in."""
    word = fold(text)
    return word in CARRIER_OPT_IN_WORDS and word not in OPT_IN_WORDS


def language_of(text: str, shipped: tuple[str, ...]) -> str | None:
    """The language a whole message asks for ('FRANÇAIS', 'lang fr'), if it is shipped."""
    word = fold(text)
    for prefix in ("language", "lang", "langue", "idioma"):
        if word.startswith(prefix) and word != prefix:
            word = word[len(prefix) :]
            break
    code = LANGUAGE_WORDS.get(word)
    return code if code in shipped else None
