"""Node migration 0014: the outbox carries notifications to the merchant (no member)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from coalition_kernel.db import make_engine
from coalition_kernel.migrations import alembic_config
from merchant_node.ledger.migrate import upgrade

_NOW = "2026-12-04 10:00:00"


def _row(key: str, recipient: str | None, member_pk: int | None) -> dict[str, object]:
    row: dict[str, object] = dict(
        key=key,
        member_pk=member_pk,
        kind="at_risk_jump",
        payload="{}",
        channel="webhook",
        status="pending",
        attempts=0,
        at=_NOW,
    )
    if recipient is not None:
        row["recipient"] = recipient
    return row


def _insert(conn: sa.Connection, row: dict[str, object]) -> None:
    columns = "dedupe_key, member_pk, kind, payload, channel, status, attempts, next_attempt_at, created_at"
    values = ":key, :member_pk, :kind, :payload, :channel, :status, :attempts, :at, :at"
    if "recipient" in row:
        columns += ", recipient"
        values += ", :recipient"
    conn.execute(sa.text(f"INSERT INTO notifications ({columns}) VALUES ({values})"), row)


def _migrate(engine: sa.Engine, to: str, *, down: bool) -> None:
    cfg = alembic_config("merchant_node:migrations")
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, to)
        conn.commit()


def test_merchant_notifications_up_down_and_up_again(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO members (member_id, referral_code, enrolled_at, lifetime_earned, debt)"
                    " VALUES ('m-1', 'R1', :at, 0, 0)"
                ),
                {"at": _NOW},
            )
            pk = conn.execute(sa.text("SELECT id FROM members")).scalar_one()
            _insert(conn, _row("member-1", None, pk))  # default: a member's
            _insert(conn, _row("merchant-1", "merchant", None))
            kinds = dict(
                conn.execute(sa.text("SELECT dedupe_key, recipient FROM notifications")).all()
            )
        assert kinds == {"member-1": "member", "merchant-1": "merchant"}
        for bad in (
            _row("bad-1", "member", None),
            _row("bad-2", "merchant", pk),
            _row("bad-3", "shop", None),
        ):
            with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
                _insert(conn, bad)
        # The checks the copy (SQLite batch) must carry over still hold.
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            _insert(conn, dict(_row("bad-4", "merchant", None), status="lost"))
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            _insert(conn, _row("member-1", "merchant", None))  # dedupe key unique

        _migrate(engine, "0013", down=True)
        with engine.begin() as conn:
            keys = conn.execute(sa.text("SELECT dedupe_key FROM notifications")).scalars().all()
        assert keys == ["member-1"]  # the merchant's had no member: dropped
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            _insert(conn, _row("merchant-2", None, None))  # member_pk NOT NULL again

        _migrate(engine, "head", down=False)
        with engine.begin() as conn:
            _insert(conn, _row("merchant-3", "merchant", None))
            count = conn.execute(sa.text("SELECT count(*) FROM notifications")).scalar_one()
        assert count == 2
    finally:
        engine.dispose()
