"""The operator's commands on the registry, each signed with the operator key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, Engine

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition_kernel import timestamps
from coalition_kernel.db import run_in_transaction
from coalition_kernel.errors import InvalidArgument
from coalition_kernel.points import format_ratio
from coalition_kernel.rpc import Offload
from exchange import affinity, registry

_KIND = {
    affinity.JOINT_OFFER: xpb.PARTNERSHIP_KIND_JOINT_OFFER,
    affinity.RELATED_PRODUCT_OFFER: xpb.PARTNERSHIP_KIND_RELATED_PRODUCT_OFFER,
}
_STATUS = {
    xpb.MERCHANT_STATUS_ACTIVE: "active",
    xpb.MERCHANT_STATUS_SUSPENDED: "suspended",
}


def merchant_message(m: registry.Merchant) -> xpb.Merchant:
    out = xpb.Merchant(
        merchant_id=m.merchant_id,
        display_name=m.display_name,
        status=xpb.MERCHANT_STATUS_ACTIVE
        if m.status == "active"
        else xpb.MERCHANT_STATUS_SUSPENDED,
        fen_per_point=format_ratio(m.fen_per_point),
        rate_version=m.rate_version,
        fee_bps=m.fee_bps,
        endpoint=m.endpoint,
        net_debit_cap_fen=m.net_debit_cap_fen,
        breakage_operator_bps=m.breakage_operator_bps,
    )
    for k in m.keys:
        key = out.keys.add(key_id=k.key_id, public_key=k.public_key)
        key.valid_from.FromDatetime(k.valid_from)
        if k.valid_until is not None:
            key.valid_until.FromDatetime(k.valid_until)
    return out


class Operator:
    def __init__(self, engine: Engine, offload: Offload, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.offload = offload
        self.clock = clock

    async def _run(self, work: Callable[[Connection], registry.Merchant]) -> xpb.MerchantReceipt:
        merchant = await self.offload(run_in_transaction, self.engine, work)
        return xpb.MerchantReceipt(merchant=merchant_message(merchant))

    async def onboard(
        self, cmd: xpb.OnboardMerchantCommand, _env: SignedEnvelope
    ) -> xpb.MerchantReceipt:
        return await self._run(
            lambda conn: registry.onboard(
                conn,
                cmd.merchant_id,
                cmd.display_name,
                cmd.fen_per_point,
                cmd.fee_bps,
                cmd.endpoint,
                cmd.public_key,
                self.clock(),
            )
        )

    async def rotate_key(
        self, cmd: xpb.RotateKeyCommand, _env: SignedEnvelope
    ) -> xpb.MerchantReceipt:
        now = self.clock()
        old_until = timestamps.optional(cmd, "old_keys_valid_until")
        new_from = timestamps.optional(cmd, "new_key_valid_from") or now
        return await self._run(
            lambda conn: registry.rotate_key(
                conn, cmd.merchant_id, cmd.public_key, old_until, new_from, now
            )
        )

    async def set_status(
        self, cmd: xpb.SetMerchantStatusCommand, _env: SignedEnvelope
    ) -> xpb.MerchantReceipt:
        status = _STATUS.get(cmd.status)
        if status is None:
            raise InvalidArgument("MISSING_FIELD", "status must be ACTIVE or SUSPENDED")
        return await self._run(lambda conn: registry.set_status(conn, cmd.merchant_id, status))

    async def set_terms(
        self, cmd: xpb.SetMerchantTermsCommand, _env: SignedEnvelope
    ) -> xpb.MerchantReceipt:
        # Unset (an older operator client) keeps the cap and the breakage share; NO_CAP
        # removes the cap.
        cap = cmd.net_debit_cap_fen if cmd.HasField("net_debit_cap_fen") else None
        share = cmd.breakage_operator_bps if cmd.HasField("breakage_operator_bps") else None
        return await self._run(
            lambda conn: registry.set_terms(
                conn,
                cmd.merchant_id,
                cmd.fen_per_point,
                cmd.fee_bps,
                cmd.endpoint,
                self.clock(),
                net_debit_cap_fen=cap,
                breakage_operator_bps=share,
            )
        )

    async def list(
        self, _cmd: xpb.ListMerchantsCommand, _env: SignedEnvelope
    ) -> xpb.MerchantListReceipt:
        merchants = await self.offload(run_in_transaction, self.engine, registry.all_merchants)
        return xpb.MerchantListReceipt(merchants=[merchant_message(m) for m in merchants])

    async def affinity(self, cmd: xpb.AffinityCommand, _env: SignedEnvelope) -> xpb.AffinityReceipt:
        """Shared customers and flows between shops over the window asked (exchange/affinity)."""
        affinity.checked(cmd.days, cmd.min_members)  # refused before any read
        now = self.clock()
        found = await self.offload(
            run_in_transaction,
            self.engine,
            lambda conn: affinity.affinity(conn, now, cmd.days, cmd.min_members),
        )
        return affinity_message(found)


def affinity_message(a: affinity.Affinity) -> xpb.AffinityReceipt:
    out = xpb.AffinityReceipt(min_members=a.min_members, suppressed_flows=a.suppressed_flows)
    out.window_start.FromDatetime(a.window_start)
    out.window_end.FromDatetime(a.window_end)
    for f in a.flows:
        out.flows.add(
            issuer_id=f.issuer_id,
            acquirer_id=f.acquirer_id,
            members=f.members,
            redemptions=f.redemptions,
            points=f.points,
            value_fen=f.value_fen,
            lift_bp=f.lift_bp,
        )
    for s in a.shared:
        out.shared.add(
            first_merchant_id=s.first_id, second_merchant_id=s.second_id, members=s.members
        )
    for g in a.suggestions:
        out.suggestions.add(
            kind=_KIND[g.kind],
            offering_merchant_id=g.offering_id,
            audience_merchant_id=g.audience_id,
            score_bp=g.score_bp,
            members=g.members,
        )
    return out
