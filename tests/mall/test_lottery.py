"""The provably fair lottery: published vectors, odds over 100,000 draws, stock and budget,
recomputation from the revealed seed, and a changed seed detected."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa
from scipy.stats import chi2

from coalition_kernel.errors import CoalitionError
from merchant_node.mall import lottery
from merchant_node.mall.draws import LotteryView, PrizeView
from merchant_node.mall.schema import lotteries, lottery_prizes
from scripts.make_lottery_vectors import PATH, render
from tests.mall.support import available, member_with_points

SEED = bytes(range(100, 132))


def recompute(
    seed_hex: str, draw_id: str, total: int, prizes: list[tuple[str, int]]
) -> tuple[int, str]:
    """A member's offline check, from docs/mall.md alone: hashlib and hmac, nothing of ours."""
    seed = bytes.fromhex(seed_hex)
    limit = 2**64 - (2**64 % total)
    i = 0
    while True:
        block = hmac.new(
            seed, draw_id.encode() + b"\x00" + i.to_bytes(4, "big"), hashlib.sha256
        ).digest()
        x = int.from_bytes(block[:8], "big")
        if x < limit:
            break
        i += 1
    roll, upper = x % total, 0
    for prize_id, weight in prizes:
        upper += weight
        if roll < upper:
            return roll, prize_id
    return roll, ""


def test_published_vectors_are_what_the_recipe_computes_byte_for_byte():
    assert PATH.read_bytes() == render().encode()
    doc = json.loads(PATH.read_text())
    rejected = 0
    for case in doc["cases"]:
        assert case["commitment"] == hashlib.sha256(bytes.fromhex(case["seed"])).hexdigest()
        prizes = [(p["prize_id"], int(p["weight"])) for p in case["prizes"]]
        for d in case["draws"]:
            roll, prize = recompute(case["seed"], d["draw_id"], int(case["total_weight"]), prizes)
            assert (str(roll), prize) == (d["roll"], d["prize_id"])
            first = hmac.new(
                bytes.fromhex(case["seed"]),
                d["draw_id"].encode() + b"\x00" + bytes(4),
                hashlib.sha256,
            ).digest()
            total = int(case["total_weight"])
            rejected += int.from_bytes(first[:8], "big") >= 2**64 - (2**64 % total)
    assert rejected > 0  # the vectors exercise the rejection step


def test_over_100000_draws_prize_counts_fit_the_published_odds():
    total = 10_000
    prizes = [("voucher", 3000), ("mug", 500), ("gift", 50)]
    odds = [lottery.Odds(p, w) for p, w in prizes]
    n = 100_000
    counts = Counter(
        lottery.prize_for(lottery.roll(SEED, f"fit/m-{k % 997}/r-{k}", total), odds) or "none"
        for k in range(n)
    )
    expected = {p: n * w / total for p, w in prizes}
    expected["none"] = n * (total - sum(w for _, w in prizes)) / total
    statistic = sum((counts[k] - e) ** 2 / e for k, e in expected.items())
    critical = chi2.ppf(0.999, df=len(expected) - 1)  # 16.27 for 3 degrees of freedom
    assert statistic < critical, (statistic, counts)


def _spec(clock, **kw) -> LotteryView:  # type: ignore[no-untyped-def]
    base = dict(
        lottery_id="spring",
        title="Spring draw",
        price_points=10,
        total_weight=100,
        prizes=[
            PrizeView("voucher", "¥5 voucher", 30, 5, 5, 500, 30),
            PrizeView("mug", "Mug", 20, 100, 100, 2000, 30),
        ],
        budget_fen=12_000,
        awarded_fen=0,
        commitment="",
        seed="",
        opens_at=clock.now + timedelta(hours=1),
        closes_at=clock.now + timedelta(days=7),
    )
    base.update(kw)
    return LotteryView(**base)  # type: ignore[arg-type]


