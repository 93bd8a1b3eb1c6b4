"""Addresses on each channel: E.164 phone numbers for SMS, numeric chat ids for Telegram."""

from __future__ import annotations

import phonenumbers

CHANNELS = ("sms", "telegram")


class BadAddress(ValueError):
    """An address that cannot be used; the message says why, without repeating it."""


def normalise(channel: str, address: str, default_region: str = "GB") -> str:
    address = (address or "").strip()
    if channel == "sms":
        return normalise_phone(address, default_region)
    if channel == "telegram":
        if not address.lstrip("-").isdigit() or len(address) > 20:
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

