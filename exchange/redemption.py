"""Cross-merchant redemption at the exchange: quote → authorize → capture | void, and recovery.

No database transaction is held across a call to an issuer. Each step first records what it is
about to do (pending, capturing, voiding), then calls the issuer with a request id derived from
the authorization (so the issuer acts at most once however often it is asked), then records the
outcome. A crash anywhere leaves a state that a retry by the acquirer or `recover()` finishes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, Insert, Row, bindparam, insert, select, update

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition.issuer.v1 import issuer_pb2 as ipb
from coalition_kernel.db import run_in_transaction
from coalition_kernel.envelope import Signer, Verifier, open_answer
from coalition_kernel.errors import (
    CoalitionError,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from coalition_kernel.points import MAX_AMOUNT, format_ratio
from coalition_kernel.rpc import Offload
from exchange import audit, registry
from exchange.inbound import IssuerCall, Staged, commit_then_raise, insert_ignoring
from exchange.issuers import IssuerGateway
from exchange.portfolio import FanOut, Portfolios
from exchange.pricing import Price, price
from exchange.registry_cache import CachedKeys, RegistryCache, checked
from exchange.schema import authorizations, clearing_records, quotes
from exchange.statements import fetch_breakage, fetch_statement
from merchant_node.ledger.commands import check_id
from settlement.commitment import leaf_hash
from settlement.obligations import StatedBreakage
from settlement.reconcile import NodeStatement
from settlement.records import ClearingRecord

_STATUS = {
    "pending": xpb.AUTHORIZATION_STATUS_PENDING,
    "authorized": xpb.AUTHORIZATION_STATUS_AUTHORIZED,
    "capturing": xpb.AUTHORIZATION_STATUS_AUTHORIZED,
    "captured": xpb.AUTHORIZATION_STATUS_CAPTURED,
    "voiding": xpb.AUTHORIZATION_STATUS_AUTHORIZED,
    "voided": xpb.AUTHORIZATION_STATUS_VOIDED,
    "failed": xpb.AUTHORIZATION_STATUS_FAILED,
}
_ANSWERS = {  # what each IssuerService method answers, signed by the issuer
    "PlaceHold": ipb.HoldReceipt,
    "PostHold": ipb.HoldReceipt,
    "VoidHold": ipb.HoldReceipt,
    "GetMemberBalance": ipb.MemberBalanceReceipt,
    "GetStatement": ipb.StatementReceipt,
    "GetBreakage": ipb.BreakageReceipt,
}


@dataclass(frozen=True)
class Settings:
    quote_ttl: timedelta = timedelta(seconds=120)
    hold_ttl: timedelta = timedelta(minutes=15)
    issuer_timeout: float = 5.0
    settlement_zone: str = "Asia/Shanghai"
    stuck_after: timedelta = timedelta(seconds=30)
    fan_out: FanOut = FanOut()  # the portfolio's bounds (exchange/portfolio.py)


class Redemptions:
    def __init__(
        self,
        engine: Engine,
        signer: Signer,
        verifier: Verifier,
        issuers: IssuerGateway,
        offload: Offload,
        clock: Callable[[], datetime],
        settings: Settings | None = None,
        registry_cache: RegistryCache | None = None,
    ) -> None:
        self.engine = engine
        self.signer = signer
        self.verifier = verifier
        self.issuers = issuers
        self.offload = offload
        self.clock = clock
        self.settings = settings or Settings()
        keys = verifier.keys
        self.registry = registry_cache or (
            keys.cache if isinstance(keys, CachedKeys) else RegistryCache(engine)
        )
        # Steps run in the request's own transaction (exchange/inbound.py, Staged).
        self.quote = Staged(self._quote)
        self.authorize = Staged(self._authorize)
        self.capture = Staged(self._capture)
        self.portfolios = Portfolios(
            self._ask, lambda: self._db(registry.all_merchants), self.settings.fan_out
        )

    async def _db(self, work: Callable[[Connection], object]):  # type: ignore[no-untyped-def]
        return await self.offload(run_in_transaction, self.engine, work)

    async def _db_keep(self, work: Callable[[Connection], object]):  # type: ignore[no-untyped-def]
        """Like `_db`, but a CoalitionError `work` raises is raised after the commit."""
        return await self.offload(commit_then_raise, self.engine, work)

    # -- quote -------------------------------------------------------------------------------

    def _quote(
        self, conn: Connection, cmd: xpb.QuoteCommand, envelope: SignedEnvelope
    ) -> xpb.QuoteReceipt:
        acquirer = envelope.signer_id
        quoted, _ = self._price(conn, acquirer, cmd.issuer_id, cmd.points, cmd.amount_fen)
        quote_id = f"q-{uuid.uuid4().hex}"
        expires = self.clock() + self.settings.quote_ttl
        conn.execute(
            _INSERT_QUOTE,
            dict(
                quote_id=quote_id,
                acquirer_id=acquirer,
                issuer_id=cmd.issuer_id,
                points=quoted.points,
                value_fen=quoted.value_fen,
                fee_fen=quoted.fee_fen,
                rate_version=quoted.rate_version,
                expires_at=expires,
            ),
        )
        receipt = xpb.QuoteReceipt(
            quote_id=quote_id,
            issuer_id=cmd.issuer_id,
            points=quoted.points,
            value_fen=quoted.value_fen,
            fee_fen=quoted.fee_fen,
            rate_version=quoted.rate_version,
        )
        receipt.expires_at.FromDatetime(expires)
        return receipt

    def _price(
        self, conn: Connection, acquirer_id: str, issuer_id: str, points: int, amount: int
    ) -> tuple[Price, registry.Merchant]:
        check_id("issuer_id", issuer_id)
        if issuer_id == acquirer_id:
            raise InvalidArgument(
                "ISSUER_IS_ACQUIRER", "redeem your own points with Redeem, not through the exchange"
            )
        issuer = self.registry.active(conn, issuer_id, "issuer")
        acquirer = self.registry.active(conn, acquirer_id, "acquirer")
        quoted = price(
            points=points,
            amount_fen=amount,
            fen_per_point=issuer.fen_per_point,
            rate_version=issuer.rate_version,
            fee_bps=acquirer.fee_bps,
        )
        return quoted, issuer

    # -- authorize ---------------------------------------------------------------------------

    def _authorize(
        self, conn: Connection, cmd: xpb.AuthorizeCommand, envelope: SignedEnvelope
    ) -> xpb.AuthorizeReceipt | IssuerCall:
        """Records the authorization (pending) and the signed hold request it sends, in the
        request's own transaction; a retry of one left pending sends its hold request again."""
        auth = self._open_authorization(conn, envelope.signer_id, cmd)
        if auth.status == "pending":
            return self._hold_call(conn, auth)
        return _authorized(auth)

    def _open_authorization(
        self, conn: Connection, acquirer: str, cmd: xpb.AuthorizeCommand
    ) -> Row:
        existing = _auth_by_request(conn, acquirer, cmd.header.request_id)
        if existing is not None:
            return existing
        check_id("member_id", cmd.member_id)
        check_id("order_id", cmd.order_id)
        if not cmd.consent_code:
            raise InvalidArgument(
                "CONSENT_REQUIRED", "consent_code (the member's one-time code) is required"
            )
        if (
            len(cmd.consent_code) > 10
            or not cmd.consent_code.isascii()
            or not cmd.consent_code.isdigit()
        ):
            raise InvalidArgument("MALFORMED_CONSENT", "consent_code is the wallet's 6-digit code")
        if cmd.quote_id:
            check_id("quote_id", cmd.quote_id)
        _check_consent_binding(cmd)
        now = self.clock()
        if cmd.quote_id:
            quoted, issuer = self._quoted(conn, acquirer, cmd, now)
        else:
            quoted, issuer = self._price(conn, acquirer, cmd.issuer_id, cmd.points, cmd.amount_fen)
        # 0: the member agreed to exactly what is held. Refused here, before any row is written
        # or the issuer asked; the issuer checks it again against the code.
        max_points = cmd.consent_max_points or quoted.points
        if quoted.points > max_points:
            raise PermissionDenied(
                "CONSENT_EXCEEDED",
                f"the member agreed to at most {max_points} points; this needs {quoted.points}",
                max_points=str(max_points),
            )
        # Checked and inserted in this one transaction: the check locks a capped issuer's row.
        # The registry was read as of this transaction: an issuer without a cap has none now.
        if issuer.net_debit_cap_fen is not None:
            registry.check_net_debit_cap(conn, cmd.issuer_id, quoted.value_fen, now)
        # ON CONFLICT DO NOTHING rather than a savepoint: one round trip, not three.
        created = conn.execute(
            _open_statement(conn),
            dict(
                authorization_id=f"a-{uuid.uuid4().hex}",
                acquirer_id=acquirer,
                request_id=cmd.header.request_id,
                issuer_id=cmd.issuer_id,
                member_id=cmd.member_id,
                order_id=cmd.order_id,
                points=quoted.points,
                value_fen=quoted.value_fen,
                fee_fen=quoted.fee_fen,
                rate_version=quoted.rate_version,
                consent_code=cmd.consent_code,
                consent_max_points=max_points,
                consent_order_id=cmd.consent_order_id,
                status="pending",
                created_at=now,
                updated_at=now,
            ),
        ).first()
        if created is None:  # a concurrent retry of the same request created it first
            twin = _auth_by_request(conn, acquirer, cmd.header.request_id)
            assert twin is not None
            return twin
        return created

    def _quoted(
        self, conn: Connection, acquirer: str, cmd: xpb.AuthorizeCommand, now: datetime
    ) -> tuple[Price, registry.Merchant]:
        row = conn.execute(_QUOTE, {"quote": cmd.quote_id}).first()
        if row is None or row.acquirer_id != acquirer or row.issuer_id != cmd.issuer_id:
            raise NotFound(
                "QUOTE_NOT_FOUND", f"no quote {cmd.quote_id} for {acquirer} on {cmd.issuer_id}"
            )
        if now >= row.expires_at:
            raise FailedPrecondition(
                "QUOTE_EXPIRED",
                f"quote {cmd.quote_id} expired at {row.expires_at.isoformat()}; ask again",
            )
        issuer = self.registry.active(conn, cmd.issuer_id, "issuer")
        return Price(row.points, row.value_fen, row.fee_fen, row.rate_version), issuer

    def _hold_call(self, conn: Connection, auth: Row) -> IssuerCall:
        issuer = self.registry.load(conn, auth.issuer_id)
        command = ipb.PlaceHoldCommand(
            hold_id=auth.authorization_id,
            member_id=auth.member_id,
            points=auth.points,
            consent_code=auth.consent_code,
            acquirer_id=auth.acquirer_id,
            ttl_seconds=int(self.settings.hold_ttl.total_seconds()),
            # An authorization opened before bound consent has none: exactly its points.
            consent_max_points=auth.consent_max_points or auth.points,
            consent_order_id=auth.consent_order_id or "",
        )
        if issuer.rate_version == auth.rate_version:  # the issuer checks the value it is priced at
            command.fen_per_point = format_ratio(issuer.fen_per_point)
            command.rate_version = auth.rate_version
        request = self._sealed(conn, issuer, command, f"{auth.authorization_id}:hold")
        return IssuerCall(
            send=lambda: self._send(issuer, "PlaceHold", request),
            settle=lambda conn, outcome: self._hold_placed(conn, auth, issuer, request, outcome),
        )

    def _hold_placed(
        self,
        conn: Connection,
        auth: Row,
        issuer: registry.Merchant,
        request: SignedEnvelope,
        outcome: SignedEnvelope | CoalitionError,
    ) -> xpb.AuthorizeReceipt:
        try:
            receipt, _ = self._received(conn, issuer, "PlaceHold", request, outcome)
        except (Unavailable, DeadlineExceeded):
            raise  # stays pending: a retry re-drives it, or recover() voids it
        except CoalitionError as refusal:
            _finish(conn, auth.authorization_id, "failed", self.clock(), refusal.reason)
            raise
        expires = receipt.expires_at.ToDatetime(tzinfo=self.clock().tzinfo)
        authorized = conn.execute(
            _AUTHORIZED,
            dict(
                auth=auth.authorization_id,
                status="authorized",
                hold_expires_at=expires,
                updated_at=self.clock(),
            ),
        ).first()
        return _authorized(authorized or _auth(conn, auth.authorization_id))

    # -- capture and void --------------------------------------------------------------------

    def _capture(
        self, conn: Connection, cmd: xpb.CaptureCommand, envelope: SignedEnvelope
    ) -> xpb.CaptureReceipt | IssuerCall:
        """Claims the authorization for capture and records the signed post it sends, in the
        request's own transaction; the clearing record is written when the issuer answers."""
        check_id("authorization_id", cmd.authorization_id)
        now = self.clock()
        claim = dict(
            auth=cmd.authorization_id,
            status="capturing",
            updated_at=now,
            capture_envelope=envelope.SerializeToString(),
            # Fixed here, sent with the post: both sides book the capture in this period
            # however late a retry or recover() finishes it.
            settlement_period=self._period(now),
        )
        # The acquirer's authorized one is claimed in one statement; anything else is read
        # (locked) to answer why not, or to go on with a capture already claimed.
        auth = conn.execute(_CLAIM_CAPTURE, dict(claim, acquirer=envelope.signer_id)).first()
        if auth is None:
            auth = _owned(conn, envelope.signer_id, cmd.authorization_id)
            if auth.status == "authorized":
                auth = conn.execute(_UPDATE_RETURNING, claim).one()
        if auth.status == "capturing":
            return self._post_call(conn, auth)
        if auth.status == "captured":
            return xpb.CaptureReceipt(record=_clearing(conn, auth.authorization_id))
        raise _not_capturable(auth)

    def _post_call(self, conn: Connection, auth: Row) -> IssuerCall:
        issuer = self.registry.load(conn, auth.issuer_id)
        # A capture claimed before periods were stored has none: its post goes without one, as
        # it may already have gone (the issuer would refuse the same request id with another
        # body), and its period is computed when the record is written, as it used to be.
        command = ipb.PostHoldCommand(
            hold_id=auth.authorization_id, settlement_period=auth.settlement_period or ""
        )
        request = self._sealed(conn, issuer, command, f"{auth.authorization_id}:post")
        return IssuerCall(
            send=lambda: self._send(issuer, "PostHold", request),
            settle=lambda conn, outcome: self._posted(conn, auth, issuer, request, outcome),
        )

    def _posted(
        self,
        conn: Connection,
        auth: Row,
        issuer: registry.Merchant,
        request: SignedEnvelope,
        outcome: SignedEnvelope | CoalitionError,
    ) -> xpb.CaptureReceipt:
        try:
            _, answer = self._received(conn, issuer, "PostHold", request, outcome)
        except (Unavailable, DeadlineExceeded):
            raise  # stays capturing: the acquirer's retry or recover() posts it
        except CoalitionError as refusal:
            _finish(conn, auth.authorization_id, "failed", self.clock(), refusal.reason)
            raise
        now = self.clock()
        period = auth.settlement_period or self._period(now)
        # Marked captured first: a concurrent retry that got there first (its row lock waited
        # for) leaves nothing to mark, and its record is the answer.
        marked = conn.execute(
            _MARK_CAPTURED,
            dict(
                auth=auth.authorization_id,
                status="captured",
                updated_at=now,
                settlement_period=period,
            ),
        )
        if marked.rowcount == 0:
            return xpb.CaptureReceipt(record=_clearing(conn, auth.authorization_id))
        clearing_id = f"c-{uuid.uuid4().hex}"
        values = dict(
            clearing_id=clearing_id,
            authorization_id=auth.authorization_id,
            issuer_id=auth.issuer_id,
            acquirer_id=auth.acquirer_id,
            member_id=auth.member_id,
            order_id=auth.order_id,
            points=auth.points,
            value_fen=auth.value_fen,
            fee_fen=auth.fee_fen,
            rate_version=auth.rate_version,
            settlement_period=period,
            authorized_at=auth.created_at,
            captured_at=now,
            acquirer_envelope=auth.capture_envelope,
            issuer_envelope=answer.SerializeToString(),
        )
        # Its Merkle leaf, hashed now: closing the period reads hashes, not records.
        leaf = leaf_hash(ClearingRecord(*(values[name] for name in ClearingRecord._fields)))
        conn.execute(_INSERT_CLEARING, dict(values, leaf_hash=leaf))
        return xpb.CaptureReceipt(record=_clearing_message(values))

    async def _post(self, auth: Row) -> None:
        """Posts the hold of an authorization stuck capturing (recover())."""
        call = await self._db(lambda conn: self._post_call(conn, auth))
        outcome = await _outcome(call)
        await self._db_keep(lambda conn: call.settle(conn, outcome))

    def _period(self, at: datetime) -> str:
        """The settlement period of a moment: its calendar day in the settlement zone."""
        return at.astimezone(ZoneInfo(self.settings.settlement_zone)).date().isoformat()

    async def void(self, cmd: xpb.VoidCommand, envelope: SignedEnvelope) -> xpb.VoidReceipt:
        acquirer = envelope.signer_id

        def claim(conn: Connection) -> Row:
            auth = _owned(conn, acquirer, cmd.authorization_id)
            if auth.status in ("authorized", "pending"):
                _set(conn, auth.authorization_id, "voiding", self.clock())
                return _auth(conn, auth.authorization_id)
            return auth

        auth = await self._db(claim)
        if auth.status == "voiding":
            auth = await self._release(auth, "voided")
        if auth.status in ("captured", "capturing"):
            raise FailedPrecondition(
                "ALREADY_CAPTURED", f"authorization {auth.authorization_id} was captured"
            )
        return xpb.VoidReceipt(authorization_id=auth.authorization_id, status=_STATUS[auth.status])

    async def _release(self, auth: Row, final: str, reason: str | None = None) -> Row:
        issuer = await self._db(lambda conn: self.registry.load(conn, auth.issuer_id))
        command = ipb.VoidHoldCommand(hold_id=auth.authorization_id)
        try:
            receipt, _ = await self._ask(
                issuer, "VoidHold", command, f"{auth.authorization_id}:void"
            )
            if receipt.status == ipb.HOLD_STATUS_EXPIRED:  # it lapsed before the void arrived
                final, reason = "failed", "HOLD_EXPIRED"
        except CoalitionError as refusal:
            if refusal.reason == "HOLD_ALREADY_POSTED":
                raise  # cannot happen unless the issuer disagrees with us: leave it visible
            if refusal.code.name in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
                raise
            # HOLD_NOT_FOUND: the hold was never placed; nothing to release.
        return await self._db(
            lambda conn: _finish(conn, auth.authorization_id, final, self.clock(), reason)
        )

    # -- recovery ----------------------------------------------------------------------------

    async def recover(self) -> dict[str, int]:
        """Finishes authorizations stuck mid-way (after a crash or an unreachable issuer):
        stale pending ones are voided at the issuer, capturing ones posted, voiding ones voided."""
        cutoff = self.clock() - self.settings.stuck_after

        def stuck(conn: Connection) -> list[tuple[str, Row]]:
            rows = conn.execute(
                select(authorizations).where(
                    authorizations.c.status.in_(("pending", "capturing", "voiding")),
                    authorizations.c.updated_at <= cutoff,
                )
            ).all()
            for row in rows:
                if row.status == "pending":  # claim it, so a late retry cannot revive it
                    _set(conn, row.authorization_id, "voiding", self.clock())
            return [(row.status, _auth(conn, row.authorization_id)) for row in rows]

        done = {"posted": 0, "voided": 0, "failed": 0, "still_stuck": 0}
        for was, auth in await self._db(stuck):
            try:
                if was == "capturing":
                    await self._post(auth)
                    done["posted"] += 1
                elif was == "pending":
                    await self._release(auth, "failed", "ISSUER_UNAVAILABLE")
                    done["failed"] += 1
                else:
                    await self._release(auth, "voided")
                    done["voided"] += 1
            except CoalitionError:
                done["still_stuck"] += 1
        return done

    # -- talking to issuers ------------------------------------------------------------------

    async def _ask(  # type: ignore[no-untyped-def]
        self,
        issuer: registry.Merchant,
        method: str,
        command,
        request_id: str,
        timeout: float | None = None,
    ):
        # No standing check here: releasing or posting what a suspended issuer already holds
        # must still work; new authorizations check standing when they are priced.
        request = await self._db(lambda conn: self._sealed(conn, issuer, command, request_id))
        try:
            outcome: SignedEnvelope | CoalitionError = await self._send(
                issuer, method, request, timeout
            )
        except CoalitionError as err:
            outcome = err
        return await self._db_keep(
            lambda conn: self._received(conn, issuer, method, request, outcome)
        )

    def _sealed(
        self,
        conn: Connection,
        issuer: registry.Merchant,
        command,
        request_id: str,  # type: ignore[no-untyped-def]
    ) -> SignedEnvelope:
        """The command signed for the issuer and logged as sent, before it is sent."""
        request = self.signer.seal(command, audience=issuer.merchant_id, request_id=request_id)
        audit.append(
            conn, "out", issuer.merchant_id, request.SerializeToString(), "sent", self.clock()
        )
        return request

    async def _send(
        self,
        issuer: registry.Merchant,
        method: str,
        request: SignedEnvelope,
        timeout: float | None = None,
    ) -> SignedEnvelope:
        return await self.issuers.call(
            issuer.endpoint, method, request, timeout or self.settings.issuer_timeout
        )

    def _received(  # type: ignore[no-untyped-def]
        self,
        conn: Connection,
        issuer: registry.Merchant,
        method: str,
        request: SignedEnvelope,
        outcome: SignedEnvelope | CoalitionError,
    ):
        """The issuer's verified receipt and its signed answer, logged; or its refusal (or the
        failed call), logged and raised. An answer that fails verification is logged and
        refused UNAVAILABLE ISSUER_ANSWER_INVALID."""
        peer = issuer.merchant_id
        if isinstance(outcome, CoalitionError):
            audit.append(conn, "in", peer, b"", f"refused:{outcome.reason}", self.clock())
            raise outcome
        raw = outcome.SerializeToString()
        try:
            with checked(self.verifier, conn):
                receipt = open_answer(self.verifier, outcome, _ANSWERS[method], request, peer)
        except CoalitionError as err:
            audit.append(conn, "in", peer, raw, f"refused:{err.reason}", self.clock())
            raise Unavailable(
                "ISSUER_ANSWER_INVALID", f"issuer {peer}'s answer failed verification"
            ) from err
        audit.append(conn, "in", peer, raw, "accepted", self.clock())
        return receipt, outcome

    # -- statements --------------------------------------------------------------------------

    async def statement(self, merchant_id: str, period: str) -> NodeStatement:
        """What a merchant's node booked for a settlement period (a day), as issuer and as
        acquirer: every page signed by the node, verified and written to the audit log."""
        merchant = await self._db(lambda conn: self.registry.load(conn, merchant_id))
        return await fetch_statement(self._ask, merchant, period)

    async def breakage(self, merchant_id: str, period: str) -> StatedBreakage:
        """What expired at a merchant's node in a settlement period (a day), signed by the node,
        verified and written to the audit log."""
        merchant = await self._db(lambda conn: self.registry.load(conn, merchant_id))
        return await fetch_breakage(self._ask, merchant, period)

    # -- portfolio ---------------------------------------------------------------------------

    async def portfolio(
        self, cmd: xpb.PortfolioCommand, envelope: SignedEnvelope
    ) -> xpb.PortfolioReceipt:
        """The member's balances at the issuers she consented to (exchange/portfolio.py)."""
        return await self.portfolios.portfolio(cmd, envelope)


