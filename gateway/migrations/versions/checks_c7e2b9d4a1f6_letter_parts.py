"""Letters split into parts: part_of_id, part_no, parts; inbound_id nullable (the parts
after the first came from no message of their own).

Revision ID: c7e2b9d4a1f6
Revises: d5a1e9c3b7f2
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "c7e2b9d4a1f6"
down_revision = "dashsec_a7c3e1f9"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("letters") as batch:
        batch.add_column(sa.Column("part_of_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("part_no", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("parts", sa.Integer(), nullable=True))
        batch.alter_column("inbound_id", existing_type=sa.Integer(), nullable=True)
        batch.create_foreign_key("fk_letters_part_of_id_letters", "letters",
                                 ["part_of_id"], ["id"])
        batch.create_index("ix_letters_part_of_id", ["part_of_id"])


def downgrade() -> None:
    with op.batch_alter_table("letters") as batch:
        batch.drop_index("ix_letters_part_of_id")
        batch.drop_constraint("fk_letters_part_of_id_letters", type_="foreignkey")
        batch.alter_column("inbound_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("parts")
        batch.drop_column("part_no")
        batch.drop_column("part_of_id")
