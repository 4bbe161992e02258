"""response: the counter index ends with the id, so a counter's newest responses are a short walk

Two reads ask for a counter's newest responses: the submit path's recent responses
(integrity.RECENT: the counter's last three web responses, newest first) and the staff
pages' last QR response per counter (domain/activity.last_scanned). With an index on
counter_id alone, PostgreSQL read every response of the counter; on (counter_id, id) it
reads the newest entries and stops. bench/bench_counters.py, 3 million responses over 10,000
counters: the last QR response of every counter 530 -> 148 ms, of one agency's ten counters
4.7 -> 0.8 ms, the submit path's recent read 0.41 -> 0.23 ms, and these no longer grow with a
counter's history (SQLite's index already ended with the rowid; nothing changes there).

The new index replaces ix_response_counter_id, which it makes redundant. Built inside the
upgrade's transaction: about 2 s per 3 million responses on PostgreSQL, while submissions
wait (they are not refused).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 23:00:00.000000
"""

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_response_counter_latest', 'response', ['counter_id', 'id'],
                    unique=False)
    op.drop_index('ix_response_counter_id', table_name='response')


def downgrade() -> None:
    op.create_index('ix_response_counter_id', 'response', ['counter_id'], unique=False)
    op.drop_index('ix_response_counter_latest', table_name='response')
