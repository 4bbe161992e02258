"""integrity: submission counts in coarse buckets, the answers' digest per submission key

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'submission_count',
        sa.Column('counter_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('client_key', sa.String(length=32), nullable=False),
        sa.Column('bucket', sa.DateTime(timezone=True), nullable=False),
        sa.Column('submissions', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('counter_id', 'client_key', 'bucket'),
    )
    with op.batch_alter_table('submission_count', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_submission_count_bucket'), ['bucket'], unique=False)
    with op.batch_alter_table('response', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answers_digest', sa.String(length=32), nullable=True))
    # The per-submission events with exact times are what linked responses to clients:
    # the new counts replace them, so the old ones go now rather than in two days.
    op.execute("DELETE FROM rate_event WHERE scope LIKE 'submit:%'")


def downgrade() -> None:
    with op.batch_alter_table('response', schema=None) as batch_op:
        batch_op.drop_column('answers_digest')
    with op.batch_alter_table('submission_count', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submission_count_bucket'))
    op.drop_table('submission_count')
