"""receipt codes per counter and API keys per agency

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10 12:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('counter', schema=None) as batch_op:
        batch_op.add_column(sa.Column('requires_receipt', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
    op.create_table(
        'receipt_code',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('counter_id', sa.Integer(), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('source', sa.String(length=10), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(['counter_id'], ['counter.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('code_hash'),
    )
    with op.batch_alter_table('receipt_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_receipt_code_counter_id'), ['counter_id'],
                              unique=False)
    op.create_table(
        'api_key',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('agency_id', sa.Integer(), nullable=False),
        sa.Column('label', sa.String(length=200), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('prefix', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['agency_id'], ['agency.id']),
        sa.ForeignKeyConstraint(['created_by'], ['staff_user.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key_hash'),
    )
    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_key_agency_id'), ['agency_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_key_agency_id'))
    op.drop_table('api_key')
    with op.batch_alter_table('receipt_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_receipt_code_counter_id'))
    op.drop_table('receipt_code')
    with op.batch_alter_table('counter', schema=None) as batch_op:
        batch_op.drop_column('requires_receipt')