def _check_consent_binding(cmd: xpb.AuthorizeCommand) -> None:
    if not 0 <= cmd.consent_max_points <= MAX_AMOUNT:
        raise InvalidArgument("AMOUNT_OUT_OF_RANGE", f"consent_max_points must be 0-{MAX_AMOUNT}")
    if cmd.consent_order_id and cmd.consent_order_id != cmd.order_id:
        raise InvalidArgument(
            "CONSENT_ORDER_MISMATCH",
            "consent_order_id must be the order_id the member's code was made for",
        )


def _auth(conn: Connection, auth_id: str) -> Row:
    return conn.execute(_AUTH, {"auth": auth_id}).one()


def _auth_by_request(conn: Connection, acquirer: str, request_id: str) -> Row | None:
    return conn.execute(_AUTH_BY_REQUEST, {"acquirer": acquirer, "request": request_id}).first()


def _owned(conn: Connection, acquirer: str, auth_id: str) -> Row:
    check_id("authorization_id", auth_id)
    row = conn.execute(_OWNED, {"auth": auth_id}).first()
    if row is None:
        raise NotFound("AUTHORIZATION_NOT_FOUND", f"no authorization {auth_id}")
    if row.acquirer_id != acquirer:
        raise PermissionDenied(
            "NOT_YOUR_AUTHORIZATION", f"authorization {auth_id} belongs to another merchant"
        )
    return row


