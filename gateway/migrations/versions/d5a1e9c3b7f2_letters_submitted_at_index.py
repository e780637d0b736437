"""Index letters.submitted_at: the month's and the day's spend are sums over it.

Revision ID: d5a1e9c3b7f2
Revises: c4f2a8d1e7b3
Create Date: 2026-11-26
"""
from alembic import op

revision = "d5a1e9c3b7f2"
down_revision = "c4f2a8d1e7b3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_letters_submitted_at", "letters", ["submitted_at"])


def downgrade() -> None:
    op.drop_index("ix_letters_submitted_at", table_name="letters")
