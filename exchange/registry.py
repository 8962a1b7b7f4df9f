"""The merchant registry: who takes part, with which keys, point values, fees and endpoints,
how far each may draw on the coalition before it settles (its net-debit cap), and who keeps
the value of its expired points (its breakage policy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Connection,
    Date,
    ScalarSelect,
    and_,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)

from coalition_kernel.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from coalition_kernel.keys import key_id
from coalition_kernel.points import format_ratio, parse_ratio
from exchange.schema import (
    authorizations,
    clearing_records,
    merchant_keys,
    merchant_rates,
    merchants,
    settlement_batches,
    settlement_breakage,
)
from merchant_node.ledger.commands import check_id

RESERVED_IDS = {"exchange", "operator"}
NO_CAP = -1  # set_terms' net_debit_cap_fen that removes a merchant's cap
# Authorizations still drawing on their issuer: the points are held, not yet cleared or released
# (an authorized one only until its hold lapses: it can never be captured after that).
OPEN_AUTHORIZATIONS = ("pending", "authorized", "capturing")
# A batch in one of these has been paid: its records no longer count towards a net debit.
SETTLED_BATCHES = ("paid", "confirmed")


@dataclass(frozen=True)
class Key:
    key_id: str
    public_key: bytes
    valid_from: datetime
    valid_until: datetime | None


@dataclass(frozen=True)
class Merchant:
    merchant_id: str
    display_name: str
    status: str
    fee_bps: int
    endpoint: str
    fen_per_point: Fraction
    rate_version: int
    keys: list[Key] = field(default_factory=list)
    net_debit_cap_fen: int | None = None  # None: no cap
    breakage_operator_bps: int = 0  # the operator's share of its breakage; 0: the issuer's all


def public_key_of(raw: bytes) -> Ed25519PublicKey:
    if len(raw) != 32:
        raise InvalidArgument("MALFORMED_KEY", "an Ed25519 public key is 32 raw bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def check_terms(
    fen_per_point: str | None,
    fee_bps: int | None,
    net_debit_cap_fen: int | None = None,
    breakage_operator_bps: int | None = None,
) -> None:
    if fen_per_point is not None:
        try:
            parse_ratio(fen_per_point)
        except (ValueError, ZeroDivisionError) as exc:
            raise InvalidArgument(
                "MALFORMED_RATE", f"fen_per_point {fen_per_point!r}: {exc}"
            ) from exc
    if fee_bps is not None and not 0 <= fee_bps <= 10_000:
        raise InvalidArgument("FEE_OUT_OF_RANGE", "fee_bps must be 0-10000")
    if net_debit_cap_fen is not None and net_debit_cap_fen < NO_CAP:
        raise InvalidArgument(
            "CAP_OUT_OF_RANGE",
            f"net_debit_cap_fen must be 0 or more fen, or {NO_CAP} to remove the cap; "
            f"not {net_debit_cap_fen}",
        )
    if breakage_operator_bps is not None and not 0 <= breakage_operator_bps <= 10_000:
        raise InvalidArgument(
            "BREAKAGE_SHARE_OUT_OF_RANGE",
            "breakage_operator_bps must be 0-10000 (0: the issuer keeps its breakage, "
            f"10000: the operator does); not {breakage_operator_bps}",
        )


def load(conn: Connection, merchant_id: str) -> Merchant:
    row = conn.execute(select(merchants).where(merchants.c.merchant_id == merchant_id)).first()
    if row is None:
        raise NotFound("MERCHANT_NOT_FOUND", f"no merchant {merchant_id!r} in the coalition")
    rate = conn.execute(
        select(merchant_rates)
        .where(merchant_rates.c.merchant_id == merchant_id)
        .order_by(merchant_rates.c.version.desc())
        .limit(1)
    ).one()
    keys = [
        Key(k.key_id, k.public_key, k.valid_from, k.valid_until)
        for k in conn.execute(
            select(merchant_keys)
            .where(merchant_keys.c.merchant_id == merchant_id)
            .order_by(merchant_keys.c.valid_from)
        )
    ]
    return Merchant(
        row.merchant_id,
        row.display_name,
        row.status,
        row.fee_bps,
        row.endpoint,
        parse_ratio(rate.fen_per_point),
        rate.version,
        keys,
        row.net_debit_cap_fen,
        row.breakage_operator_bps,
    )


def active(conn: Connection, merchant_id: str, role: str) -> Merchant:
    """The merchant, refused unless active (PERMISSION_DENIED MERCHANT_SUSPENDED)."""
    merchant = load(conn, merchant_id)
    if merchant.status != "active":
        raise PermissionDenied(
            "MERCHANT_SUSPENDED", f"{role} {merchant_id} is suspended from the coalition"
        )
    return merchant


def all_merchants(conn: Connection) -> list[Merchant]:
    ids = (
        conn.execute(select(merchants.c.merchant_id).order_by(merchants.c.merchant_id))
        .scalars()
        .all()
    )
    return [load(conn, i) for i in ids]


def onboard(
    conn: Connection,
    merchant_id: str,
    display_name: str,
    fen_per_point: str,
    fee_bps: int,
    endpoint: str,
    public_key: bytes,
    now: datetime,
) -> Merchant:
    check_id("merchant_id", merchant_id)
    if merchant_id in RESERVED_IDS:
        raise InvalidArgument("RESERVED_ID", f"{merchant_id!r} is reserved")
    if not display_name or len(display_name) > 100:
        raise InvalidArgument("MISSING_FIELD", "display_name must be 1-100 characters")
    if not endpoint or len(endpoint) > 255:
        raise InvalidArgument("MISSING_FIELD", "endpoint (HOST:PORT) is required")
    check_terms(fen_per_point, fee_bps)
    key = public_key_of(public_key)
    if conn.execute(
        select(merchants.c.merchant_id).where(merchants.c.merchant_id == merchant_id)
    ).first():
        raise AlreadyExists("MERCHANT_EXISTS", f"merchant {merchant_id} is already onboarded")
    conn.execute(
        insert(merchants).values(
            merchant_id=merchant_id,
            display_name=display_name,
            status="active",
            fee_bps=fee_bps,
            endpoint=endpoint,
            onboarded_at=now,
        )
    )
    conn.execute(
        insert(merchant_rates).values(
            merchant_id=merchant_id,
            version=1,
            fen_per_point=format_ratio(parse_ratio(fen_per_point)),
            effective_from=now,
        )
    )
    conn.execute(
        insert(merchant_keys).values(
            merchant_id=merchant_id,
            key_id=key_id(key),
            public_key=public_key,
            valid_from=now,
            valid_until=None,
        )
    )
    return load(conn, merchant_id)


def rotate_key(
    conn: Connection,
    merchant_id: str,
    public_key: bytes,
    old_valid_until: datetime | None,
    new_valid_from: datetime,
    now: datetime,
) -> Merchant:
    """Adds a key valid from `new_valid_from`; the merchant's other keys end at `old_valid_until`
    (not before now: a rotation never revokes retroactively; unset: when the new key starts, a
    hand-over without a gap). A window that would leave the merchant without any valid key
    (old keys ending before the new one starts) is refused INVALID_ARGUMENT KEY_GAP."""
    load(conn, merchant_id)
    key = public_key_of(public_key)
    kid = key_id(key)
    end = max(new_valid_from if old_valid_until is None else old_valid_until, now)
    if end < new_valid_from:
        raise InvalidArgument(
            "KEY_GAP",
            f"the current keys would end at {end.isoformat()} and the new key start only at "
            f"{new_valid_from.isoformat()}: {merchant_id} would have no valid key in between; "
            "let the old keys run until the new one starts",
            merchant_id=merchant_id,
        )
    existing = conn.execute(
        select(merchant_keys.c.key_id).where(
            merchant_keys.c.merchant_id == merchant_id, merchant_keys.c.key_id == kid
        )
    ).first()
    if existing:
        raise AlreadyExists("KEY_EXISTS", f"key {kid} is already registered for {merchant_id}")
    conn.execute(
        update(merchant_keys)
        .where(
            merchant_keys.c.merchant_id == merchant_id,
            (merchant_keys.c.valid_until.is_(None)) | (merchant_keys.c.valid_until > end),
        )
        .values(valid_until=end)
    )
    conn.execute(
        insert(merchant_keys).values(
            merchant_id=merchant_id,
            key_id=kid,
            public_key=public_key,
            valid_from=new_valid_from,
            valid_until=None,
        )
    )
    return load(conn, merchant_id)


def set_status(conn: Connection, merchant_id: str, status: str) -> Merchant:
    load(conn, merchant_id)
    conn.execute(
        update(merchants).where(merchants.c.merchant_id == merchant_id).values(status=status)
    )
    return load(conn, merchant_id)


def set_terms(
    conn: Connection,
    merchant_id: str,
    fen_per_point: str,
    fee_bps: int,
    endpoint: str,
    now: datetime,
    net_debit_cap_fen: int | None = None,
    breakage_operator_bps: int | None = None,
) -> Merchant:
    """Empty `fen_per_point`/`endpoint`, fee_bps −1, and net_debit_cap_fen or
    breakage_operator_bps None keep the current values; net_debit_cap_fen NO_CAP (−1) removes
    the cap."""
    current = load(conn, merchant_id)
    check_terms(
        fen_per_point or None,
        None if fee_bps == -1 else fee_bps,
        net_debit_cap_fen,
        breakage_operator_bps,
    )
    if fen_per_point and parse_ratio(fen_per_point) != current.fen_per_point:
        conn.execute(
            insert(merchant_rates).values(
                merchant_id=merchant_id,
                version=current.rate_version + 1,
                fen_per_point=format_ratio(parse_ratio(fen_per_point)),
                effective_from=now,
            )
        )
    values: dict[str, object] = {}
    if fee_bps != -1:
        values["fee_bps"] = fee_bps
    if endpoint:
        values["endpoint"] = endpoint
    if net_debit_cap_fen is not None:
        values["net_debit_cap_fen"] = None if net_debit_cap_fen == NO_CAP else net_debit_cap_fen
    if breakage_operator_bps is not None:
        values["breakage_operator_bps"] = breakage_operator_bps
    if values:
        conn.execute(
            update(merchants).where(merchants.c.merchant_id == merchant_id).values(**values)
        )
    return load(conn, merchant_id)


def unsettled_net_debit(conn: Connection, merchant_id: str, at: datetime) -> int:
    """What the merchant owes the coalition at `at`, in fen, counting nothing already paid.

    As issuer: its clearing records of days no paid batch covers, plus its open authorizations
    (pending, capturing, or authorized with a hold not lapsed at `at`), plus the operator's
    share of its breakage in batches closed and not yet paid; less, as acquirer, what
    its records of those days will pay it (value − fee). Negative when it is owed more than it
    owes.

    Two queries: the runs of unpaid days (a handful: before the first paid batch, around a
    disputed one, after the last), then one aggregate over those day ranges of the period
    index. Asking "does a paid batch cover this record's day" record by record is a range
    anti-join over all history: a second a call at 300k records, growing for ever.
    """
    c, a = clearing_records.c, authorizations.c
    runs = conn.execute(_unpaid_runs(conn.dialect.name)).all()
    unpaid = or_(
        *(and_(c.settlement_period > after, c.settlement_period < before) for after, before in runs)
    )

    def cleared(party: ColumnElement[str], amount: ColumnElement[int]) -> ScalarSelect[int]:
        return (
            select(func.coalesce(func.sum(amount), 0))
            .where(party == merchant_id, unpaid)
            .scalar_subquery()
        )

    held = (
        select(func.coalesce(func.sum(a.value_fen), 0))
        .where(
            a.issuer_id == merchant_id,
            a.status.in_(OPEN_AUTHORIZATIONS),
            or_(a.status != "authorized", a.hold_expires_at.is_(None), a.hold_expires_at > at),
        )
        .scalar_subquery()
    )
    # The operator's share of its breakage, allocated in batches closed but not yet paid.
    sb, batch = settlement_breakage.c, settlement_batches.c
    breakage = (
        select(func.coalesce(func.sum(sb.operator_fen), 0))
        .select_from(settlement_breakage.join(settlement_batches, batch.batch_id == sb.batch_id))
        .where(sb.issuer_id == merchant_id, batch.status.not_in(SETTLED_BATCHES))
        .scalar_subquery()
    )
    owes = cleared(c.issuer_id, c.value_fen) + held + breakage
    owed = cleared(c.acquirer_id, c.value_fen - c.fee_fen)
    # PostgreSQL sums BIGINT into NUMERIC: int() of the integral Decimal is exact.
    return int(conn.execute(select(owes - owed)).scalar_one())


def _unpaid_runs(dialect: str) -> CompoundSelect:
    """The runs of day stamps no paid batch covers, as open intervals (after, before), only
    those holding at least one day; "" and "~" bound every "YYYY-MM-DD". Each paid batch is
    compared with the latest day any earlier paid batch covers (a running maximum), so batches
    of overlapping periods leave no false run."""
    b = settlement_batches.c
    paid = select(b.first_day, b.last_day).where(b.status.in_(SETTLED_BATCHES)).subquery()
    ordered = select(
        func.max(paid.c.last_day).over(order_by=paid.c.first_day, rows=(None, -1)).label("covered"),
        paid.c.first_day,
    ).subquery()
    covered, first = ordered.c.covered, ordered.c.first_day
    if dialect == "postgresql":
        day_after = func.to_char(cast(covered, Date) + 1, "YYYY-MM-DD")
    else:
        day_after = func.date(covered, "+1 day")
    return union_all(
        select(func.coalesce(covered, ""), first).where(or_(covered.is_(None), day_after < first)),
        select(func.coalesce(func.max(paid.c.last_day), ""), literal("~")),
    )


def check_net_debit_cap(conn: Connection, issuer_id: str, value_fen: int, now: datetime) -> None:
    """Refuses (FAILED_PRECONDITION NET_DEBIT_CAP_EXCEEDED) an authorization of `value_fen`
    that would take a capped issuer's unsettled net debit past its cap.

    A capped issuer's row is locked (PostgreSQL; SQLite serializes writers already) until the
    caller's transaction ends, so authorizations drawing on it are checked and recorded one at
    a time and never pass the cap together: the caller must insert the authorization in the
    same transaction. An uncapped issuer is not locked, so a cap set while authorizations are
    in flight does not hold back those already past this check.
    """
    cap_of = select(merchants.c.net_debit_cap_fen).where(merchants.c.merchant_id == issuer_id)
    if conn.execute(cap_of).scalar() is None:
        return
    # FOR NO KEY UPDATE: inserting keys or rates for the merchant (FOR KEY SHARE) need not wait.
    cap = conn.execute(cap_of.with_for_update(key_share=True)).scalar()
    if cap is None:  # removed while we waited for the lock
        return
    net = unsettled_net_debit(conn, issuer_id, now)
    if net + value_fen > cap:
        room = max(cap - net, 0)
        raise FailedPrecondition(
            "NET_DEBIT_CAP_EXCEEDED",
            f"issuer {issuer_id} has a net-debit cap of {cap} fen and an unsettled net debit of "
            f"{net} fen: this authorization of {value_fen} fen would take it to "
            f"{net + value_fen} fen. At most {room} fen more can be drawn on {issuer_id}'s "
            "points until its next settlement is paid; retry then, with a new request id",
            issuer_id=issuer_id,
            net_debit_cap_fen=str(cap),
            net_debit_fen=str(net),
            requested_fen=str(value_fen),
        )


def rate(conn: Connection, merchant_id: str, version: int) -> Fraction:
    value = conn.execute(
        select(merchant_rates.c.fen_per_point).where(
            merchant_rates.c.merchant_id == merchant_id, merchant_rates.c.version == version
        )
    ).scalar_one()
    return parse_ratio(value)