def _set(conn: Connection, auth_id: str, status: str, now: datetime) -> None:
    conn.execute(_UPDATE, {"auth": auth_id, "status": status, "updated_at": now})


def _finish(conn: Connection, auth_id: str, status: str, now: datetime, reason: str | None) -> Row:
    conn.execute(
        _FINISH, {"auth": auth_id, "status": status, "updated_at": now, "failure_reason": reason}
    )
    return _auth(conn, auth_id)


def _not_capturable(auth: Row) -> CoalitionError:
    if auth.status in ("voiding", "voided"):
        return FailedPrecondition(
            "AUTHORIZATION_VOIDED", f"authorization {auth.authorization_id} was voided"
        )
    if auth.status == "pending":
        return FailedPrecondition(
            "AUTHORIZATION_PENDING", "the issuer has not confirmed the hold yet"
        )
    reason = auth.failure_reason or "AUTHORIZATION_FAILED"
    return FailedPrecondition(
        reason, f"authorization {auth.authorization_id} cannot be captured: {reason}"
    )


def _authorized(auth: Row) -> xpb.AuthorizeReceipt:
    """The answer to Authorize for an authorization past pending: refused if it failed or was
    voided."""
    if auth.status == "failed":
        raise FailedPrecondition(
            auth.failure_reason, f"authorization failed: {auth.failure_reason}"
        )
    if auth.status in ("voiding", "voided"):
        raise FailedPrecondition("AUTHORIZATION_VOIDED", "this authorization was voided")
    return _authorize_receipt(auth)


