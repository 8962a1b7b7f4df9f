"""A member's portfolio: her balances at the issuers she lets the asking merchant see.

Only with her proof: one portfolio code per issuer (coalition_kernel.consent, purpose
"portfolio", bound to the asking merchant), checked by that issuer. Without any, the call is
refused before anything is looked up, so a known and an unknown member id get the same answer in
the same time; an issuer that refuses a code answers the same for a member it does not know.

The fan-out is bounded so one dead shop cannot slow everyone: at most `concurrency` issuer calls
at once across all portfolios, each with its own deadline, and a circuit breaker per issuer that
stops asking one that keeps timing out (its line says unreachable at once) until it cools down.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition.issuer.v1 import issuer_pb2 as ipb
from coalition_kernel.errors import CoalitionError, InvalidArgument, PermissionDenied
from exchange import registry
from merchant_node.ledger.commands import check_id

MAX_CONSENTS = 64
_NOT_ANSWERED = ("UNAVAILABLE", "DEADLINE_EXCEEDED")


@dataclass(frozen=True)
class FanOut:
    concurrency: int = 32  # issuer calls in flight for portfolios, all callers together
    deadline: float = 2.0  # seconds per issuer, waiting for a slot included
    breaker_failures: int = 3  # consecutive timeouts/unreachable that open an issuer's breaker
    breaker_cooldown: float = 30.0  # seconds before an open breaker lets one call try again


class Breaker:
    """Per-issuer circuit breaker: closed → open after N straight failures → half-open after the
    cooldown (one trial call; success closes it, failure opens it again)."""

    def __init__(
        self, failures: int, cooldown: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failures = failures
        self.cooldown = cooldown
        self.clock = clock
        self._streak: dict[str, int] = {}
        self._open_until: dict[str, float] = {}

    def allow(self, key: str) -> bool:
        until = self._open_until.get(key)
        if until is None:
            return True
        if self.clock() < until:
            return False
        self._open_until[key] = self.clock() + self.cooldown  # half-open: this one call tries
        return True

    def record(self, key: str, answered: bool) -> None:
        if answered:
            self._streak.pop(key, None)
            self._open_until.pop(key, None)
            return
        streak = self._streak.get(key, 0) + 1
        self._streak[key] = streak
        if streak >= self.failures:
            self._open_until[key] = self.clock() + self.cooldown


Ask = Callable[..., Awaitable[tuple[ipb.MemberBalanceReceipt, SignedEnvelope]]]


class Portfolios:
    def __init__(
        self,
        ask: Ask,
        merchants: Callable[[], Awaitable[list[registry.Merchant]]],
        settings: FanOut | None = None,
    ) -> None:
        self.ask = ask
        self.merchants = merchants
        self.settings = settings or FanOut()
        self.slots = asyncio.Semaphore(self.settings.concurrency)
        self.breaker = Breaker(self.settings.breaker_failures, self.settings.breaker_cooldown)

    async def portfolio(
        self, cmd: xpb.PortfolioCommand, envelope: SignedEnvelope
    ) -> xpb.PortfolioReceipt:
        check_id("member_id", cmd.member_id)
        if not cmd.consents:
            raise PermissionDenied(
                "CONSENT_REQUIRED",
                "a portfolio needs the member's proof: her wallet's portfolio code for each "
                "issuer she lets you see",
            )
        codes = _checked_consents(cmd.consents)
        listed = [m for m in await self.merchants() if m.merchant_id in codes]
        by_id = {m.merchant_id: m for m in listed if m.status == "active"}

        async def line(issuer_id: str) -> xpb.IssuerBalance:
            issuer = by_id.get(issuer_id)
            if issuer is None:  # not an active merchant of the coalition
                return xpb.IssuerBalance(issuer_id=issuer_id, reachable=False)
            return await self._one(issuer, cmd.member_id, codes[issuer_id], envelope.signer_id)

        lines = await asyncio.gather(*(line(i) for i in codes))
        return xpb.PortfolioReceipt(member_id=cmd.member_id, balances=lines)

    async def _one(
        self, issuer: registry.Merchant, member_id: str, code: str, acquirer_id: str
    ) -> xpb.IssuerBalance:
        out = xpb.IssuerBalance(issuer_id=issuer.merchant_id, display_name=issuer.display_name)
        if not self.breaker.allow(issuer.merchant_id):
            return out  # reachable=False at once: it kept timing out
        command = ipb.MemberBalanceCommand(
            member_id=member_id, consent_code=code, acquirer_id=acquirer_id
        )
        started = time.monotonic()
        try:
            await asyncio.wait_for(self.slots.acquire(), self.settings.deadline)
        except TimeoutError:
            return out  # too busy to ask in time; not the issuer's fault
        try:
            remaining = max(self.settings.deadline - (time.monotonic() - started), 0.05)
            receipt, _ = await self.ask(
                issuer, "GetMemberBalance", command, f"p-{uuid.uuid4().hex}", timeout=remaining
            )
        except CoalitionError as err:
            answered = err.code.name not in _NOT_ANSWERED
            self.breaker.record(issuer.merchant_id, answered)
            if answered and err.code.name in ("PERMISSION_DENIED", "RESOURCE_EXHAUSTED"):
                out.consent_refused = True
            out.reachable = answered
            return out
        finally:
            self.slots.release()
        self.breaker.record(issuer.merchant_id, True)
        value = receipt.available_points * issuer.fen_per_point
        out.available_points = receipt.available_points
        out.value_fen = value.numerator // value.denominator
        out.reachable = True
        return out


def _checked_consents(consents: list[xpb.IssuerConsent]) -> dict[str, str]:  # type: ignore[valid-type]
    if len(consents) > MAX_CONSENTS:
        raise InvalidArgument("TOO_MANY_CONSENTS", f"at most {MAX_CONSENTS} issuers per portfolio")
    codes: dict[str, str] = {}
    for c in consents:
        check_id("consents.issuer_id", c.issuer_id)
        if c.issuer_id in codes:
            raise InvalidArgument("DUPLICATE_ISSUER", f"{c.issuer_id} is named twice")
        if not (
            c.consent_code.isascii() and c.consent_code.isdigit() and len(c.consent_code) <= 10
        ):
            raise InvalidArgument("MALFORMED_CONSENT", "consent_code is the wallet's 6-digit code")
        codes[c.issuer_id] = c.consent_code
    return codes
