"""audit events are inserted unlinked and linked into the chain by a sequencer

Events get an insertion id (the new primary key); seq, prev_hash and hash stay empty until
the sequencer links them. Existing events keep their links, with id = seq.

Revision ID: 0011_audit_sequencer
Revises: 0010_merge
"""

from alembic import op

revision = "0011_audit_sequencer"
down_revision = "0010_merge"
branch_labels = None
depends_on = None

COLUMNS = "id, seq, at, kind, participant_id, data, prev_hash, hash"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(
            """
            id INTEGER NOT NULL, seq INTEGER, at DATETIME NOT NULL, kind VARCHAR(64) NOT NULL,
            participant_id VARCHAR(16), data JSON NOT NULL, prev_hash VARCHAR(64),
            hash VARCHAR(64), PRIMARY KEY (id), UNIQUE (seq), UNIQUE (hash)""",
            "seq, seq, at, kind, participant_id, data, prev_hash, hash",
        )
        op.execute("CREATE INDEX ix_audit_events_unlinked ON audit_events (id) WHERE seq IS NULL")
        return
    for sql in (
        "ALTER TABLE audit_events ADD COLUMN id BIGINT",
        "UPDATE audit_events SET id = seq",
        "CREATE SEQUENCE audit_events_id_seq OWNED BY audit_events.id",
        "SELECT setval('audit_events_id_seq', COALESCE((SELECT max(id) FROM audit_events), 0)"
        " + 1, false)",
        "ALTER TABLE audit_events DROP CONSTRAINT audit_events_pkey",
        "ALTER TABLE audit_events ALTER COLUMN id SET DEFAULT nextval('audit_events_id_seq'),"
        " ALTER COLUMN seq DROP NOT NULL,"
        " ALTER COLUMN prev_hash DROP NOT NULL, ALTER COLUMN hash DROP NOT NULL",
        "ALTER TABLE audit_events ADD PRIMARY KEY (id)",
        "ALTER TABLE audit_events ADD CONSTRAINT audit_events_seq_key UNIQUE (seq)",
        "CREATE INDEX ix_audit_events_unlinked ON audit_events (id) WHERE seq IS NULL",
    ):
        op.execute(sql)


def downgrade() -> None:
    # Only a fully linked chain can go back: run the sequencer (concorder audit verify) first.
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP INDEX ix_audit_events_unlinked")
        _rebuild_sqlite(
            """
            seq INTEGER NOT NULL, at DATETIME NOT NULL, kind VARCHAR(64) NOT NULL,
            participant_id VARCHAR(16), data JSON NOT NULL, prev_hash VARCHAR(64) NOT NULL,
            hash VARCHAR(64) NOT NULL, PRIMARY KEY (seq), UNIQUE (hash)""",
            "seq, at, kind, participant_id, data, prev_hash, hash",
            "seq, at, kind, participant_id, data, prev_hash, hash",
        )
        return
    for sql in (
        "DROP INDEX ix_audit_events_unlinked",
        "ALTER TABLE audit_events DROP CONSTRAINT audit_events_seq_key",
        "ALTER TABLE audit_events DROP CONSTRAINT audit_events_pkey",
        "ALTER TABLE audit_events ALTER COLUMN seq SET NOT NULL,"
        " ALTER COLUMN prev_hash SET NOT NULL, ALTER COLUMN hash SET NOT NULL",
        "ALTER TABLE audit_events ADD PRIMARY KEY (seq)",
        "ALTER TABLE audit_events DROP COLUMN id",
    ):
        op.execute(sql)


def _rebuild_sqlite(definition: str, source: str, target: str = COLUMNS) -> None:
    """SQLite cannot change a primary key in place: copy into a new table."""
    op.execute(f"CREATE TABLE _audit_events_new ({definition})")
    op.execute(f"INSERT INTO _audit_events_new ({target}) SELECT {source} FROM audit_events")
    op.execute("DROP TABLE audit_events")
    op.execute("ALTER TABLE _audit_events_new RENAME TO audit_events")
    op.execute("CREATE INDEX ix_audit_events_kind ON audit_events (kind)")
    op.execute("CREATE INDEX ix_audit_events_participant_id ON audit_events (participant_id)")
