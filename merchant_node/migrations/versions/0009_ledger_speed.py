"""Ledger speed: the balance check once per journal transaction, not once per line.

PostgreSQL checks that every journal transaction balances at commit, with a deferred constraint
trigger on journal_lines (migration 0001). A constraint trigger fires once per row, and each
firing re-summed the whole transaction: a transaction of n lines cost n sums of n lines (an
expiry batch's thousands of lines, quadratic). Now a firing first looks at a transaction-local
note of the last transaction checked and the highest line id it summed: a line of that
transaction at or below that id was in the sum already, so it is skipped. Deferred firings come
in insertion order at commit, so a transaction's lines are summed once. A line inserted after
its transaction was checked (after SET CONSTRAINTS … IMMEDIATE) has a higher id, and forces a
new sum: law 1 is checked exactly as before. SQLite has no such trigger (the ledger checks each
posting in Python, and the audit checks law 1): nothing changes there.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 03:45:00
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ONCE_PER_TRANSACTION = """CREATE OR REPLACE FUNCTION journal_check_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  checked text := current_setting('coalition.balanced_upto', true);
  total numeric;
  upto bigint;
BEGIN
  IF checked IS NOT NULL AND checked <> ''
     AND split_part(checked, ':', 1) = NEW.txn_id::text
     AND NEW.id <= split_part(checked, ':', 2)::bigint THEN
    RETURN NULL;  -- summed with its transaction already
  END IF;
  SELECT COALESCE(SUM(points), 0), MAX(id) INTO total, upto
    FROM journal_lines WHERE txn_id = NEW.txn_id;
  IF total <> 0 THEN
    RAISE EXCEPTION 'journal transaction % does not balance', NEW.txn_id
      USING ERRCODE = '23514';
  END IF;
  PERFORM set_config('coalition.balanced_upto', NEW.txn_id::text || ':' || upto::text, true);
  RETURN NULL;
END $$"""

_ONCE_PER_LINE = """CREATE OR REPLACE FUNCTION journal_check_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT COALESCE(SUM(points), 0) FROM journal_lines WHERE txn_id = NEW.txn_id) <> 0 THEN
    RAISE EXCEPTION 'journal transaction % does not balance', NEW.txn_id
      USING ERRCODE = '23514';
  END IF;
  RETURN NULL;
END $$"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_ONCE_PER_TRANSACTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_ONCE_PER_LINE)