async def _outcome(call: IssuerCall) -> SignedEnvelope | CoalitionError:
    try:
        return await call.send()
    except CoalitionError as err:
        return err


def _authorize_receipt(auth: Row) -> xpb.AuthorizeReceipt:
    receipt = xpb.AuthorizeReceipt(
        authorization_id=auth.authorization_id,
        issuer_id=auth.issuer_id,
        member_id=auth.member_id,
        points=auth.points,
        value_fen=auth.value_fen,
        fee_fen=auth.fee_fen,
        rate_version=auth.rate_version,
        status=_STATUS[auth.status],
    )
    if auth.hold_expires_at is not None:
        receipt.hold_expires_at.FromDatetime(auth.hold_expires_at)
    return receipt


def _clearing(conn: Connection, auth_id: str) -> xpb.ClearingRecord:
    row = conn.execute(_CLEARING, {"auth": auth_id}).one()
    return _clearing_message(row._mapping)


def _clearing_message(row: Mapping[Any, Any]) -> xpb.ClearingRecord:
    record = xpb.ClearingRecord(
        **{name: row[name] for name in _CLEARING_FIELDS},
    )
    record.authorized_at.FromDatetime(row["authorized_at"])
    record.captured_at.FromDatetime(row["captured_at"])
    return record


_CLEARING_FIELDS = (
    "clearing_id",
    "authorization_id",
    "issuer_id",
    "acquirer_id",
    "member_id",
    "order_id",
    "points",
    "value_fen",
    "fee_fen",
    "rate_version",
    "settlement_period",
    "acquirer_envelope",
    "issuer_envelope",
)


