"""The node as acquirer: spending other issuers' points here, through the exchange.

The POS asks this node; the node signs the command as this merchant, sends it to the exchange,
verifies the exchange's signed answer, and records the authorization and, once captured, the
receivable this merchant will be paid in settlement. Every step can be retried with the same
request id: the exchange answers a retry with its first answer, and recording is idempotent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Engine, insert, select, update

from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition.exchange.v1 import exchange_pb2_grpc
from coalition_kernel.db import run_in_transaction
from coalition_kernel.envelope import EXCHANGE_ID, Signer, StaticKeys, Verifier, open_answer
from coalition_kernel.errors import error_from_rpc
from coalition_kernel.rpc import Offload, insecure_or_secure_channel
from merchant_node.ledger.commands import check_id, check_request_id
from merchant_node.ledger.schema import cross_redemptions


class ExchangeLink:
    """Signed calls from this node to the exchange."""

    def __init__(
        self,
        endpoint: str,
        signer: Signer,
        exchange_key: Ed25519PublicKey,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.signer = signer
        self.verifier = Verifier(
            signer.signer_id, StaticKeys({EXCHANGE_ID: exchange_key}), clock=signer.clock
        )
        self.channel = insecure_or_secure_channel(endpoint, credentials)
        self.stub = exchange_pb2_grpc.ExchangeServiceStub(self.channel)
        self.timeout = timeout

    async def call(self, method: str, command, request_id: str, receipt_type):  # type: ignore[no-untyped-def]
        receipt, _ = await self.call_signed(method, command, request_id, receipt_type)
        return receipt

    async def call_signed(self, method: str, command, request_id: str, receipt_type):  # type: ignore[no-untyped-def]
        """The verified answer and the exchange's signed envelope of it, to keep as evidence."""
        request = self.signer.seal(command, audience=EXCHANGE_ID, request_id=request_id)
        request_type = getattr(xpb, f"{method}Request")
        try:
            response = await getattr(self.stub, method)(
                request_type(envelope=request), timeout=self.timeout
            )
        except grpc.aio.AioRpcError as err:
            raise error_from_rpc(err, "the exchange", "EXCHANGE") from err
        answer = open_answer(self.verifier, response.envelope, receipt_type, request, EXCHANGE_ID)
        return answer, response.envelope

    async def close(self) -> None:
        await self.channel.close()


