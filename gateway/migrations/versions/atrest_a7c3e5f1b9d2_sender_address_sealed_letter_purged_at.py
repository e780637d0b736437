"""A writer's sealed address on their Sender row (kept while active; rotation needs it);
letters.purged_at (retention).

Raw mail, the outbox's composed mail and content hashes written before this revision are
in clear / unkeyed: `gateway keys rotate` seals and re-keys them (readers accept the old
clear form meanwhile).

Revision ID: a7c3e5f1b9d2
Revises: d5a1e9c3b7f2
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "a7c3e5f1b9d2"
down_revision = "c7e2b9d4a1f6"
branch_labels = None
depends_on = None


# Free text written before addresses were masked at storage (gateway/masking.py).
MASKED = [("outbound_mail", "last_error"), ("suppressions", "note"), ("cursors", "value"),
          ("letter_events", "note"), ("submission_attempts", "error"), ("letters", "reason"),
          ("replies", "note"), ("replies", "suggestion"), ("audit_log", "detail"),
          ("censor_decisions", "reason")]


def upgrade() -> None:
    with op.batch_alter_table("senders") as batch:
        batch.add_column(sa.Column("address_sealed", sa.Text(), nullable=True))
    with op.batch_alter_table("letters") as batch:
        batch.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    _mask_stored_text()


def _mask_stored_text() -> None:
    from gateway.masking import mask_addresses
    conn = op.get_bind()
    for table, column in MASKED:
        key = "name" if table == "cursors" else "id"
        # '%40' matches the url-encoded form and more: mask_addresses decides.
        rows = conn.execute(sa.text(f"SELECT {key}, {column} FROM {table} "
                                    f"WHERE {column} LIKE '%@%' OR {column} LIKE '%40%'")).all()
        for row_key, value in rows:
            masked = mask_addresses(value)
            if masked != value:
                conn.execute(sa.text(f"UPDATE {table} SET {column} = :v WHERE {key} = :k"),
                             {"v": masked, "k": row_key})


def downgrade() -> None:
    with op.batch_alter_table("letters") as batch:
        batch.drop_column("purged_at")
    with op.batch_alter_table("senders") as batch:
        batch.drop_column("address_sealed")
