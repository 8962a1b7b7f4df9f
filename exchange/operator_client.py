"""The operator's client of OperatorService: every command signed with the operator key."""

from __future__ import annotations

import uuid
from datetime import datetime

import grpc

from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition.exchange.v1 import exchange_pb2_grpc
from coalition_kernel.envelope import EXCHANGE_ID, Signer, StaticKeys, Verifier, open_answer
from coalition_kernel.errors import error_from_rpc
from coalition_kernel.rpc import insecure_or_secure_channel


class OperatorClient:
    def __init__(  # type: ignore[no-untyped-def]
        self,
        target: str,
        signer: Signer,
        exchange_key,
        timeout: float = 10.0,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.signer = signer
        self.verifier = Verifier(
            signer.signer_id, StaticKeys({EXCHANGE_ID: exchange_key}), clock=signer.clock
        )
        self.channel = insecure_or_secure_channel(target, credentials)
        self.stub = exchange_pb2_grpc.OperatorServiceStub(self.channel)
        self.timeout = timeout

    async def close(self) -> None:
        await self.channel.close()

    async def _call(self, method: str, command, receipt_type):  # type: ignore[no-untyped-def]
        request = self.signer.seal(
            command, audience=EXCHANGE_ID, request_id=f"op-{uuid.uuid4().hex}"
        )
        try:
            response = await getattr(self.stub, method)(
                getattr(xpb, f"{method}Request")(envelope=request), timeout=self.timeout
            )
        except grpc.aio.AioRpcError as err:
            raise error_from_rpc(err, "the exchange", "EXCHANGE") from err
        return open_answer(self.verifier, response.envelope, receipt_type, request, EXCHANGE_ID)

    async def onboard(
        self,
        merchant_id: str,
        display_name: str,
        public_key: bytes,
        endpoint: str,
        *,
        fen_per_point: str = "1",
        fee_bps: int = 0,
    ) -> xpb.Merchant:
        cmd = xpb.OnboardMerchantCommand(
            merchant_id=merchant_id,
            display_name=display_name,
            fen_per_point=fen_per_point,
            fee_bps=fee_bps,
            endpoint=endpoint,
            public_key=public_key,
        )
        return (await self._call("OnboardMerchant", cmd, xpb.MerchantReceipt)).merchant

    async def rotate_key(
        self,
        merchant_id: str,
        public_key: bytes,
        *,
        old_keys_valid_until: datetime | None = None,
        new_key_valid_from: datetime | None = None,
    ) -> xpb.Merchant:
        cmd = xpb.RotateKeyCommand(merchant_id=merchant_id, public_key=public_key)
        if old_keys_valid_until is not None:
            cmd.old_keys_valid_until.FromDatetime(old_keys_valid_until)
        if new_key_valid_from is not None:
            cmd.new_key_valid_from.FromDatetime(new_key_valid_from)
        return (await self._call("RotateKey", cmd, xpb.MerchantReceipt)).merchant

    async def set_status(self, merchant_id: str, *, active: bool) -> xpb.Merchant:
        status = xpb.MERCHANT_STATUS_ACTIVE if active else xpb.MERCHANT_STATUS_SUSPENDED
        cmd = xpb.SetMerchantStatusCommand(merchant_id=merchant_id, status=status)
        return (await self._call("SetMerchantStatus", cmd, xpb.MerchantReceipt)).merchant

    async def set_terms(
        self,
        merchant_id: str,
        *,
        fen_per_point: str = "",
        fee_bps: int = -1,
        endpoint: str = "",
        net_debit_cap_fen: int | None = None,
        breakage_operator_bps: int | None = None,
    ) -> xpb.Merchant:
        """Changes what is given; `net_debit_cap_fen` None keeps the cap, −1 removes it;
        `breakage_operator_bps` None keeps the operator's share of the merchant's breakage."""
        cmd = xpb.SetMerchantTermsCommand(
            merchant_id=merchant_id,
            fen_per_point=fen_per_point,
            fee_bps=fee_bps,
            endpoint=endpoint,
            net_debit_cap_fen=net_debit_cap_fen,
            breakage_operator_bps=breakage_operator_bps,
        )
        return (await self._call("SetMerchantTerms", cmd, xpb.MerchantReceipt)).merchant

    async def list(self) -> list[xpb.Merchant]:
        return list(
            (
                await self._call(
                    "ListMerchants", xpb.ListMerchantsCommand(), xpb.MerchantListReceipt
                )
            ).merchants
        )

    async def affinity(self, *, days: int = 0, min_members: int = 0) -> xpb.AffinityReceipt:
        """Shared customers and flows between shops of the last `days` days (0: 30), no figure
        under `min_members` members (0: 5)."""
        cmd = xpb.AffinityCommand(days=days, min_members=min_members)
        return await self._call("GetAffinity", cmd, xpb.AffinityReceipt)
