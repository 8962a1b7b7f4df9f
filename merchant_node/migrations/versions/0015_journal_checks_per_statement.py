"""Journal checks per statement, not per line: what expiry (one journal transaction per batch of
thousands of lots, issue 12) and every other writer pay for laws 1 and the journal's references.

Law 1 on PostgreSQL. Until now a deferred constraint trigger fired once per journal line at
commit (0001; 0009 made all but the first firing of a transaction skip its sum, but each firing
still ran). Now one statement-level AFTER INSERT trigger reads the statement's lines (a
transition table) and sums them per journal transaction: a statement whose lines of a
transaction sum to zero leaves it balanced (it balanced before: every commit checked it), so
nothing is left to check; a transaction the statement leaves unbalanced (its lines are written
by several statements) gets a row in `journal_unbalanced`, whose deferred constraint trigger
sums that transaction's lines at commit, refuses the commit if they do not balance ('journal
transaction … does not balance', SQLSTATE 23514, as before) and removes the row. Every writer
writes a transaction's lines in one statement (store.post_journal: one multi-row INSERT; the
expiry run: one INSERT … SELECT), so the check costs one aggregate per statement and nothing at
commit. SQLite has no such trigger (unchanged: the ledger checks each posting in Python, and the
audit checks law 1); `journal_unbalanced` exists there only so that one schema serves both.

The foreign keys of journal_lines (txn_id → journal_transactions, member_pk → members,
lot_id → lots) did not earn their cost: PostgreSQL checks a foreign key with one query per
inserted row (an expiry batch of 5,000 lots ran 15,000 of them, most of its time after the
UPDATE itself). What they guaranteed is kept:
* on insert, the same statement-level trigger refuses lines whose journal transaction, member
  or lot does not exist, with one anti-join per statement (SQLSTATE 23503, as a foreign key),
  and checks a little more: a line's lot is its member's (one probe of the lot checks both;
  law 4 already compared each member's lines with her lots);
  on SQLite a per-row BEFORE INSERT trigger does the same (SQLite's checks are in-process and
  cheap; it only replaces the foreign keys that the schema no longer declares);
* on delete of the referenced row, which a foreign key would refuse: journal transactions are
  append-only (0001's triggers refuse DELETE), and no code deletes members or lots (lots and
  members are referenced by earnings, allocations, holds and other foreign keys too);
* the rows are written only by code that holds the referenced rows: store.post_journal inserts
  its transaction first and writes lines for the member it has locked and that member's lots;
  the expiry run selects its lines from the lots of the members it locked;
* merchant_node/ledger/audit.py reports any line whose transaction, member or lot is missing
  (law 1), and the law tests run it after every history (tests/merchant_node/…).

Indexes: a member's history now reads her lines by `ix_journal_lines_member` (member_pk,
txn_id; lines without a member are not indexed), since an expiry batch's transaction has no
member of its own; `ix_journal_transactions_member` (member_pk, id) served only that read and is
dropped, so an earn still writes as many index entries as before.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 10:40:00
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_FKS = {
    "txn_id": ("journal_transactions", "fk_journal_lines_txn_id_journal_transactions"),
    "member_pk": ("members", "fk_journal_lines_member_pk_members"),
    "lot_id": ("lots", "fk_journal_lines_lot_id_lots"),
}
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_PG_CHECK_STATEMENT = """CREATE FUNCTION journal_lines_checked() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM (SELECT DISTINCT txn_id FROM new_lines) l WHERE NOT EXISTS
             (SELECT 1 FROM journal_transactions t WHERE t.id = l.txn_id)) THEN
    RAISE EXCEPTION 'journal line refers to a journal transaction that does not exist'
      USING ERRCODE = '23503';
  END IF;
  -- A lot's line is its member's (law 4 compares each member's lines with her lots): one probe
  -- of the lot checks both, and the member exists by lots' own foreign key.
  IF EXISTS (SELECT 1 FROM new_lines l WHERE l.lot_id IS NOT NULL AND NOT EXISTS
             (SELECT 1 FROM lots o WHERE o.id = l.lot_id AND o.member_pk = l.member_pk)) THEN
    RAISE EXCEPTION 'journal line refers to a lot that does not exist or is not its member''s'
      USING ERRCODE = '23503';
  END IF;
  IF EXISTS (SELECT 1 FROM new_lines l WHERE l.lot_id IS NULL AND l.member_pk IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM members m WHERE m.id = l.member_pk)) THEN
    RAISE EXCEPTION 'journal line refers to a member that does not exist'
      USING ERRCODE = '23503';
  END IF;
  -- Balanced within the statement: balanced still. Otherwise checked at commit.
  INSERT INTO journal_unbalanced (txn_id)
    SELECT txn_id FROM new_lines GROUP BY txn_id HAVING SUM(points) <> 0
    ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$"""

_PG_CHECK_AT_COMMIT = """CREATE FUNCTION journal_check_unbalanced() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT COALESCE(SUM(points), 0) FROM journal_lines WHERE txn_id = NEW.txn_id) <> 0 THEN
    RAISE EXCEPTION 'journal transaction % does not balance', NEW.txn_id
      USING ERRCODE = '23514';
  END IF;
  DELETE FROM journal_unbalanced WHERE txn_id = NEW.txn_id;
  RETURN NULL;
