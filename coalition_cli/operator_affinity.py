"""`coalition operator affinity`: the district's shared customers, flows between shops and
suggested partnerships (OperatorService.GetAffinity), as tables or JSON."""

from __future__ import annotations

from typing import Any

from coalition.exchange.v1 import exchange_pb2 as xpb

KINDS = {
    xpb.PARTNERSHIP_KIND_JOINT_OFFER: "joint_offer",
    xpb.PARTNERSHIP_KIND_RELATED_PRODUCT_OFFER: "related_product_offer",
}


def as_dict(r: xpb.AffinityReceipt) -> dict[str, Any]:
    """The receipt as plain JSON values (int64 stay numbers)."""
    return {
        "window_start": r.window_start.ToDatetime().isoformat() + "Z",
        "window_end": r.window_end.ToDatetime().isoformat() + "Z",
        "min_members": r.min_members,
        "suppressed_flows": r.suppressed_flows,
        "suggestions": [
            {
                "kind": KINDS.get(s.kind, "unspecified"),
                "offering_merchant_id": s.offering_merchant_id,
                "audience_merchant_id": s.audience_merchant_id,
                "score_bp": s.score_bp,
                "members": s.members,
            }
            for s in r.suggestions
        ],
        "flows": [
            {
                "issuer_id": f.issuer_id,
                "acquirer_id": f.acquirer_id,
                "members": f.members,
                "redemptions": f.redemptions,
                "points": f.points,
                "value_fen": f.value_fen,
                "lift_bp": f.lift_bp,
            }
            for f in r.flows
        ],
        "shared": [
            {
                "first_merchant_id": s.first_merchant_id,
                "second_merchant_id": s.second_merchant_id,
                "members": s.members,
            }
            for s in r.shared
        ],
    }


def _lift(bp: int) -> str:
    return f"{bp / 10_000:.2f}x"


def _table(title: str, heads: list[str], rows: list[list[str]]) -> list[str]:
    if not rows:
        return [title, "  (none)"]
    widths = [max(len(c) for c in col) for col in zip(heads, *rows, strict=False)]
    line = "  ".join("{:<%d}" % w for w in widths)  # noqa: UP031 (widths differ per column)
    return [title, "  " + line.format(*heads).rstrip()] + [
        "  " + line.format(*row).rstrip() for row in rows
    ]


def render(r: xpb.AffinityReceipt) -> list[str]:
    d = as_dict(r)
    out = [
        f"window {d['window_start']} to {d['window_end']}; flows of fewer than "
        f"{r.min_members} members left out: {r.suppressed_flows}",
        "",
    ]
    out += _table(
        "suggested partnerships (score: lift, 1.00x = as independent shopping predicts)",
        ["offer", "by", "to members of", "score", "members"],
        [
            [
                "joint" if s.kind == xpb.PARTNERSHIP_KIND_JOINT_OFFER else "related products",
                s.offering_merchant_id,
                s.audience_merchant_id,
                _lift(s.score_bp),
                str(s.members),
            ]
            for s in r.suggestions
        ],
    )
    out += [""] + _table(
        "flows (members of the issuer who spent at the acquirer)",
        ["issuer", "acquirer", "members", "redemptions", "points", "value_fen", "lift"],
        [
            [
                f.issuer_id,
                f.acquirer_id,
                str(f.members),
                str(f.redemptions),
                str(f.points),
                str(f.value_fen),
                _lift(f.lift_bp),
            ]
            for f in r.flows
        ],
    )
    out += [""] + _table(
        "shared customers",
        ["shop", "shop", "members"],
        [[s.first_merchant_id, s.second_merchant_id, str(s.members)] for s in r.shared],
    )
    return out
