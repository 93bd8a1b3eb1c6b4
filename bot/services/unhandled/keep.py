"""A webhook's message whose turn failed is stored anyway, in a transaction of its own, to
be tried again later (`retry`): the webhook then answers as for any message, so the
provider does not send it again, and a copy it does send is still a duplicate.

Twilio never resends an inbound SMS whose webhook failed, and Telegram gives up after a
while: without this, a bug or a passing fault in any flow or hook would lose a person's
message with no one the wiser.

The person hears nothing until the message is handled. The failure may lie anywhere, even
in finding who they are, so nothing reliable can be said in its place; the message may be a
STOP or a vote, which a "we got it" must not answer as if it were done; and a notice that is
not the answer invites them to write again. The answer comes with the first try that goes
through (a minute later, usually); if none does, the organisers are told.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.metrics import INBOUND_UNHANDLED, MESSAGES_IN
from bot.relay import Relay
from bot.services import turns
from bot.services.turns import Received
from bot.services.unhandled import queue
from bot.services.unhandled.timing import next_try

log = logging.getLogger(__name__)


async def receive_or_keep(relay: Relay, **message) -> Received:
    """`turns.receive`, and if its turn fails (a race lost too often included), the
    message kept for later instead of the failure."""
    try:
        return await turns.receive(relay, **message)
    except Exception as exc:  # noqa: BLE001 -- whatever failed, the message must stay
        return await keep(relay, exc, **message)


async def keep(relay: Relay, failure: Exception, **message: Any) -> Received:
    """Store the message (if it is not stored yet) as not handled, to be tried again.
    Raises if even that fails: the webhook then answers 500, as before."""
    m = turns.Incoming.of(**message)
    async with relay.write_turn(), relay.sessions.begin() as session:
        record = await turns.store_message(session, m)
        if record is None:  # stored meanwhile by another copy, which was handled
            MESSAGES_IN.labels(m.channel, "duplicate").inc()
            return Received(duplicate=True)
        row = queue.row(
            *record,
            channel=m.channel,
            address=m.address,
            language_hint=m.language_hint,
            now=m.now,
            failure=type(failure).__name__,
            next_at=m.now + next_try(1),
        )
        await queue.hold(session, [row])
    # The traceback's frames and type only (bot/logs.py): never the text or the address.
    log.warning(
        "inbound %s message %d kept to be tried again: its turn failed (%s)",
        m.channel,
        record[0],
        type(failure).__name__,
        exc_info=failure,
    )
    MESSAGES_IN.labels(m.channel, "kept").inc()
    INBOUND_UNHANDLED.labels("kept").inc()
    return Received(duplicate=False, kept=True)
