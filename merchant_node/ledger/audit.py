"""Checks the ledger's laws against the stored state; returns what is violated (empty: all hold).

Law 1: every journal transaction balances, and every line belongs to a journal transaction
and names a member and a lot that exist (what foreign keys checked until node migration 0015;
the database checks it per statement now, this checks what is stored).
Law 2: no member account is below zero.
Law 4: issued − redeemed − expired − clawed back = Σ available + Σ held − Σ debt, and each
member's lots, pending holds and debt agree with that member's journal accounts.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, or_, select

from merchant_node.ledger import domain
from merchant_node.ledger.schema import holds, journal_lines, journal_transactions, lots, members


def violations(conn: Connection) -> list[str]:
    found: list[str] = []
    unbalanced = conn.execute(
        select(journal_lines.c.txn_id)
        .group_by(journal_lines.c.txn_id)
        .having(func.sum(journal_lines.c.points) != 0)
    ).all()
    found += [f"law 1: journal transaction {r.txn_id} does not balance" for r in unbalanced]
    jl, jt = journal_lines, journal_transactions
    orphans = conn.execute(
        select(jl.c.id)
        .select_from(
            jl.outerjoin(jt, jt.c.id == jl.c.txn_id)
            .outerjoin(members, members.c.id == jl.c.member_pk)
            .outerjoin(lots, lots.c.id == jl.c.lot_id)
        )
        .where(
            or_(
                jt.c.id.is_(None),
                jl.c.member_pk.is_not(None) & members.c.id.is_(None),
                jl.c.lot_id.is_not(None) & lots.c.id.is_(None),
            )
        )
        .order_by(jl.c.id)
        .limit(100)
    ).scalars()
    found += [
        f"law 1: journal line {line} refers to a missing transaction, member or lot"
        for line in orphans
    ]

    accounts = {
        (r.account, r.member_pk): int(r.total)
        for r in conn.execute(
            select(
                journal_lines.c.account,
                journal_lines.c.member_pk,
                func.sum(journal_lines.c.points).label("total"),
            ).group_by(journal_lines.c.account, journal_lines.c.member_pk)
        )
    }
    in_lots = dict(
        conn.execute(
            select(lots.c.member_pk, func.sum(lots.c.remaining)).group_by(lots.c.member_pk)
        ).all()
    )
    held = dict(
        conn.execute(
            select(holds.c.member_pk, func.sum(holds.c.points))
            .where(holds.c.status == "pending")
            .group_by(holds.c.member_pk)
        ).all()
    )
    for member in conn.execute(select(members.c.id, members.c.member_id, members.c.debt)):
        journal = {a: accounts.get((a, member.id), 0) for a in domain.MEMBER_ACCOUNTS}
        state = {
            domain.MEMBER_AVAILABLE: int(in_lots.get(member.id) or 0),
            domain.MEMBER_HELD: int(held.get(member.id) or 0),
            domain.MEMBER_DEBT: -member.debt,
        }
        for account, expected in state.items():
            if journal[account] != expected:
                found.append(
                    f"law 4: member {member.member_id} {account} is {journal[account]} "
                    f"in the journal, {expected} in lots/holds/debt"
                )
        if journal[domain.MEMBER_AVAILABLE] < 0 or journal[domain.MEMBER_HELD] < 0:
            found.append(f"law 2: member {member.member_id} has a negative balance: {journal}")

    def node(account: str) -> int:
        return accounts.get((account, None), 0)

    issued = -node(domain.ISSUANCE)
    spent = sum(
        node(a)
        for a in (domain.REDEMPTION, domain.CROSS_REDEMPTION, domain.BREAKAGE, domain.CLAWBACK)
    )
    balances = sum(v for (a, m), v in accounts.items() if m is not None)
    if issued - spent != balances:
        found.append(
            f"law 4: issued {issued} − redeemed/expired/clawed back {spent} "
            f"≠ Σ member accounts {balances}"
        )
    return found
