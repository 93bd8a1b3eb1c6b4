"""The name a poll's answers carry: an HMAC of the participant id under the server secret,
one per poll. The same person's answers pair across the poll's waves; the answers table
alone names nobody, and two polls' answers cannot be joined without the secret."""

from __future__ import annotations

import hashlib
import hmac


def respondent(key: bytes, poll_id: str, participant_id: str) -> str:
    message = f"poll-respondent:{poll_id}:{participant_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]
