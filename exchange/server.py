"""The exchange's gRPC entrypoints: unwrap the envelope, run it through `Inbound`, wrap the
answer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition_kernel.db import run_in_transaction
from coalition_kernel.envelope import OPERATOR_ID, Signer, Verifier
from coalition_kernel.errors import InvalidArgument, PermissionDenied
from coalition_kernel.group_commit import GroupCommit
from coalition_kernel.rpc import Offload, Server, generic_handler
from coalition_kernel.telemetry import register_figures
from exchange import audit
from exchange.figures import ExchangeFigures
from exchange.inbound import Inbound
from exchange.operator import Operator
from exchange.proofs import SettlementProofs
from exchange.redemption import Redemptions
from exchange.refusals import Limits as RefusalLimits

EXCHANGE_SERVICE = xpb.DESCRIPTOR.services_by_name["ExchangeService"]
OPERATOR_SERVICE = xpb.DESCRIPTOR.services_by_name["OperatorService"]


def _rpc(inbound: Inbound, response_type, payload_type, use_case, *, sender=None, identity=None):  # type: ignore[no-untyped-def]
    async def handle(request, context):  # type: ignore[no-untyped-def]
        proven = identity(context) if identity else None
        if proven is not None and request.envelope.signer_id != proven:
            raise PermissionDenied(
                "IDENTITY_MISMATCH",
                f"the TLS certificate is {proven!r}; "
                f"it may not sign as {request.envelope.signer_id!r}",
            )
        answer = await inbound.handle(
            request.envelope, payload_type, use_case, sender=sender, peer=context.peer()
        )
        return response_type(envelope=answer)

    return handle


def tls_identity(context) -> str | None:  # type: ignore[no-untyped-def]
    """The merchant id a client certificate proves (its first DNS SAN's first label, or CN)."""
    auth = context.auth_context()
    for key in ("x509_subject_alternative_name", "x509_common_name"):
        values = auth.get(key)
        if values:
            return values[0].decode().split(".")[0]
    return None


class AuditSlices:
    def __init__(self, engine: Engine, offload: Offload) -> None:
        self.engine = engine
        self.offload = offload

    async def fetch(
        self, cmd: xpb.AuditSliceCommand, envelope: SignedEnvelope
    ) -> xpb.AuditSliceReceipt:
        limit = cmd.limit or 100
        if not 1 <= limit <= 1000:
            raise InvalidArgument("LIMIT_OUT_OF_RANGE", "limit must be 1-1000")

        def work(conn):  # type: ignore[no-untyped-def]
            entries = audit.read(
                conn, peer_id=envelope.signer_id, after=cmd.after_sequence, limit=limit
            )
            return entries, audit.head(conn)

        entries, (head_seq, head_hash) = await self.offload(run_in_transaction, self.engine, work)
        receipt = xpb.AuditSliceReceipt(head_sequence=head_seq, head_hash=head_hash)
        for e in entries:
            entry = receipt.entries.add(
                sequence=e.sequence,
                direction=e.direction,
                peer_id=e.peer_id,
                envelope=e.envelope,
                previous_hash=e.previous_hash,
                entry_hash=e.entry_hash,
                outcome=e.outcome,
            )
            entry.recorded_at.FromDatetime(e.recorded_at)
        return receipt


def build_exchange_server(
    engine: Engine,
    signer: Signer,
    verifier: Verifier,
    redemptions: Redemptions,
    offload: Offload,
    clock: Callable[[], datetime],
    listen: str,
    *,
    require_tls_identity: bool = False,
    refusal_limits: RefusalLimits | None = None,
    committer: GroupCommit | None = None,
) -> Server:
    inbound = Inbound(engine, verifier, signer, offload, clock, refusal_limits, committer)
    operator = Operator(engine, offload, clock)
    slices = AuditSlices(engine, offload)
    proofs = SettlementProofs(engine, offload)
    identity = tls_identity if require_tls_identity else None
    x = {
        "GetQuote": (xpb.GetQuoteResponse, xpb.QuoteCommand, redemptions.quote),
        "Authorize": (xpb.AuthorizeResponse, xpb.AuthorizeCommand, redemptions.authorize),
        "Capture": (xpb.CaptureResponse, xpb.CaptureCommand, redemptions.capture),
        "Void": (xpb.VoidResponse, xpb.VoidCommand, redemptions.void),
        "GetPortfolio": (xpb.GetPortfolioResponse, xpb.PortfolioCommand, redemptions.portfolio),
        "FetchAuditSlice": (xpb.FetchAuditSliceResponse, xpb.AuditSliceCommand, slices.fetch),
        "GetSettlementProof": (
            xpb.GetSettlementProofResponse,
            xpb.SettlementProofCommand,
            proofs.get,
        ),
    }
    o = {
        "OnboardMerchant": (
            xpb.OnboardMerchantResponse,
            xpb.OnboardMerchantCommand,
            operator.onboard,
        ),
        "RotateKey": (xpb.RotateKeyResponse, xpb.RotateKeyCommand, operator.rotate_key),
        "SetMerchantStatus": (
            xpb.SetMerchantStatusResponse,
            xpb.SetMerchantStatusCommand,
            operator.set_status,
        ),
        "SetMerchantTerms": (
            xpb.SetMerchantTermsResponse,
            xpb.SetMerchantTermsCommand,
            operator.set_terms,
        ),
        "ListMerchants": (xpb.ListMerchantsResponse, xpb.ListMerchantsCommand, operator.list),
        "GetAffinity": (xpb.GetAffinityResponse, xpb.AffinityCommand, operator.affinity),
    }
    exchange_handlers = {
        name: _rpc(inbound, resp, payload, fn, identity=identity)
        for name, (resp, payload, fn) in x.items()
    }
    operator_handlers = {
        name: _rpc(inbound, resp, payload, fn, sender=OPERATOR_ID)
        for name, (resp, payload, fn) in o.items()
    }
    return Server(
        [
            (EXCHANGE_SERVICE, generic_handler(EXCHANGE_SERVICE, exchange_handlers)),
            (OPERATOR_SERVICE, generic_handler(OPERATOR_SERVICE, operator_handlers)),
        ],
        listen=listen,
        # The district's figures on this process's /metrics, removed when the server stops.
        cleanups=[register_figures(ExchangeFigures(engine))],
    )
