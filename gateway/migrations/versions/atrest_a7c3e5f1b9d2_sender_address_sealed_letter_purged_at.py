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
down_revision = "d5a1e9c3b7f2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("senders") as batch:
        batch.add_column(sa.Column("address_sealed", sa.Text(), nullable=True))
    with op.batch_alter_table("letters") as batch:
        batch.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("letters") as batch:
        batch.drop_column("purged_at")
    with op.batch_alter_table("senders") as batch:
        batch.drop_column("address_sealed")
