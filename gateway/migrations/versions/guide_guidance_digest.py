"""Guidance texts edited by organizers; organizers' e-mail (sealed) and digest opt-in.

Revision ID: guide_b81d4c2e
Revises: dashsec_a7c3e1f9
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

from gateway.models import UTCDateTime

revision = "guide_b81d4c2e"
down_revision = "a7c3e1f9b2d4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guidance_texts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("language", sa.String(2), nullable=False, unique=True),
        sa.Column("markdown", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(100), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email_sealed", sa.Text(), nullable=True))
        batch.add_column(sa.Column("digest_opt_in", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("digest_opt_in")
        batch.drop_column("email_sealed")
    op.drop_table("guidance_texts")