# Built once, values bound at execution: SQLAlchemy memoizes a statement's cache key on the
# statement object, so a statement rebuilt per call is rebuilt and re-keyed per call (most of
# the CPU a redemption spent in SQLAlchemy, by cProfile). An UPDATE's SET clause is the
# parameters' keys beyond the WHERE clause's.
_AUTH = select(authorizations).where(authorizations.c.authorization_id == bindparam("auth"))
_OWNED = _AUTH.with_for_update()
_AUTH_BY_REQUEST = select(authorizations).where(
    authorizations.c.acquirer_id == bindparam("acquirer"),
    authorizations.c.request_id == bindparam("request"),
)
_UPDATE = update(authorizations).where(authorizations.c.authorization_id == bindparam("auth"))
_UPDATE_RETURNING = _UPDATE.returning(*authorizations.c)
_AUTHORIZED = (
    update(authorizations)
    .where(
        authorizations.c.authorization_id == bindparam("auth"), authorizations.c.status == "pending"
    )
    .returning(*authorizations.c)
)
_CLAIM_CAPTURE = (
    update(authorizations)
    .where(
        authorizations.c.authorization_id == bindparam("auth"),
        authorizations.c.acquirer_id == bindparam("acquirer"),
        authorizations.c.status == "authorized",
    )
    .returning(*authorizations.c)
)
_MARK_CAPTURED = update(authorizations).where(
    authorizations.c.authorization_id == bindparam("auth"), authorizations.c.status != "captured"
)
_FINISH = update(authorizations).where(
    authorizations.c.authorization_id == bindparam("auth"), authorizations.c.status != "captured"
)
_CLEARING = select(clearing_records).where(clearing_records.c.authorization_id == bindparam("auth"))
_INSERT_CLEARING = insert(clearing_records)
_INSERT_QUOTE = insert(quotes)
_QUOTE = select(quotes).where(quotes.c.quote_id == bindparam("quote"))
_OPEN: dict[str, Insert] = {}


def _open_statement(conn: Connection) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING RETURNING * of a new authorization, for `conn`'s dialect."""
    statement = _OPEN.get(conn.dialect.name)
    if statement is None:
        statement = _OPEN[conn.dialect.name] = insert_ignoring(conn, authorizations).returning(
            *authorizations.c
        )
    return statement
