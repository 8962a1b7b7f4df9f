"""Lotteries at the node: created with a commitment, drawn with the committed seed (recipe in
lottery.py), revealed after they close. Each draw is one transaction: points held and spent,
the roll, the prize's stock and the budget checked and taken, the coupon issued."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select, update

from coalition_kernel.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from merchant_node.ledger.commands import check_id
from merchant_node.ledger.store import Context
from merchant_node.mall import lottery, points
from merchant_node.mall.catalog import Item
from merchant_node.mall.orders import issue_coupons
from merchant_node.mall.schema import lotteries, lottery_draws, lottery_prizes


@dataclass(frozen=True)
class PrizeView:
    prize_id: str
    title: str
    weight: int
    stock: int
    stock_left: int
    value_fen: int
    valid_days: int


@dataclass(frozen=True)
class LotteryView:
    lottery_id: str
    title: str
    price_points: int
    total_weight: int
    prizes: list[PrizeView]
    budget_fen: int
    awarded_fen: int
    commitment: str
    seed: str  # empty until revealed
    opens_at: datetime
    closes_at: datetime


@dataclass(frozen=True)
class DrawResult:
    draw_id: str
    roll: int
    drawn_prize_id: str
    awarded: bool
    coupon_code: str
    points_spent: int


def create(conn: Connection, now: datetime, spec: LotteryView, seed_hex: str) -> LotteryView:
    check_id("lottery_id", spec.lottery_id)
    if not spec.title.strip() or spec.price_points <= 0 or spec.budget_fen < 0:
        raise InvalidArgument("BAD_LOTTERY", "title, a positive price and a budget are required")
    if spec.opens_at <= now:
        raise InvalidArgument(
            "LOTTERY_ALREADY_OPEN", "opens_at must be in the future: commit before any draw"
        )
    if spec.closes_at <= spec.opens_at:
        raise InvalidArgument("BAD_LOTTERY", "closes_at must be after opens_at")
    odds = [lottery.Odds(p.prize_id, p.weight) for p in spec.prizes]
    lottery.check_odds(odds, spec.total_weight)
    for p in spec.prizes:
        check_id("prize_id", p.prize_id)
        if p.stock < 0 or p.value_fen < 0 or not 1 <= p.valid_days <= 3650:
            raise InvalidArgument("BAD_LOTTERY", f"prize {p.prize_id}: stock, value, valid_days")
    seed = lottery.parse_seed(seed_hex) if seed_hex else secrets.token_bytes(32)
    if conn.execute(
        select(lotteries.c.lottery_id).where(lotteries.c.lottery_id == spec.lottery_id)
    ).first():
        raise AlreadyExists("LOTTERY_EXISTS", f"lottery {spec.lottery_id} already exists")
    conn.execute(
        lotteries.insert().values(
            lottery_id=spec.lottery_id,
            title=spec.title,
            price_points=spec.price_points,
            total_weight=spec.total_weight,
            budget_fen=spec.budget_fen,
            awarded_fen=0,
            commitment=lottery.commitment(seed),
            seed=seed.hex(),
            opens_at=spec.opens_at,
            closes_at=spec.closes_at,
            created_at=now,
        )
    )
    conn.execute(
        lottery_prizes.insert(),
        [
            dict(
                lottery_id=spec.lottery_id,
                position=i,
                prize_id=p.prize_id,
                title=p.title,
                weight=p.weight,
                stock=p.stock,
                stock_left=p.stock,
                value_fen=p.value_fen,
                valid_days=p.valid_days,
            )
            for i, p in enumerate(spec.prizes)
        ],
    )
    return get(conn, spec.lottery_id)


def get(conn: Connection, lottery_id: str, *, lock: bool = False):  # type: ignore[no-untyped-def]
    stmt = select(lotteries).where(lotteries.c.lottery_id == lottery_id)
    row = conn.execute(stmt.with_for_update() if lock else stmt).first()
    if row is None:
        raise NotFound("LOTTERY_NOT_FOUND", f"no lottery {lottery_id}")
    prizes = conn.execute(
        select(lottery_prizes)
        .where(lottery_prizes.c.lottery_id == lottery_id)
        .order_by(lottery_prizes.c.position)
    ).all()
    return LotteryView(
        row.lottery_id,
        row.title,
        row.price_points,
        row.total_weight,
        [
            PrizeView(
                p.prize_id, p.title, p.weight, p.stock, p.stock_left, p.value_fen, p.valid_days
            )
            for p in prizes
        ],
        row.budget_fen,
        row.awarded_fen,
        row.commitment,
        row.seed if row.revealed_at is not None else "",
        row.opens_at,
        row.closes_at,
    )


def _secret_seed(conn: Connection, lottery_id: str) -> bytes:
    row = conn.execute(
        select(lotteries.c.seed, lotteries.c.commitment).where(lotteries.c.lottery_id == lottery_id)
    ).one()
    seed = bytes.fromhex(row.seed)
    lottery.check_reveal(seed, row.commitment)  # a seed changed after commitment draws nothing
    return seed


def draw(
    conn: Connection, ctx: Context, member_id: str, lottery_id: str, request_id: str
) -> DrawResult:
    spec = get(conn, lottery_id)
    if not spec.opens_at <= ctx.now < spec.closes_at:
        raise FailedPrecondition("LOTTERY_CLOSED", f"lottery {lottery_id} is not open now")
    seed = _secret_seed(conn, lottery_id)
    draw_id = lottery.draw_id(lottery_id, member_id, request_id)
    hold_ref = "draw-" + hashlib.sha256(draw_id.encode()).hexdigest()[:40]
    points.hold_points(conn, ctx, hold_ref, member_id, spec.price_points, 60)
    points.spend_hold(conn, ctx, hold_ref)
    roll = lottery.roll(seed, draw_id, spec.total_weight)
    drawn = lottery.prize_for(roll, [lottery.Odds(p.prize_id, p.weight) for p in spec.prizes])
    code = ""
    if drawn is not None:
        code = _award(conn, ctx, spec, drawn, member_id, draw_id)
    conn.execute(
        lottery_draws.insert().values(
            draw_id=draw_id,
            lottery_id=lottery_id,
            member_id=member_id,
            roll=roll,
            drawn_prize_id=drawn,
            awarded=bool(code),
            coupon_code=code or None,
            points=spec.price_points,
            hold_ref=hold_ref,
            at=ctx.now,
        )
    )
    return DrawResult(draw_id, roll, drawn or "", bool(code), code, spec.price_points)


def _award(
    conn: Connection, ctx: Context, spec: LotteryView, prize_id: str, member_id: str, draw_id: str
) -> str:
    """Takes the prize off its stock and its value off the budget, or nothing (stock-out rule)."""
    prize = next(p for p in spec.prizes if p.prize_id == prize_id)
    budget_left = lotteries.c.budget_fen - lotteries.c.awarded_fen
    took_budget = conn.execute(
        update(lotteries)
        .where(lotteries.c.lottery_id == spec.lottery_id, budget_left >= prize.value_fen)
        .values(awarded_fen=lotteries.c.awarded_fen + prize.value_fen)
    ).rowcount
    if not took_budget:
        return ""
    took_stock = conn.execute(
        update(lottery_prizes)
        .where(
            lottery_prizes.c.lottery_id == spec.lottery_id,
            lottery_prizes.c.prize_id == prize_id,
            lottery_prizes.c.stock_left > 0,
        )
        .values(stock_left=lottery_prizes.c.stock_left - 1)
    ).rowcount
    if not took_stock:  # give the budget back: the draw wins nothing
        conn.execute(
            update(lotteries)
            .where(lotteries.c.lottery_id == spec.lottery_id)
            .values(awarded_fen=lotteries.c.awarded_fen - prize.value_fen)
        )
        return ""
    voucher = Item(
        item_id=f"prize:{prize_id}"[:64],
        kind="coupon",
        title=prize.title,
        price_points=0,
        stock_total=0,
        coupon_value_fen=prize.value_fen,
        coupon_valid_days=prize.valid_days,
    )
    return issue_coupons(conn, ctx, member_id, voucher, 1, draw_id=draw_id)[0]


def reveal(conn: Connection, now: datetime, lottery_id: str, seed_hex: str) -> LotteryView:
    row = conn.execute(
        select(lotteries).where(lotteries.c.lottery_id == lottery_id).with_for_update()
    ).first()
    if row is None:
        raise NotFound("LOTTERY_NOT_FOUND", f"no lottery {lottery_id}")
    if now < row.closes_at:
        raise FailedPrecondition(
            "LOTTERY_STILL_OPEN", f"the seed is revealed after {row.closes_at.isoformat()}"
        )
    seed = lottery.parse_seed(seed_hex) if seed_hex else bytes.fromhex(row.seed)
    lottery.check_reveal(seed, row.commitment)
    if row.revealed_at is None:
        conn.execute(
            update(lotteries)
            .where(lotteries.c.lottery_id == lottery_id)
            .values(seed=seed.hex(), revealed_at=now)
        )
    return get(conn, lottery_id)


def draws_of(conn: Connection, lottery_id: str) -> list:  # type: ignore[type-arg]
    return list(
        conn.execute(
            select(lottery_draws)
            .where(lottery_draws.c.lottery_id == lottery_id)
            .order_by(lottery_draws.c.at, lottery_draws.c.draw_id)
        ).all()
    )


def points_taken(conn: Connection) -> int:
    return int(
        conn.execute(select(func.coalesce(func.sum(lottery_draws.c.points), 0))).scalar_one()
    )