def test_draws_respect_stock_and_budget_and_recompute_from_the_revealed_seed(ledger, mall, clock):
    with pytest.raises(CoalitionError) as err:
        mall.create_lottery("c0", _spec(clock, opens_at=clock.now), "")
    assert err.value.reason == "LOTTERY_ALREADY_OPEN"  # commit before the period opens
    made = mall.create_lottery("c1", _spec(clock), SEED.hex())
    assert made.commitment == hashlib.sha256(SEED).hexdigest() and made.seed == ""
    members = [member_with_points(ledger, f"m{n}", 400) for n in range(5)]
    with pytest.raises(CoalitionError) as err:
        mall.draw("early", members[0], "spring")
    assert err.value.reason == "LOTTERY_CLOSED"
    clock.advance(hours=2)
    results = [mall.draw(f"d-{k}", m, "spring") for k in range(40) for m in members]
    assert mall.draw("d-0", members[0], "spring") == results[0]  # a retry: the first answer
    for m in members:
        assert available(ledger, m) == 0  # 40 draws x 10 points each
    state = mall.lottery("spring")
    awarded = Counter(r.drawn_prize_id for r in results if r.awarded)
    assert awarded["voucher"] <= 5 and state.prizes[0].stock_left == 5 - awarded["voucher"]
    assert state.awarded_fen == 500 * awarded["voucher"] + 2000 * awarded["mug"] <= 12_000
    # The stock-out rule was exercised: drawn but not awarded.
    assert any(r.drawn_prize_id and not r.awarded for r in results)
    with pytest.raises(CoalitionError) as err:
        mall.reveal("r0", "spring", "")
    assert err.value.reason == "LOTTERY_STILL_OPEN"
    clock.advance(days=7)
    with pytest.raises(CoalitionError) as err:
        mall.reveal("r1", "spring", bytes(32).hex())  # another seed than the one committed to
    assert err.value.reason == "SEED_MISMATCH"
    shown = mall.reveal("r2", "spring", SEED.hex())
    assert shown.seed == SEED.hex()
    prizes = [(p.prize_id, p.weight) for p in shown.prizes]
    for r in results:
        assert recompute(shown.seed, r.draw_id, shown.total_weight, prizes) == (
            r.roll,
            r.drawn_prize_id,
        )
    coupons = [c for m in members for c in mall.coupons_of(m)]
    assert len(coupons) == sum(awarded.values())
    assert ledger.audit() == []


def test_a_seed_changed_after_commitment_is_detected_and_draws_nothing(ledger, mall, clock):
    mall.create_lottery("c1", _spec(clock), SEED.hex())
    member_with_points(ledger, "m1", 100)
    clock.advance(hours=2)
    with ledger.engine.begin() as conn:  # the merchant swaps its seed in the database
        conn.execute(sa.update(lotteries).values(seed=bytes(32).hex()))
    with pytest.raises(CoalitionError) as err:
        mall.draw("d1", "m1", "spring")
    assert err.value.reason == "SEED_MISMATCH"
    assert available(ledger, "m1") == 100
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.select(lottery_prizes.c.stock_left)).scalars().all() == [5, 100]


def test_concurrent_draws_never_exceed_prize_stock_or_budget(db_url, ledger, mall, clock):
    import threading

    if not db_url.startswith("postgresql"):
        pytest.skip("concurrency is shown on PostgreSQL (SQLite serializes writers)")
    tight = [
        PrizeView("voucher", "¥5 voucher", 40, 3, 3, 500, 30),
        PrizeView("mug", "Mug", 40, 50, 50, 2000, 30),
    ]
    mall.create_lottery("c1", _spec(clock, prizes=tight, budget_fen=7000), SEED.hex())
    members = [member_with_points(ledger, f"m{n}", 250) for n in range(8)]
    clock.advance(hours=2)
    results = []

    def drawer(member: str) -> None:
        for k in range(25):
            results.append(mall.draw(f"d-{k}", member, "spring"))

    threads = [threading.Thread(target=drawer, args=(m,)) for m in members]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state = mall.lottery("spring")
    won = Counter(r.drawn_prize_id for r in results if r.awarded)
    assert len(results) == 200 and won["voucher"] <= 3
    assert state.awarded_fen == 500 * won["voucher"] + 2000 * won["mug"] <= 7000
    assert state.prizes[0].stock_left == 3 - won["voucher"]
    assert all(available(ledger, m) == 0 for m in members) and ledger.audit() == []
