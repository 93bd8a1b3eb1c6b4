"""What a Twilio error means for the outbox: try again later, or never.

Reasons name the HTTP status and the Twilio error code only: Twilio's own messages can
repeat the phone number, which must not reach logs or the outbox `error` column.
"""

from __future__ import annotations

from bot.channels.transport import PermanentFailure, RetryLater

OPTED_OUT = 21610  # the person texted STOP to our number: Twilio refuses to send
UNREACHABLE = {
    21211: "invalid 'To' number",
    21612: "Twilio cannot route to this number",
    21614: "the number cannot receive SMS",
}
# Delivery failures reported later, in status callbacks, that say the number will not do.
UNDELIVERABLE = {
    30003: "unreachable handset",
    30005: "unknown destination",
    30006: "landline or unreachable carrier",
}
TOO_MANY_REQUESTS = 20429


def describe(status: int | None, code: int | None) -> str:
    """'twilio error 21211 (HTTP 400): invalid 'To' number', 'HTTP 503', ..."""
    words = []
    if code and code != status:
        words.append(f"twilio error {code}")
    if status:
        words.append(f"(HTTP {status})" if words else f"HTTP {status}")
    text = " ".join(words) or "twilio error"
    label = UNREACHABLE.get(code or 0) or UNDELIVERABLE.get(code or 0)
    return f"{text}: {label}" if label else text


def classify(status: int | None, code: int | None) -> RetryLater | PermanentFailure:
    """The exception the transport raises for a Twilio error response."""
    reason = describe(status, code)
    if code == OPTED_OUT:
        return PermanentFailure(reason, opted_out=True)
    if code in UNREACHABLE:
        return PermanentFailure(reason, unreachable=True)
    if status == 429 or code == TOO_MANY_REQUESTS or status is None or status >= 500:
        return RetryLater(reason)
    if status == 401:
        # Wrong or rotated credentials fail every message alike: none of them is at fault,
        # so keep them queued until the configuration is fixed instead of failing them all.
        return RetryLater(f"{reason}: check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    return PermanentFailure(reason)
