"""response vectors: the service field and the criteria codes of each response, in one row

Also a partial index on the flagged responses, which the report cache counts on every view.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-14 12:00:00.000000

The columns start NULL ("not computed yet"); survey/domain/vectors.py fills them from the
Answer rows in batches the first time a report needs them.
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('response', schema=None) as batch_op:
        batch_op.add_column(sa.Column('service_field', sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column('criteria_codes', sa.String(length=64), nullable=True))
    op.create_index('ix_response_unencoded', 'response', ['id'], unique=False,
                    sqlite_where=sa.text('criteria_codes IS NULL'),
                    postgresql_where=sa.text('criteria_codes IS NULL'))
    op.create_index('ix_response_flagged', 'response', ['id'], unique=False,
                    sqlite_where=sa.text("flags != ''"),
                    postgresql_where=sa.text("flags != ''"))


def downgrade() -> None:
    op.drop_index('ix_response_flagged', table_name='response',
                  sqlite_where=sa.text("flags != ''"),
                  postgresql_where=sa.text("flags != ''"))
    op.drop_index('ix_response_unencoded', table_name='response',
                  sqlite_where=sa.text('criteria_codes IS NULL'),
                  postgresql_where=sa.text('criteria_codes IS NULL'))
    with op.batch_alter_table('response', schema=None) as batch_op:
        batch_op.drop_column('criteria_codes')
        batch_op.drop_column('service_field')
