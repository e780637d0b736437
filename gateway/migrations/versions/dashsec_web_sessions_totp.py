"""Server-side dashboard sessions (web_sessions) and optional TOTP for organizers.

Revision ID: dashsec_a7c3e1f9
Revises: d5a1e9c3b7f2
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

from gateway.models import UTCDateTime

revision = "dashsec_a7c3e1f9"
down_revision = "d5a1e9c3b7f2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("pending_second_factor", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])
    op.create_index("ix_web_sessions_seen_at", "web_sessions", ["seen_at"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("totp_sealed", sa.Text(), nullable=True))
        batch.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("totp_last_step")
        batch.drop_column("totp_sealed")
    op.drop_index("ix_web_sessions_seen_at", table_name="web_sessions")
    op.drop_index("ix_web_sessions_user_id", table_name="web_sessions")
    op.drop_table("web_sessions")
