"""The lottery's recipe ("lottery-v1"): commitment, draw and stock-out rule. Plain Python.

Anyone can recompute a draw offline from the revealed seed with only hashlib and hmac:

1. The merchant commits before the draw period: commitment = hex(SHA-256(seed)), seed being
   32 secret random bytes (published as 64 lower-case hex characters at the reveal).
2. A draw's identity is draw_id = lottery_id + "/" + member_id + "/" + request_id (UTF-8): the
   member's own request id, so the node cannot pick which draw a member gets.
3. For i = 0, 1, 2, …: block_i = HMAC-SHA256(key=seed, msg=draw_id_bytes || 0x00 || i as 4
   bytes big-endian); x = the first 8 bytes of block_i as an unsigned big-endian integer. The
   first x < limit = 2^64 - (2^64 mod total_weight) gives roll = x mod total_weight (rejection
   sampling: every roll in [0, total_weight) is exactly equally likely).
4. Prizes in their published order with weights w_1…w_k (Σw ≤ total_weight): the roll draws
   prize j if w_1+…+w_(j-1) ≤ roll < w_1+…+w_j; a roll ≥ Σw draws no prize.
5. Stock-out rule: a drawn prize with no stock left, or whose value would take the prizes
   awarded past the budget, is not awarded (the draw wins nothing); the points are spent anyway.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from coalition_kernel.errors import FailedPrecondition, InvalidArgument

RECIPE = "lottery-v1"
_TWO64 = 1 << 64


@dataclass(frozen=True)
class Odds:
    prize_id: str
    weight: int


def commitment(seed: bytes) -> str:
    return hashlib.sha256(seed).hexdigest()


def parse_seed(seed_hex: str) -> bytes:
    try:
        seed = bytes.fromhex(seed_hex)
    except ValueError as exc:
        raise InvalidArgument("BAD_SEED", "the seed is 64 hex characters (32 bytes)") from exc
    if len(seed) != 32:
        raise InvalidArgument("BAD_SEED", "the seed is 64 hex characters (32 bytes)")
    return seed


def check_reveal(seed: bytes, committed: str) -> None:
    """A seed that does not hash to the commitment was changed after it: refused."""
    if not hmac.compare_digest(commitment(seed), committed):
        raise FailedPrecondition(
            "SEED_MISMATCH",
            "SHA-256 of this seed is not the lottery's commitment: the seed was changed",
        )


def draw_id(lottery_id: str, member_id: str, request_id: str) -> str:
    return f"{lottery_id}/{member_id}/{request_id}"


def roll(seed: bytes, draw: str, total_weight: int) -> int:
    """The uniform integer in [0, total_weight) of step 3."""
    if not 0 < total_weight < _TWO64:
        raise InvalidArgument("BAD_WEIGHT", "total_weight must be 1 to 2^64-1")
    limit = _TWO64 - (_TWO64 % total_weight)
    message = draw.encode()
    i = 0
    while True:
        block = hmac.new(seed, message + b"\x00" + i.to_bytes(4, "big"), hashlib.sha256).digest()
        x = int.from_bytes(block[:8], "big")
        if x < limit:
            return x % total_weight
        i += 1


def prize_for(roll_: int, odds: Sequence[Odds]) -> str | None:
    """Step 4: the prize the roll points to, or None."""
    upper = 0
    for o in odds:
        upper += o.weight
        if roll_ < upper:
            return o.prize_id
    return None


def check_odds(odds: Sequence[Odds], total_weight: int) -> None:
    if not odds:
        raise InvalidArgument("BAD_LOTTERY", "a lottery has at least one prize")
    if any(o.weight <= 0 for o in odds) or sum(o.weight for o in odds) > total_weight:
        raise InvalidArgument(
            "BAD_LOTTERY", "prize weights are positive and sum to at most total_weight"
        )
    if len({o.prize_id for o in odds}) != len(odds):
        raise InvalidArgument("BAD_LOTTERY", "prize ids are distinct")
