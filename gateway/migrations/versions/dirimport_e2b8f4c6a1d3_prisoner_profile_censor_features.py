"""Prisoner profile from the groups' lists (gender, interests, a note for writers, wants
letters, last moved); what each censored letter was about (censor_decisions.features).

Revision ID: e2b8f4c6a1d3
Revises: a7c3e5f1b9d2
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "e2b8f4c6a1d3"
down_revision = "guide_b81d4c2e"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("prisoners") as batch:
        batch.add_column(sa.Column("gender", sa.String(1), nullable=True))
        batch.add_column(sa.Column("interests", sa.Text(), nullable=True))
        batch.add_column(sa.Column("interest_tags", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("writer_note", sa.Text(), nullable=True))
        batch.add_column(sa.Column("wants_letters", sa.Boolean(), nullable=False,
                                   server_default=sa.true()))
        batch.add_column(sa.Column("moved_at", sa.Date(), nullable=True))
    with op.batch_alter_table("censor_decisions") as batch:
        batch.add_column(sa.Column("features", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("censor_decisions") as batch:
        batch.drop_column("features")
    with op.batch_alter_table("prisoners") as batch:
        for column in ("moved_at", "wants_letters", "writer_note", "interest_tags",
                       "interests", "gender"):
            batch.drop_column(column)
