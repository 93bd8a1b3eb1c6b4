"""invitation codes no longer kept in plain text: scrub those already sent

Outbox rows now keep a marker with a nonce where the code goes (bot/invite_codes.py). Rows
written before kept the code itself: in those already sent the code is replaced, and so is
the code of every '/start <code>' message received. Rows still waiting to be sent keep
their code, or the person would get a link that opens nothing.

Revision ID: 0009_invitation_secrets
Revises: 0008_outbox_pending_indexes
"""

import re

from alembic import op
import sqlalchemy as sa


revision = "0009_invitation_secrets"
down_revision = "0008_outbox_pending_indexes"
branch_labels = None
depends_on = None

LINK_CODE = re.compile(r"(\?start=)[A-Za-z0-9_-]{1,64}")
START_CODE = re.compile(r"^\s*/start(@\w+)?\s+[A-Za-z0-9_-]{1,64}\s*$")
GONE = "x" * 32  # as long as a code: the row's segment count still holds
STORED_START = "/start [code not kept]"

outbox = sa.table(
    "outbox",
    sa.column("id", sa.BigInteger),
    sa.column("text", sa.Text),
    sa.column("kind", sa.String),
    sa.column("status", sa.String),
)
inbound = sa.table(
    "inbound_messages",
    sa.column("id", sa.BigInteger),
    sa.column("channel", sa.String),
    sa.column("text", sa.Text),
)


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(outbox.c.id, outbox.c.text).where(
            outbox.c.kind == "invitation",
            outbox.c.status.notin_(("queued", "sending")),
            outbox.c.text.like("%?start=%"),
        )
    ).all()
    changed = [
        {"b_id": id_, "b_text": LINK_CODE.sub(lambda m: m.group(1) + GONE, text)}
        for id_, text in rows
        if "start=nonce-" not in text
    ]
    if changed:
        conn.execute(
            outbox.update()
            .where(outbox.c.id == sa.bindparam("b_id"))
            .values(text=sa.bindparam("b_text")),
            changed,
        )
    rows = conn.execute(
        sa.select(inbound.c.id, inbound.c.text).where(
            inbound.c.channel == "telegram", inbound.c.text.like("%/start%")
        )
    ).all()
    changed = [{"b_id": id_} for id_, text in rows if START_CODE.match(text)]
    if changed:
        conn.execute(
            inbound.update().where(inbound.c.id == sa.bindparam("b_id")).values(text=STORED_START),
            changed,
        )


def downgrade() -> None:
    pass  # the codes are gone for good, which is the point