END $$"""

_PG_UPGRADE = [
    "DROP TRIGGER journal_lines_balanced ON journal_lines",
    "DROP FUNCTION journal_check_balanced()",
    *(f"ALTER TABLE journal_lines DROP CONSTRAINT {name}" for _, name in _FKS.values()),
    _PG_CHECK_STATEMENT,
    """CREATE TRIGGER journal_lines_checked AFTER INSERT ON journal_lines
       REFERENCING NEW TABLE AS new_lines
       FOR EACH STATEMENT EXECUTE FUNCTION journal_lines_checked()""",
    _PG_CHECK_AT_COMMIT,
    """CREATE CONSTRAINT TRIGGER journal_unbalanced_checked AFTER INSERT ON journal_unbalanced
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION journal_check_unbalanced()""",
]

# 0009's function: the balance check once per line, its sum once per transaction.
_PG_ONCE_PER_LINE = """CREATE FUNCTION journal_check_balanced() RETURNS trigger
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

_PG_DOWNGRADE = [
    "DROP TRIGGER journal_lines_checked ON journal_lines",
    "DROP FUNCTION journal_lines_checked()",
    "DROP TRIGGER journal_unbalanced_checked ON journal_unbalanced",
    "DROP FUNCTION journal_check_unbalanced()",
    *(
        f"ALTER TABLE journal_lines ADD CONSTRAINT {name} FOREIGN KEY ({column}) "
        f"REFERENCES {table} (id)"
        for column, (table, name) in _FKS.items()
    ),
    _PG_ONCE_PER_LINE,
    """CREATE CONSTRAINT TRIGGER journal_lines_balanced AFTER INSERT ON journal_lines
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION journal_check_balanced()""",
]

# SQLite: the foreign keys' check on insert, per row (in-process, cheap).
_SQLITE_REFERENCES = """CREATE TRIGGER journal_lines_references BEFORE INSERT ON journal_lines
    WHEN NOT EXISTS (SELECT 1 FROM journal_transactions WHERE id = NEW.txn_id)
      OR (NEW.lot_id IS NOT NULL AND NOT EXISTS
          (SELECT 1 FROM lots WHERE id = NEW.lot_id AND member_pk = NEW.member_pk))
      OR (NEW.lot_id IS NULL AND NEW.member_pk IS NOT NULL AND NOT EXISTS
          (SELECT 1 FROM members WHERE id = NEW.member_pk))
    BEGIN SELECT RAISE(ABORT, 'journal line refers to a missing transaction, member or lot'); END"""

_FK_CLAUSE = re.compile(
    r",\s*CONSTRAINT fk_journal_lines_\w+ FOREIGN KEY\s*\(\w+\) REFERENCES \w+ \(\w+\)"
)


def upgrade() -> None:
    op.create_table(
        "journal_unbalanced",
        sa.Column("txn_id", _ID, autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("txn_id", name=op.f("pk_journal_unbalanced")),
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in _PG_UPGRADE:
            op.execute(statement)
    else:
        _sqlite_rebuild_journal_lines(with_foreign_keys=False)
        op.execute(_SQLITE_REFERENCES)
    op.drop_index("ix_journal_transactions_member", table_name="journal_transactions")
    op.create_index(
        "ix_journal_lines_member",
        "journal_lines",
        ["member_pk", "txn_id"],
        postgresql_where=sa.text("member_pk IS NOT NULL"),
        sqlite_where=sa.text("member_pk IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_journal_lines_member", table_name="journal_lines")
    op.create_index("ix_journal_transactions_member", "journal_transactions", ["member_pk", "id"])
    if op.get_bind().dialect.name == "postgresql":
        for statement in _PG_DOWNGRADE:
            op.execute(statement)
    else:
        op.execute("DROP TRIGGER journal_lines_references")
        _sqlite_rebuild_journal_lines(with_foreign_keys=True)
    op.drop_table("journal_unbalanced")


def _sqlite_rebuild_journal_lines(*, with_foreign_keys: bool) -> None:
    """SQLite cannot drop or add a foreign key in place: the table is copied under a new
    definition, and its indexes and triggers (append-only, the console's rollup, …) are made
    again from their stored SQL. Nothing refers to journal_lines, so dropping it is safe."""
    conn = op.get_bind()
    table_sql = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'journal_lines'"
    ).scalar_one()
    others = [
        sql
        for (sql,) in conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'journal_lines'"
            " AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY type, name"
        )
    ]
    definition = _FK_CLAUSE.sub("", table_sql)
    if with_foreign_keys:
        clauses = "".join(
            f", \n\tCONSTRAINT {name} FOREIGN KEY({column}) REFERENCES {table} (id)"
            for column, (table, name) in _FKS.items()
        )
        definition = definition[: definition.rindex(")")].rstrip() + clauses + "\n)"
    # (SQLite keeps the text it was given; after a rename the name is quoted.)
    new_table = re.sub(
        r'^CREATE TABLE "?journal_lines"?', "CREATE TABLE journal_lines_new", definition
    )
    assert new_table != definition, definition
    op.execute(new_table)
    op.execute("INSERT INTO journal_lines_new SELECT * FROM journal_lines")
    op.execute("DROP TABLE journal_lines")
    op.execute("ALTER TABLE journal_lines_new RENAME TO journal_lines")
    for sql in others:
        op.execute(sql)
