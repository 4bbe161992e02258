"""report cache: computed report tables keyed by filters and scope, with the data version

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-12 12:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'report_cache',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('version', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('payload', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )


def downgrade() -> None:
    op.drop_table('report_cache')
