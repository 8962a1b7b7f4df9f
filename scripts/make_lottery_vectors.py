"""Writes docs/test-vectors/lottery-v1.json: draws of the lottery-v1 recipe (merchant_node/mall/
lottery.py, docs/mall.md) from fixed seeds, for partners and members to check an implementation
against. tests/mall/test_lottery.py checks the committed file byte for byte.

python scripts/make_lottery_vectors.py           # write the file
python scripts/make_lottery_vectors.py --check   # exit 1 if the file differs
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from merchant_node.mall import lottery

PATH = pathlib.Path(__file__).resolve().parent.parent / "docs" / "test-vectors" / "lottery-v1.json"

CASES = [
    # A lottery as a merchant publishes it: odds out of 10,000, most draws win nothing.
    (
        "a" * 64,
        10_000,
        [("tea-voucher", 3000), ("mug", 500), ("gift-box", 50)],
        [f"spring-2026/m-{n:03d}/req-{n}" for n in range(8)],
    ),
    # A total weight just above 2^63: half the 64-bit blocks are rejected, so these vectors
    # exercise the rejection step (block 1, 2, ... of the same draw).
    (
        bytes(range(32)).hex(),
        (1 << 63) + 1,
        [("half", 1 << 62)],
        [f"edge/m-{n}/r-{n}" for n in range(8)],
    ),
]


def render() -> str:
    cases = []
    for seed_hex, total, prizes, draw_ids in CASES:
        seed = bytes.fromhex(seed_hex)
        odds = [lottery.Odds(p, w) for p, w in prizes]
        draws = []
        for draw in draw_ids:
            roll = lottery.roll(seed, draw, total)
            draws.append(
                {
                    "draw_id": draw,
                    "roll": str(roll),
                    "prize_id": lottery.prize_for(roll, odds) or "",
                }
            )
        cases.append(
            {
                "seed": seed_hex,
                "commitment": lottery.commitment(seed),
                "total_weight": str(total),
                "prizes": [{"prize_id": p, "weight": str(w)} for p, w in prizes],
                "draws": draws,
            }
        )
    doc = {
        "recipe": lottery.RECIPE,
        "description": (
            "commitment = hex(SHA-256(seed)); block_i = HMAC-SHA256(seed, utf8(draw_id) || 0x00 || "
            "uint32_be(i)); x = uint64_be(block_i[0:8]); first x < 2^64 - (2^64 mod total_weight) "
            "gives roll = x mod total_weight; prize = first p with roll < w_1+...+w_p, else none. "
            "Integers are decimal strings."
        ),
        "cases": cases,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    text = render()
    if parser.parse_args().check:
        sys.exit(0 if PATH.read_text() == text else 1)
    PATH.write_text(text)


if __name__ == "__main__":
    main()
