"""Postcards: short greetings to one prisoner gathered into one letter; letters record the
postcard they joined; campaigns and evenings say whether they gather.

Revision ID: postcards_9c4e2a7f1b05
Revises: e1a4c8b2d6f3
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "postcards_9c4e2a7f1b05"
down_revision = "e1a4c8b2d6f3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "postcards",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("prisoner_id", sa.Integer(), sa.ForeignKey("prisoners.id"), nullable=False),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaigns.id"), nullable=True),
        sa.Column("evening_id", sa.Integer(), sa.ForeignKey("evenings.id"), nullable=True),
        sa.Column("provider", sa.String(50), nullable=False),
        sa.Column("service", sa.String(50), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(100), nullable=True),
        sa.Column("letter_id", sa.Integer(),
                  sa.ForeignKey("letters.id", name="fk_postcards_letter_id"), nullable=True,
                  unique=True),
        sa.Column("greetings", sa.Integer(), nullable=False),
        sa.Column("chars", sa.Integer(), nullable=False),
        sa.Column("own_letters_rub", sa.Numeric(10, 2), nullable=False),
        sa.Column("price_rub", sa.Numeric(10, 2), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=True),
    )
    op.create_index("ix_postcards_prisoner_id", "postcards", ["prisoner_id"])
    op.create_index("ix_postcards_campaign_id", "postcards", ["campaign_id"])
    op.create_index("ix_postcards_evening_id", "postcards", ["evening_id"])
    op.create_index("ix_postcards_closes_at", "postcards", ["closes_at"])
    with op.batch_alter_table("letters") as batch:
        batch.add_column(sa.Column("postcard_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_letters_postcard_id", "postcards", ["postcard_id"], ["id"])
        batch.create_index("ix_letters_postcard_id", ["postcard_id"])
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("postcards", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table("evenings") as batch:
        batch.add_column(sa.Column("postcards", sa.Boolean(), nullable=False,
                                   server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("evenings") as batch:
        batch.drop_column("postcards")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("postcards")
    with op.batch_alter_table("letters") as batch:
        batch.drop_index("ix_letters_postcard_id")
        batch.drop_constraint("fk_letters_postcard_id", type_="foreignkey")
        batch.drop_column("postcard_id")
    op.drop_table("postcards")
