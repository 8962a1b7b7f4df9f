"""The seam through which the exchange reaches issuers' nodes.

Today: a gRPC channel to each node's registered endpoint. A node-initiated long-lived
connection (for nodes behind NAT) can replace `GrpcIssuerGateway` without touching the
redemption logic, which sees only `IssuerGateway`.
"""

from __future__ import annotations

from typing import Protocol

import grpc

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition.issuer.v1 import issuer_pb2 as ipb
from coalition.issuer.v1 import issuer_pb2_grpc
from coalition_kernel.errors import error_from_rpc
from coalition_kernel.rpc import insecure_or_secure_channel


class IssuerGateway(Protocol):
    async def call(
        self, endpoint: str, method: str, envelope: SignedEnvelope, timeout: float
    ) -> SignedEnvelope:
        """Sends a signed command to an issuer's node (`method`: an IssuerService RPC, e.g.
        PostHold or GetStatement); its signed answer, or a CoalitionError."""
        ...

    async def close(self) -> None: ...


_REQUESTS = {
    "PlaceHold": ipb.PlaceHoldRequest,
    "PostHold": ipb.PostHoldRequest,
    "VoidHold": ipb.VoidHoldRequest,
    "GetMemberBalance": ipb.GetMemberBalanceRequest,
    "GetStatement": ipb.GetStatementRequest,
    "GetBreakage": ipb.GetBreakageRequest,
}


class GrpcIssuerGateway:
    def __init__(self, credentials: grpc.ChannelCredentials | None = None) -> None:
        self.credentials = credentials
        self.channels: dict[str, grpc.aio.Channel] = {}

    def _stub(self, endpoint: str) -> issuer_pb2_grpc.IssuerServiceStub:
        channel = self.channels.get(endpoint)
        if channel is None:
            channel = insecure_or_secure_channel(endpoint, self.credentials)
            self.channels[endpoint] = channel
        return issuer_pb2_grpc.IssuerServiceStub(channel)

    async def call(
        self, endpoint: str, method: str, envelope: SignedEnvelope, timeout: float
    ) -> SignedEnvelope:
        stub = self._stub(endpoint)
        try:
            answer = await getattr(stub, method)(
                _REQUESTS[method](envelope=envelope), timeout=timeout
            )
        except grpc.aio.AioRpcError as err:
            raise error_from_rpc(err, f"issuer at {endpoint}", "ISSUER") from err
        return answer.envelope

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()
        self.channels.clear()
