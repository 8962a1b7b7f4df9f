"""A fuzz run of every method of every service with extreme timestamps and sizes: every answer
is OK or a refusal with a gRPC status a client can act on and an ErrorInfo reason, never
UNKNOWN or INTERNAL (issue 10, "Also found"). Signed methods get correctly signed envelopes
(the merchant's, the operator's or the exchange's key), so the extreme values reach the use case
itself, not only the signature check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition.issuer.v1 import issuer_pb2 as ipb
from coalition.merchant.v1 import merchant_node_pb2, rules_admin_pb2
from coalition_kernel.envelope import EXCHANGE_ID, OPERATOR_ID, Signer
from coalition_kernel.errors import InvalidArgument, error_info_of
from exchange import registry
from tests.exchange.conftest import Coalition, raw_public

FD = FieldDescriptor
SIGNED = {  # the command each signed RPC carries
    "GetQuote": xpb.QuoteCommand,
    "Authorize": xpb.AuthorizeCommand,
    "Capture": xpb.CaptureCommand,
    "Void": xpb.VoidCommand,
    "GetPortfolio": xpb.PortfolioCommand,
    "FetchAuditSlice": xpb.AuditSliceCommand,
    "GetSettlementProof": xpb.SettlementProofCommand,
    "OnboardMerchant": xpb.OnboardMerchantCommand,
    "RotateKey": xpb.RotateKeyCommand,
    "SetMerchantStatus": xpb.SetMerchantStatusCommand,
    "SetMerchantTerms": xpb.SetMerchantTermsCommand,
    "ListMerchants": xpb.ListMerchantsCommand,
    "GetAffinity": xpb.AffinityCommand,
    "PlaceHold": ipb.PlaceHoldCommand,
    "PostHold": ipb.PostHoldCommand,
    "VoidHold": ipb.VoidHoldCommand,
    "GetMemberBalance": ipb.MemberBalanceCommand,
    "GetStatement": ipb.StatementCommand,
    "GetBreakage": ipb.BreakageCommand,
}
UNACCEPTABLE = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}


@dataclass(frozen=True)
class Extreme:
    name: str
    seconds: int
    nanos: int
    text: str
    integer: int


VARIANTS = [
    Extreme("max seconds", 2**63 - 1, 0, "x", 2**63 - 1),
    Extreme("min seconds", -(2**63), 0, "", -(2**63)),
    Extreme("nanos -1", 1_767_000_000, -1, "m1", 1),
    Extreme("nanos 1e9", 1_767_000_000, 10**9, "tea", -1),
    Extreme("year 10000", 253_402_300_800, 0, "\x00" * 3, 0),
    Extreme("year 9999", 253_402_300_799, 999_999_999, "ü" * 3000, 10**15 + 1),
    Extreme("big strings", 0, 0, "y" * 70_000, 2**31),
]


def fill(message: Message, v: Extreme, depth: int = 0) -> None:
    """Every field of `message` (but the signed header) set to the variant's extreme."""
    for field in message.DESCRIPTOR.fields:
        if field.name == "header":
            continue
        repeated = field.is_repeated
        if field.type == FD.TYPE_MESSAGE:
            if field.message_type.GetOptions().map_entry:
                continue
            if field.message_type.full_name == "google.protobuf.Timestamp":
                stamps = [getattr(message, field.name)] if not repeated else []
                if repeated:
                    stamps = [getattr(message, field.name).add() for _ in range(2)]
                for ts in stamps:
                    ts.seconds, ts.nanos = v.seconds, v.nanos
                continue
            if depth >= 3:
                continue
            subs = (
                [getattr(message, field.name).add() for _ in range(3)]
                if repeated
                else [getattr(message, field.name)]
            )
            for sub in subs:
                fill(sub, v, depth + 1)
            continue
        value = scalar(field, v)
        if value is None:
            continue
        if repeated:
            getattr(message, field.name).extend([value, value])
        else:
            setattr(message, field.name, value)