class CrossRedemptions:
    def __init__(
        self, engine: Engine, link: ExchangeLink, offload: Offload, clock: Callable[[], datetime]
    ) -> None:
        self.engine = engine
        self.link = link
        self.offload = offload
        self.clock = clock

    async def _db(self, work: Callable[[Connection], object]) -> object:
        return await self.offload(run_in_transaction, self.engine, work)

    async def quote(self, issuer_id: str, points: int, amount_fen: int) -> xpb.QuoteReceipt:
        check_id("issuer_id", issuer_id)
        cmd = xpb.QuoteCommand(issuer_id=issuer_id)
        if points:
            cmd.points = points
        if amount_fen:
            cmd.amount_fen = amount_fen
        return await self.link.call("GetQuote", cmd, f"quote-{uuid.uuid4().hex}", xpb.QuoteReceipt)

    async def authorize(
        self,
        request_id: str,
        issuer_id: str,
        member_id: str,
        order_id: str,
        points: int,
        amount_fen: int,
        consent_code: str,
        quote_id: str,
        consent_max_points: int = 0,
        consent_order_id: str = "",
    ) -> xpb.AuthorizeReceipt:
        check_request_id(request_id)
        cmd = xpb.AuthorizeCommand(
            issuer_id=issuer_id,
            member_id=member_id,
            order_id=order_id,
            consent_code=consent_code,
            quote_id=quote_id,
            consent_max_points=consent_max_points,
            consent_order_id=consent_order_id,
        )
        if points:
            cmd.points = points
        if amount_fen:
            cmd.amount_fen = amount_fen
        receipt = await self.link.call("Authorize", cmd, request_id, xpb.AuthorizeReceipt)

        def record(conn: Connection) -> None:
            known = select(cross_redemptions.c.authorization_id).where(
                cross_redemptions.c.authorization_id == receipt.authorization_id
            )
            if conn.execute(known).first() is None:
                conn.execute(
                    insert(cross_redemptions).values(
                        authorization_id=receipt.authorization_id,
                        issuer_id=receipt.issuer_id,
                        member_id=receipt.member_id,
                        order_id=order_id,
                        points=receipt.points,
                        value_fen=receipt.value_fen,
                        fee_fen=receipt.fee_fen,
                        rate_version=receipt.rate_version,
                        status="authorized",
                        authorized_at=self.clock(),
                        hold_expires_at=receipt.hold_expires_at.ToDatetime(tzinfo=UTC),
                    )
                )

        await self._db(record)
        return receipt

    async def capture(self, request_id: str, authorization_id: str) -> xpb.ClearingRecord:
        check_request_id(request_id)
        check_id("authorization_id", authorization_id)
        receipt = await self.link.call(
            "Capture",
            xpb.CaptureCommand(authorization_id=authorization_id),
            request_id,
            xpb.CaptureReceipt,
        )
        record = receipt.record
        await self._db(lambda conn: record_receivable(conn, record, receipt.SerializeToString()))
        return record

    async def void(self, request_id: str, authorization_id: str) -> xpb.VoidReceipt:
        check_request_id(request_id)
        check_id("authorization_id", authorization_id)
        receipt = await self.link.call(
            "Void", xpb.VoidCommand(authorization_id=authorization_id), request_id, xpb.VoidReceipt
        )

        def record(conn: Connection) -> None:
            conn.execute(
                update(cross_redemptions)
                .where(
                    cross_redemptions.c.authorization_id == authorization_id,
                    cross_redemptions.c.status == "authorized",
                )
                .values(status="voided")
            )

        await self._db(record)
        return receipt

    async def portfolio(
        self, member_id: str, consents: dict[str, str] | None = None
    ) -> xpb.PortfolioReceipt:
        """The member's balances at the issuers whose portfolio codes she gave (issuer → code);
        the exchange refuses a portfolio without any (CONSENT_REQUIRED)."""
        check_id("member_id", member_id)
        command = xpb.PortfolioCommand(member_id=member_id)
        for issuer_id, code in (consents or {}).items():
            command.consents.add(issuer_id=issuer_id, consent_code=code)
        return await self.link.call(
            "GetPortfolio",
            command,
            f"pf-{uuid.uuid4().hex}",
            xpb.PortfolioReceipt,
        )


def record_receivable(
    conn: Connection, record: xpb.ClearingRecord, exchange_receipt: bytes
) -> None:
    """This merchant's receivable for a captured clearing record; recording it twice is a no-op."""
    values = dict(
        status="captured",
        captured_at=record.captured_at.ToDatetime(tzinfo=UTC),
        clearing_id=record.clearing_id,
        settlement_period=record.settlement_period,
        exchange_receipt=exchange_receipt,
    )
    row = conn.execute(
        select(cross_redemptions.c.status).where(
            cross_redemptions.c.authorization_id == record.authorization_id
        )
    ).first()
    if row is None:
        conn.execute(
            insert(cross_redemptions).values(
                authorization_id=record.authorization_id,
                issuer_id=record.issuer_id,
                member_id=record.member_id,
                order_id=record.order_id,
                points=record.points,
                value_fen=record.value_fen,
                fee_fen=record.fee_fen,
                rate_version=record.rate_version,
                authorized_at=record.authorized_at.ToDatetime(tzinfo=UTC),
                hold_expires_at=record.captured_at.ToDatetime(tzinfo=UTC),
                **values,
            )
        )
    elif row.status != "captured":
        conn.execute(
            update(cross_redemptions)
            .where(cross_redemptions.c.authorization_id == record.authorization_id)
            .values(**values)
        )
