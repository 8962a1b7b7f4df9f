"""A merchant node's signed statements of a settlement period: what it booked, as
reconciliation needs it, and what expired there, as breakage allocation needs it.

The exchange asks the node (IssuerService GetStatement) for what it booked in the period, as
issuer and as acquirer, page after page, and (GetBreakage) for the points that expired in it.
Each call travels like any call to an issuer: the command signed by the exchange, the answer
verified as the node's (signer = that merchant, bound to the command by its digest) and both
written to the audit log, so a disputed batch can be decided from what the node itself signed.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf.message import Message

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition.issuer.v1 import issuer_pb2 as ipb
from coalition_kernel.errors import Unavailable
from exchange.registry import Merchant
from merchant_node.ledger.commands import check_period
from settlement.obligations import StatedBreakage
from settlement.reconcile import NodeStatement, PostedHold, Receivable

# A signed call to a node and its verified answer: `Redemptions._ask`'s shape
# (merchant, IssuerService method, command, request id) -> (receipt, answer envelope).
Ask = Callable[[Merchant, str, Message, str], Awaitable[tuple[Any, SignedEnvelope]]]


async def fetch_statement(
    ask: Ask, merchant: Merchant, period: str, *, limit: int = 0
) -> NodeStatement:
    """Everything `merchant`'s node booked for `period` (a day "YYYY-MM-DD"), both sides, every
    page (`limit` entries each; 0: the node's default). A page that does not answer what was
    asked, or does not move forward, is ISSUER_ANSWER_INVALID (UNAVAILABLE)."""
    check_period("settlement_period", period)
    holds = await _side(ask, merchant, period, ipb.STATEMENT_SIDE_ISSUER, limit)
    receivables = await _side(ask, merchant, period, ipb.STATEMENT_SIDE_ACQUIRER, limit)
    return NodeStatement(
        merchant.merchant_id,
        posted_holds=tuple(PostedHold(e.authorization_id, e.points) for e in holds),
        receivables=tuple(
            Receivable(e.authorization_id, e.issuer_id, e.points, e.value_fen, e.fee_fen)
            for e in receivables
        ),
    )


async def _side(
    ask: Ask, merchant: Merchant, period: str, side: ipb.StatementSide, limit: int
) -> list[ipb.StatementEntry]:
    entries: list[ipb.StatementEntry] = []
    after = ""
    while True:
        command = ipb.StatementCommand(
            settlement_period=period,
            side=side,
            after_id=after,
            limit=limit,
        )
        receipt, _ = await ask(merchant, "GetStatement", command, f"st-{uuid.uuid4().hex}")
        _check_page(merchant.merchant_id, receipt, period, side, after)
        entries.extend(receipt.entries)
        if not receipt.next_after_id:
            return entries
        after = receipt.next_after_id


def _check_page(
    merchant_id: str,
    receipt: ipb.StatementReceipt,
    period: str,
    side: ipb.StatementSide,
    after: str,
) -> None:
    """A page must answer the period and side asked, list ids in strictly increasing order
    after the cursor, and, if another page follows, end where the next begins: so no entry is
    read twice across pages and every page moves the cursor forward."""
    ids = [after, *(e.authorization_id for e in receipt.entries)]
    ordered = all(a < b for a, b in zip(ids, ids[1:], strict=False))
    follows = not receipt.next_after_id or (len(ids) > 1 and receipt.next_after_id == ids[-1])
    if receipt.settlement_period != period or receipt.side != side or not ordered or not follows:
        raise Unavailable(
            "ISSUER_ANSWER_INVALID",
            f"{merchant_id}'s statement page for {period} is not the page asked for",
        )


async def fetch_breakage(ask: Ask, merchant: Merchant, period: str) -> StatedBreakage:
    """The points that expired at `merchant`'s node in `period` (a day "YYYY-MM-DD") and their
    value, with the node's signed receipt. An answer for another period, or with a line that
    is not a positive number of points worth 0 fen or more, or one rate version twice, is
    ISSUER_ANSWER_INVALID (UNAVAILABLE)."""
    check_period("settlement_period", period)
    command = ipb.BreakageCommand(settlement_period=period)
    receipt, answer = await ask(merchant, "GetBreakage", command, f"br-{uuid.uuid4().hex}")
    lines = list(receipt.lines)
    versions = [line.rate_version for line in lines]
    sound = all(line.points > 0 and line.value_fen >= 0 for line in lines)
    if receipt.settlement_period != period or not sound or len(set(versions)) != len(versions):
        raise Unavailable(
            "ISSUER_ANSWER_INVALID",
            f"{merchant.merchant_id}'s breakage for {period} is not an answer to what was asked",
        )
    return StatedBreakage(
        merchant.merchant_id,
        period,
        sum(line.points for line in lines),
        sum(line.value_fen for line in lines),
        answer.SerializeToString(),
    )
