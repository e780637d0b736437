"""senders (confirmation, pseudonym, daily count); outbound mail Message-ID and writer hash

Revision ID: b3e1c7a2d9f0
Revises: 6d90c491ec11
Create Date: 2026-11-26 21:45:00
"""
import sqlalchemy as sa
from alembic import op

import gateway.models

revision = 'b3e1c7a2d9f0'
down_revision = '6d90c491ec11'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'senders',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('address_hash', sa.String(length=64), nullable=False),
        sa.Column('pseudonym', sa.String(length=40), nullable=True),
        sa.Column('verified_at', gateway.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('token_hash', sa.String(length=64), nullable=True),
        sa.Column('token_expires_at', gateway.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('count_day', sa.String(length=10), nullable=True),
        sa.Column('letters_today', sa.Integer(), nullable=False),
        sa.Column('first_seen_at', gateway.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', gateway.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('address_hash'),
    )
    with op.batch_alter_table('outbound_mail', schema=None) as batch_op:
        batch_op.add_column(sa.Column('message_id', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('writer_hash', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbound_mail_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbound_mail_writer_hash'), ['writer_hash'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbound_mail', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbound_mail_writer_hash'))
        batch_op.drop_index(batch_op.f('ix_outbound_mail_message_id'))
        batch_op.drop_column('writer_hash')
        batch_op.drop_column('message_id')
    op.drop_table('senders')
