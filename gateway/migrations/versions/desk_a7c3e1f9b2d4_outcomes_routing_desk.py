"""The one home for outcomes and the desk: a reason code on every event, the service a
letter goes through, the desk's lease, postage per post batch.

Revision ID: a7c3e1f9b2d4
Revises: d5a1e9c3b7f2
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

from gateway.models import UTCDateTime

revision = "a7c3e1f9b2d4"
down_revision = "a7c3e5f1b9d2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("letter_events") as batch:
        batch.add_column(sa.Column("reason_code", sa.String(40), nullable=True))
        batch.create_index("ix_letter_events_reason_code", ["reason_code"])
    with op.batch_alter_table("letters") as batch:
        batch.add_column(sa.Column("service", sa.String(50), nullable=True))
        batch.add_column(sa.Column("leased_by", sa.String(100), nullable=True))
        batch.add_column(sa.Column("lease_until", UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("post_batches") as batch:
        batch.add_column(sa.Column("postage", sa.Numeric(10, 2), nullable=True))
    # Letters routed before services had names: each adapter's own profile was its service
    # (the desk typed into FSIN-Pismo's form).
    for adapter, service in (("desk", "fsin-pismo"), ("post", "post"), ("http", "http")):
        op.execute(sa.text("UPDATE letters SET service = :s WHERE provider = :a "
                           "AND service IS NULL").bindparams(s=service, a=adapter))


def downgrade() -> None:
    with op.batch_alter_table("post_batches") as batch:
        batch.drop_column("postage")
    with op.batch_alter_table("letters") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("leased_by")
        batch.drop_column("service")
    with op.batch_alter_table("letter_events") as batch:
        batch.drop_index("ix_letter_events_reason_code")
        batch.drop_column("reason_code")
