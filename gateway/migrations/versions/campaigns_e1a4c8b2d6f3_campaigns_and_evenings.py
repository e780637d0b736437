"""Campaigns (with their prisoners) and letter evenings; letters record which they joined;
birthday reminder subscribers.

Revision ID: e1a4c8b2d6f3
Revises: a7c3e5f1b9d2
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "e1a4c8b2d6f3"
down_revision = "e2b8f4c6a1d3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tag", sa.String(40), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("guidance", sa.Text(), nullable=False),
        sa.Column("greeting_template", sa.Text(), nullable=True),
        sa.Column("budget_rub", sa.Numeric(10, 2), nullable=True),
        sa.Column("chosen_by", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
    )
    op.create_table(
        "campaign_prisoners",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(),
                  sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
        sa.Column("prisoner_id", sa.Integer(), sa.ForeignKey("prisoners.id"), nullable=False),
        sa.UniqueConstraint("campaign_id", "prisoner_id"),
    )
    op.create_index("ix_campaign_prisoners_campaign_id", "campaign_prisoners", ["campaign_id"])
    op.create_index("ix_campaign_prisoners_prisoner_id", "campaign_prisoners", ["prisoner_id"])
    op.create_table(
        "evenings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(40), nullable=False, unique=True),
        sa.Column("city", sa.String(100), nullable=False),
        sa.Column("place", sa.String(200), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaigns.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
    )
    op.create_index("ix_evenings_campaign_id", "evenings", ["campaign_id"])
    op.create_table(
        "birthday_subscribers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("address_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("address_sealed", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=True),
        sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("letters") as batch:
        batch.add_column(sa.Column("campaign_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("evening_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_letters_campaign_id", "campaigns", ["campaign_id"], ["id"])
        batch.create_foreign_key("fk_letters_evening_id", "evenings", ["evening_id"], ["id"])
        batch.create_index("ix_letters_campaign_id", ["campaign_id"])
        batch.create_index("ix_letters_evening_id", ["evening_id"])


def downgrade() -> None:
    with op.batch_alter_table("letters") as batch:
        batch.drop_index("ix_letters_evening_id")
        batch.drop_index("ix_letters_campaign_id")
        batch.drop_constraint("fk_letters_evening_id", type_="foreignkey")
        batch.drop_constraint("fk_letters_campaign_id", type_="foreignkey")
        batch.drop_column("evening_id")
        batch.drop_column("campaign_id")
    op.drop_table("birthday_subscribers")
    op.drop_table("evenings")
    op.drop_table("campaign_prisoners")
    op.drop_table("campaigns")
