"""prisoners.birth_date (optional): the dashboard lists upcoming birthdays

Revision ID: c4f2a8d1e7b3
Revises: b3e1c7a2d9f0
Create Date: 2026-11-27 21:50:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'c4f2a8d1e7b3'
down_revision = 'b3e1c7a2d9f0'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('prisoners', schema=None) as batch_op:
        batch_op.add_column(sa.Column('birth_date', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('prisoners', schema=None) as batch_op:
        batch_op.drop_column('birth_date')
