"""Addresses on each channel: E.164 phone numbers for SMS, numeric chat ids for Telegram."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

CHANNELS = ("sms", "telegram")


class BadAddress(ValueError):
    """An address that cannot be used; the message says why, without repeating it."""


def normalise(channel: str, address: str, default_region: str = "GB") -> str:
    address = (address or "").strip()
    if channel == "sms":
        return normalise_phone(address, default_region)
    if channel == "telegram":
        digits = address.removeprefix("-")
        # ASCII only: "²" passes isdigit() but int() refuses it.
        if not (digits.isascii() and digits.isdigit()) or len(address) > 20:
            raise BadAddress("a Telegram chat id is a number")
        return str(int(address))
    raise BadAddress(f"unknown channel {channel!r}; use one of {', '.join(CHANNELS)}")


def normalise_phone(number: str, default_region: str = "GB") -> str:
    """E.164 ('+447700900123'), or BadAddress saying what is wrong with it."""
    if not number:
        raise BadAddress("the phone number is empty")
    try:
        parsed = phonenumbers.parse(number, default_region)
    except phonenumbers.NumberParseException as exc:
        raise BadAddress(f"not a phone number ({exc._msg})") from None
    if not phonenumbers.is_possible_number(parsed):
        raise BadAddress("the phone number has the wrong length")
    if not phonenumbers.is_valid_number(parsed):
        raise BadAddress("the phone number does not exist in its numbering plan")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# What Twilio can put in an inbound `From` besides a number phonenumbers knows: an E.164
# number outside its metadata (new ranges, the fictional 07700 900xxx), a short code, or
# an alphanumeric sender name. Twilio has vouched for the sender, so all of them are kept.
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
SHORT_CODE = re.compile(r"[0-9]{3,8}")
NUMBER_FORMATTING = re.compile(r"[\s().-]")
MAX_ADDRESS = 64  # the contacts table's column


# Parsed on every inbound SMS (twice for a number outside the numbering plan): the same
# few thousand senders write again and again.
@lru_cache(maxsize=8192)
def inbound_sender(sender: str, default_region: str = "GB") -> str:
    """The address to file an inbound SMS under: E.164 for any number (known to the
    numbering plan or not), else the short code or sender name as Twilio gave it.
    BadAddress only for an empty, overlong or unprintable sender."""
    sender = (sender or "").strip()
    try:
        return normalise_phone(sender, default_region)
    except BadAddress:
        pass
    digits = NUMBER_FORMATTING.sub("", sender)
    if digits.startswith("+"):
        try:
            parsed = phonenumbers.parse(digits, default_region)
        except phonenumbers.NumberParseException:
            parsed = None
        if parsed is not None and phonenumbers.is_possible_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        if E164.fullmatch(digits):
            return digits
        raise BadAddress("the number has the wrong length for an international number")
    if SHORT_CODE.fullmatch(digits):
        return digits
    if not sender:
        raise BadAddress("the sender is empty")
    if len(sender) > MAX_ADDRESS or not sender.isprintable():
        raise BadAddress("not a phone number, short code or sender name")
    return sender


# Beside a real channel, the simulator's people have addresses no real contact can have
# (a phone number or chat id never starts with a letter): "sim:+447700900123".
SIMULATED_PREFIX = "sim:"


def simulated_address(address: str) -> str:
    return SIMULATED_PREFIX + address


def is_simulated(address: str) -> bool:
    return address.startswith(SIMULATED_PREFIX)


def can_receive_sms(address: str) -> bool:
    """Only a full number can be texted back; a short code or sender name cannot. A
    simulated person's number is answered on the simulator page."""
    return E164.fullmatch(address.removeprefix(SIMULATED_PREFIX)) is not None