def scalar(field: FieldDescriptor, v: Extreme):  # type: ignore[no-untyped-def]
    t = field.type
    if t == FD.TYPE_STRING:
        return v.text
    if t == FD.TYPE_BYTES:
        return v.text.encode()[:40_000]
    if t == FD.TYPE_BOOL:
        return True
    if t == FD.TYPE_ENUM:
        return 99
    if t in (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64):
        return v.integer if -(2**63) <= v.integer < 2**63 else 2**63 - 1
    if t in (FD.TYPE_UINT64, FD.TYPE_FIXED64):
        return abs(v.integer) % 2**64
    if t in (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32):
        return max(min(v.integer, 2**31 - 1), -(2**31))
    if t in (FD.TYPE_UINT32, FD.TYPE_FIXED32):
        return abs(v.integer) % 2**32
    return None


async def call(target: str, service, method, request: Message, metadata=()):  # type: ignore[no-untyped-def]
    async with grpc.aio.insecure_channel(target) as channel:
        rpc = channel.unary_unary(
            f"/{service.full_name}/{method.name}",
            request_serializer=lambda m: m.SerializeToString(),
        )
        await rpc(request, timeout=20, metadata=metadata)


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
async def test_every_method_with_extreme_timestamps_and_sizes_never_answers_unknown_or_internal(
    coalition: Coalition, variant: Extreme
):
    c = coalition
    node = c["tea"]
    merchant = Signer("noodles", c["noodles"].key, c.clock)
    operator = Signer(OPERATOR_ID, c.operator_key, c.clock)
    exchange = c.exchange.signer
    services = [
        (node.target, merchant_node_pb2.DESCRIPTOR.services_by_name["MerchantNodeService"], None),
        (node.target, rules_admin_pb2.DESCRIPTOR.services_by_name["RulesAdminService"], None),
        (node.target, ipb.DESCRIPTOR.services_by_name["IssuerService"], (exchange, "tea")),
        (
            c.exchange_target,
            xpb.DESCRIPTOR.services_by_name["ExchangeService"],
            (merchant, EXCHANGE_ID),
        ),
        (
            c.exchange_target,
            xpb.DESCRIPTOR.services_by_name["OperatorService"],
            (operator, EXCHANGE_ID),
        ),
    ]
    metadata = node.client.auth  # the node's key with every scope: the handlers themselves run
    bad: list[tuple[str, str, str]] = []
    calls = 0
    for target, service, signed in services:
        for method in service.methods:
            request = GetMessageClass(method.input_type)()
            if signed is not None:
                signer, audience = signed
                command = SIGNED[method.name]()
                fill(command, variant)
                envelope: SignedEnvelope = signer.seal(
                    command, audience=audience, request_id=f"fz-{calls}"
                )
                request.envelope.CopyFrom(envelope)  # type: ignore[attr-defined]
            else:
                fill(request, variant)
            calls += 1
            try:
                await call(target, service, method, request, metadata)
            except grpc.aio.AioRpcError as err:
                info = error_info_of(err)
                if err.code() in UNACCEPTABLE or info is None or not info.reason:
                    bad.append((method.full_name, err.code().name, (err.details() or "")[:200]))
    assert bad == [], bad
    assert calls >= 40


async def test_rotate_key_refuses_a_window_that_leaves_the_merchant_without_a_key(coalition):
    c = coalition
    starts = c.clock.now + timedelta(hours=1)
    new = raw_public(Ed25519PrivateKey.generate())
    with pytest.raises(InvalidArgument) as err:
        await c.operator.rotate_key(
            "tea", new, old_keys_valid_until=c.clock.now, new_key_valid_from=starts
        )
    assert err.value.reason == "KEY_GAP"
    # A future key with no end given for the old ones: the old keys run until it starts.
    merchant = await c.operator.rotate_key("tea", new, new_key_valid_from=starts)
    keys = sorted(merchant.keys, key=lambda k: k.valid_from.ToDatetime())
    assert keys[0].valid_until.ToDatetime() == keys[1].valid_from.ToDatetime()
    with c.exchange.engine.connect() as conn:
        tea = registry.load(conn, "tea")
    assert [k.valid_until for k in tea.keys][0] == starts
