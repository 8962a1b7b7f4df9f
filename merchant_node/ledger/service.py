"""The node's service layer: each use case in one transaction, idempotent by request id."""

from __future__ import annotations

import secrets
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError

from coalition_kernel import consent as codes
from coalition_kernel.db import run_in_transaction, utc_now
from coalition_kernel.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from coalition_kernel.group_commit import GroupCommit
from coalition_kernel.points import Rate, format_ratio, parse_ratio
from merchant_node.auth import vault
from merchant_node.auth.domain import limit_exceeded
from merchant_node.auth.vault import WalletKeys
from merchant_node.ledger import (
    audit,
    consent,
    earning,
    expiry,
    holds,
    orders,
    programs,
    queries,
    rewards,
    statement,
)
from merchant_node.ledger.commands import (
    Earn,
    Enroll,
    PlaceHold,
    PostHold,
    Redeem,
    Refund,
    check_id,
)
from merchant_node.ledger.earning import EarnPolicy, EarnResult
from merchant_node.ledger.idempotency import run_idempotent
from merchant_node.ledger.orders import RedeemResult, RefundResult
from merchant_node.ledger.schema import members, rate_versions
from merchant_node.ledger.store import Context, find_member, lock_member
from merchant_node.rules import tiers
from merchant_node.rules.base import BaseRateRules, EarningRules
from merchant_node.rules.program import Program

R = TypeVar("R")
_REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at a till


class _OverLimit(Exception):
    """Not a CoalitionError: it rolls the transaction back without recording a refusal."""

    def __init__(self, asked: int, limit: int) -> None:
        super().__init__(asked, limit)
        self.asked, self.limit = asked, limit


def _within(limit: int | None, points: int) -> None:
    if limit is not None and points > limit:
        raise _OverLimit(points, limit)


def _limited(field: str, run: Callable[[], R]) -> R:
    try:
        return run()
    except _OverLimit as over:
        raise limit_exceeded(field, over.asked, over.limit) from None


@dataclass(frozen=True)
class EnrollResult:
    member_id: str
    referral_code: str
    referred_by_code: str
    enrolled_at: datetime
    wallet_secret: str


class NodeLedger:
    """A merchant's points ledger. Thread-safe: share one per process."""

    def __init__(
        self,
        engine: Engine,
        *,
        rules: EarningRules | None = None,
        policy: EarnPolicy | None = None,
        clock: Callable[[], datetime] = utc_now,
        wallet_keys: WalletKeys | None = None,
    ) -> None:
        self.engine = engine
        # Seals members' wallet secrets (merchant_node/auth/vault.py); without it the node
        # cannot enroll (it never stores a wallet secret in clear).
        self.wallet_keys = wallet_keys
        self.rules = rules or BaseRateRules()
        self.policy = policy or EarnPolicy()
        self.clock = clock
        self._rate: Rate | None = None
        self._programs: dict[int, Program] = {}
        self._versions: list[tuple[int, datetime]] | None = None
        self._versions_read = 0.0
        self._groups: tuple[GroupCommit, ...] = ()

    def use_group_commit(self, *groups: GroupCommit) -> None:
        """Applies the POS's hot writes (earn, redeem) through group committers: the requests
        in flight are committed together, each in its own savepoint with its own answer. A
        member's requests always go to the same committer, so two batches never wait for each
        other's members. With none, one transaction per request again. The server turns it on
        (merchant_node/server.py)."""
        self._groups = groups

    def _hot(self, member_id: str) -> Callable[[Callable[[Connection], Any]], Any] | None:
        groups = self._groups
        if not groups:
            return None
        return groups[zlib.crc32(member_id.encode()) % len(groups)].run_blocking

    # -- rates -------------------------------------------------------------------------------

    def configure_rate(self, points_per_yuan: str, fen_per_point: str) -> Rate:
        """Makes these rates current, as a new rate version if they differ from the current one.
        History keeps the version it was written at: a new rate never revalues it."""
        ppy, fpp = parse_ratio(points_per_yuan), parse_ratio(fen_per_point)

        def work(conn: Connection) -> Rate:
            row = conn.execute(
                select(rate_versions).order_by(rate_versions.c.version.desc()).limit(1)
            ).first()
            if row is not None and (
                parse_ratio(row.points_per_yuan) == ppy
                and parse_ratio(row.fen_per_point) == fpp
                and row.rule_version == self.rules.version
            ):
                return Rate(row.version, ppy, fpp)
            version = 1 if row is None else row.version + 1
            conn.execute(
                rate_versions.insert().values(
                    version=version,
                    points_per_yuan=format_ratio(ppy),
                    fen_per_point=format_ratio(fpp),
                    rule_version=self.rules.version,
                    effective_from=self.clock(),
                )
            )
            return Rate(version, ppy, fpp)

        self._rate = run_in_transaction(self.engine, work)
        return self._rate

    @property
    def rate(self) -> Rate:
        if self._rate is None:
            raise RuntimeError("configure_rate() must run before the ledger serves requests")
        return self._rate

    def _context(self, request_id: str | None) -> Context:
        return Context(self.clock(), request_id, self.rate.version, self.rules.version, self.clock)

    # -- use cases ---------------------------------------------------------------------------

    def enroll(self, cmd: Enroll) -> EnrollResult:
        """Enrolls a member; a second enrollment of the same member is ALREADY_EXISTS.

        Her wallet secret is sealed (never stored in clear, not even in the idempotency record);
        a retry returns it again only to the client that enrolled her (`cmd.client_id` is part
        of the request, so another client's same request id is REQUEST_ID_REUSED)."""
        keys = self.wallet_keys
        if keys is None:
            raise FailedPrecondition(
                "WALLET_KEY_MISSING", "this node has no wallet key; it cannot enroll members"
            )

        def work(conn: Connection) -> EnrollResult:
            if conn.execute(
                select(members.c.id).where(members.c.member_id == cmd.member_id)
            ).first():
                raise AlreadyExists(
                    "MEMBER_ALREADY_ENROLLED", f"member {cmd.member_id} is already enrolled"
                )
            now = self.clock()
            referrer = None
            if cmd.referral_code:
                referrer = conn.execute(
                    select(members.c.id).where(members.c.referral_code == cmd.referral_code)
                ).scalar()
                if referrer is None:
                    raise NotFound(
                        "REFERRAL_CODE_UNKNOWN",
                        f"no member has referral code {cmd.referral_code}; enroll without it",
                    )
            code = "".join(secrets.choice(_REFERRAL_ALPHABET) for _ in range(8))
            wallet_secret = consent.new_wallet_secret()
            try:
                conn.execute(
                    members.insert().values(
                        member_id=cmd.member_id,
                        phone=cmd.phone or None,
                        display_name=cmd.display_name or None,
                        referral_code=code,
                        referred_by_code=cmd.referral_code or None,
                        enrolled_at=now,
                        lifetime_earned=0,
                        debt=0,
                        birth_month=cmd.birth_month or None,
                        referred_by_pk=referrer,
                        checkin_streak=0,
                        **vault.sealed_values(keys, cmd.member_id, wallet_secret),
                    )
                )
            except IntegrityError as exc:  # a concurrent enrollment of the same member won
                raise AlreadyExists(
                    "MEMBER_ALREADY_ENROLLED", f"member {cmd.member_id} is already enrolled"
                ) from exc
            return EnrollResult(cmd.member_id, code, cmd.referral_code, now, "")

        enrolled = run_idempotent(self.engine, "enroll", cmd, EnrollResult, work, self.clock)
        with self.engine.connect() as conn:
            member = find_member(conn, enrolled.member_id)
        return replace(enrolled, wallet_secret=vault.wallet_secret_of(member))

    def earn(self, cmd: Earn, *, max_points: int | None = None) -> EarnResult:
        """Awards the points the program in force gives for a purchase; one earning per order.

        Above `max_points` (the calling client's limit) it is refused LIMIT_EXCEEDED and nothing
        is written, not even the refusal (the limit is the caller's, not the request's)."""

        def work(conn: Connection) -> EarnResult:
            ctx = self._context(cmd.request_id)
            program, version = self._program_at(conn, ctx.now)
            ctx = earning.with_rule_version(ctx, version)
            res = earning.earn(conn, cmd, ctx, self.rate, self.rules, program, self.policy)
            _within(max_points, res.points_earned)
            return res

        return _limited(
            "points_earned",
            lambda: run_idempotent(
                self.engine,
                "earn",
                cmd,
                EarnResult,
                work,
                self.clock,
                run=self._hot(cmd.member_id),
                record_first=True,
            ),
        )

    # -- the program (rules as data) ---------------------------------------------------------

    def _program_at(self, conn: Connection, at: datetime) -> tuple[Program | None, str]:
        """The program in force at `at` and its rule version; the base rate if none is applied.

        The list of versions is re-read at most once a second (and at once after this process
        applies one): another process's new version takes effect here within a second."""
        if self._versions is None or time.monotonic() - self._versions_read > 1.0:
            self._versions = programs.schedule(conn)
            self._versions_read = time.monotonic()
        version = next((v for v, start in self._versions if start <= at), None)
        if version is None:
            return None, self.rules.version
        if version not in self._programs:
            self._programs[version] = programs.parse_stored(programs.get(conn, version).document)
        return self._programs[version], f"program-{version}"

    def program(self) -> Program | None:
        return run_in_transaction(self.engine, lambda conn: self._program_at(conn, self.clock())[0])

    def apply_program(
        self,
        text: str,
        applied_by: str,
        effective_from: datetime | None = None,
        *,
        base_version: int | None = None,
    ) -> programs.ProgramVersion:
        """Validates the whole program and records it as the next version (from its effective
        time); an invalid one is refused whole and the previous program stays in force.

        With `base_version`, only on top of that version (ABORTED/PROGRAM_CHANGED otherwise),
        checked in the transaction that applies: SQLite serializes writers, and on PostgreSQL
        a concurrent apply takes the same version number and one of the two fails on the
        primary key. A read-change-apply caller (a campaign) never drops another's change."""
        now = self.clock()

        def work(conn: Connection) -> programs.ProgramVersion:
            if base_version is not None:
                newest = next(iter(programs.schedule(conn)), (0, now))[0]
                if newest != base_version:
                    raise Aborted(
                        "PROGRAM_CHANGED",
                        f"the newest program version is {newest}, not {base_version}: "
                        "read it again",
                    )
            return programs.apply(conn, text, effective_from or now, applied_by, now)

        applied = run_in_transaction(self.engine, work)
        self._versions = None  # re-read at the next use
        return applied

    def program_version(self, version: int = 0) -> programs.ProgramVersion:
        def work(conn: Connection) -> programs.ProgramVersion:
            wanted = version or programs.in_force_version(conn, self.clock())
            if not wanted:
                raise NotFound(
                    "PROGRAM_NOT_FOUND", "no program is applied; the base rate is in force"
                )
            return programs.get(conn, wanted)

        return run_in_transaction(self.engine, work)

    def program_history(self) -> list[programs.ProgramVersion]:
        return run_in_transaction(self.engine, programs.history)

    # -- engagement and tiers ----------------------------------------------------------------

    def _with_program(self, request_id: str, member_id: str, action):  # type: ignore[no-untyped-def]
        def work(conn: Connection):  # type: ignore[no-untyped-def]
            member = lock_member(conn, member_id=member_id)
            ctx = self._context(request_id).after_lock()
            program, version = self._program_at(conn, ctx.now)
            if program is None:
                raise FailedPrecondition("NOT_OFFERED", "no points program is applied at this node")
            return action(conn, earning.with_rule_version(ctx, version), member, program)

        return work

    def check_in(self, request_id: str, member_id: str) -> rewards.RewardResult:
        """Today's check-in, with the program's streak bonuses; once a day."""
        cmd = _MemberAction(request_id, member_id, "check_in")
        work = self._with_program(request_id, member_id, rewards.check_in)
        return run_idempotent(self.engine, "check_in", cmd, rewards.RewardResult, work, self.clock)

    def engage(
        self, request_id: str, member_id: str, kind: str, reference: str
    ) -> rewards.RewardResult:
        """A review's or share's reward, within the program's daily limit; each reference once."""
        cmd = _MemberAction(request_id, member_id, kind, check_id("reference", reference))
        work = self._with_program(
            request_id,
            member_id,
            lambda c, ctx, m, p: rewards.engage(c, ctx, m, p, kind, reference),
        )
        return run_idempotent(self.engine, "engage", cmd, rewards.RewardResult, work, self.clock)

    def upgrade_tier(self, request_id: str, member_id: str, target: str) -> rewards.TierUpgrade:
        """Buys a tier with points, where the program sells it."""
        cmd = _MemberAction(request_id, member_id, "upgrade", check_id("target_tier", target))
        work = self._with_program(
            request_id,
            member_id,
            lambda c, ctx, m, p: rewards.upgrade_tier(c, ctx, m, p, target, request_id),
        )
        return run_idempotent(
            self.engine, "upgrade_tier", cmd, rewards.TierUpgrade, work, self.clock
        )

    def profile(self, member_id: str) -> Profile:
        """The member's tier, progress to the next, and pending points."""
        check_id("member_id", member_id)

        def work(conn: Connection) -> Profile:
            member = find_member(conn, member_id)
            now = self.clock()
            program, _ = self._program_at(conn, now)
            pending = queries.balance(conn, member_id, now, 30).pending_points
            if program is None or program.tiers is None:
                return Profile(member, "", "", "", 0, 0, None, pending)
            value = rewards.measure_value(conn, member.id, program, now)
            current = member.tier or program.tiers.levels[0].id
            step = tiers.progress(program.tiers, current, value)
            threshold = (
                tiers.level(program.tiers, step.next_level).threshold if step.next_level else 0
            )
            return Profile(
                member,
                current,
                step.next_level or "",
                program.tiers.measure,
                value,
                threshold,
                member.tier_grace_until,
                pending,
            )

        return run_in_transaction(self.engine, work)

    def evaluate_tiers(self) -> int:
        """The evaluation date's pass over every member (downgrades after grace); returns how
        many members it looked at. Run it from a schedule on the program's evaluation day."""

        def work(conn: Connection) -> int:
            program, _ = self._program_at(conn, self.clock())
            if program is None or program.tiers is None:
                return 0
            rows = conn.execute(select(members).order_by(members.c.id).with_for_update()).all()
            for member in rows:
                rewards.evaluate_tier(conn, member, program, self.clock())
            return len(rows)

        return run_in_transaction(self.engine, work)

    def redeem(self, cmd: Redeem, *, max_points: int | None = None) -> RedeemResult:
        """Spends points on an order, earliest-expiring lots first; never overdraws. Above
        `max_points` (the calling client's limit): LIMIT_EXCEEDED, nothing written."""

        def work(conn: Connection) -> RedeemResult:
            res = orders.redeem(conn, cmd, self._context(cmd.request_id), self.rate)
            _within(max_points, res.points_redeemed)
            return res

        return _limited(
            "points_redeemed",
            lambda: run_idempotent(
                self.engine,
                "redeem",
                cmd,
                RedeemResult,
                work,
                self.clock,
                run=self._hot(cmd.member_id),
                record_first=True,
            ),
        )

    def refund(self, cmd: Refund) -> RefundResult:
        """Claws back a refunded order's points and gives back what it redeemed."""
        return run_idempotent(
            self.engine,
            "refund",
            cmd,
            RefundResult,
            lambda conn: orders.refund(conn, cmd, self._context(cmd.request_id)),
            self.clock,
        )

    def place_hold(self, cmd: PlaceHold, *, require_consent: bool = True) -> holds.HoldResult:
        """Reserves specific lots for a cross-merchant redemption until posted, voided or lapsed.

        With `require_consent`, the member's bound consent code must be valid and unused; a
        wrong one is counted (and may lock her out) in a transaction of its own.
        """
        try:
            return run_idempotent(
                self.engine,
                "place_hold",
                cmd,
                holds.HoldResult,
                lambda conn: holds.place_hold(
                    conn, cmd, self._context(cmd.request_id), require_consent=require_consent
                ),
                self.clock,
                record_first=True,
            )
        except consent.ConsentFailure as wrong:
            failure = wrong  # the except variable is gone once the block ends
        raise run_in_transaction(
            self.engine, lambda conn: consent.record_failure(conn, failure, self.clock())
        )

    def post_hold(
        self, request_id: str, hold_ref: str, settlement_period: str = ""
    ) -> holds.HoldResult:
        """Spends a pending, unexpired hold's points, booked in the exchange's settlement period
        (a day "YYYY-MM-DD", or none); a lapsed hold is refused (HOLD_EXPIRED)."""
        cmd = PostHold(request_id, hold_ref, settlement_period)
        # Without a period the request hashes as before periods existed, so a post recorded
        # then still answers its retry instead of being refused as a reuse of its id.
        body = cmd if settlement_period else _HoldAction(request_id, hold_ref)
        return run_idempotent(
            self.engine,
            "post_hold",
            body,
            holds.HoldResult,
            lambda conn: holds.post_hold(conn, cmd, self._context(request_id)),
            self.clock,
            record_first=True,
        )

    def void_hold(self, request_id: str, hold_ref: str) -> holds.HoldResult:
        """Releases a pending hold's points back to their lots."""
        cmd = _HoldAction(request_id, check_id("hold_ref", hold_ref))
        return run_idempotent(
            self.engine,
            "void_hold",
            cmd,
            holds.HoldResult,
            lambda conn: holds.void_hold(conn, hold_ref, self._context(request_id)),
            self.clock,
        )

    def expire_due(self, *, batch: int = expiry.DEFAULT_BATCH, now: datetime | None = None) -> int:
        """Writes down lapsed holds and expired lots, set-based, `batch` rows per transaction;
        returns the member write-downs (0: nothing was due). See `run_expiry`."""
        return self.run_expiry(batch=batch, now=now).members

    def run_expiry(
        self,
        *,
        batch: int = expiry.DEFAULT_BATCH,
        now: datetime | None = None,
        run_id: str | None = None,
    ) -> expiry.ExpiryRun:
        """Releases the holds lapsed at `now` (default: the clock), then expires the lots due
        at `now` to BREAKAGE, in batches; what it wrote down. Idempotent: running again at the
        same `now` changes nothing. `run_id` is recorded as the journal's request id."""
        ctx = Context(
            now or self.clock(), run_id, self.rate.version, self.rules.version, self.clock
        )
        return expiry.expire_due(self.engine, ctx, batch=batch)

    def breakage_report(
        self, start: datetime, end: datetime, *, timezone: str = "Asia/Shanghai", by: str = "day"
    ) -> expiry.BreakageReport:
        """Points expired in [start, end) per local day or month and per rate version, with
        their value in fen at the rate they were issued at."""
        return run_in_transaction(
            self.engine, lambda conn: expiry.breakage_report(conn, start, end, timezone, by)
        )

    def statement(self, query: statement.StatementQuery) -> statement.StatementPage:
        """One page of what this node booked for a settlement period, as issuer or acquirer."""
        return run_in_transaction(self.engine, lambda conn: statement.statement_page(conn, query))

    def audit(self) -> list[str]:
        """The ledger's laws checked against the stored state: what is violated, if anything."""
        return run_in_transaction(self.engine, audit.violations)

    def balance(self, member_id: str, expiring_within_days: int = 30) -> queries.Balance:
        """The member's balance now: available, held, expiring soon, lifetime, debt."""
        check_id("member_id", member_id)
        if not 0 <= expiring_within_days <= 3650:
            raise InvalidArgument("DAYS_OUT_OF_RANGE", "expiring_within_days must be 0-3650")
        now = self.clock()
        return run_in_transaction(
            self.engine,
            lambda conn: queries.balance(conn, member_id, now, expiring_within_days or 30),
        )

    def consented_balance(
        self, member_id: str, code: str, issuer_id: str, acquirer_id: str
    ) -> queries.Balance:
        """The member's balance for `acquirer_id`'s portfolio, only with her portfolio code;
        a member unknown here is refused exactly like a wrong code (CONSENT_INVALID)."""
        check_id("member_id", member_id)
        binding = consent.Binding(codes.PORTFOLIO, issuer_id, acquirer_id)

        def check(conn: Connection) -> None:
            member = conn.execute(select(members).where(members.c.member_id == member_id)).first()
            consent.accept(conn, member, code, binding, self.clock())

        try:
            run_in_transaction(self.engine, check)
            return self.balance(member_id)
        except consent.ConsentFailure as wrong:
            failure = wrong
        raise run_in_transaction(
            self.engine, lambda conn: consent.record_failure(conn, failure, self.clock())
        )

    def history(
        self, member_id: str, page_size: int = 20, page_token: str = ""
    ) -> tuple[list[queries.HistoryEntry], str]:
        """The member's journal, newest first, and the token of the next page."""
        check_id("member_id", member_id)
        if not 0 <= page_size <= 100:
            raise InvalidArgument("PAGE_SIZE_OUT_OF_RANGE", "page_size must be 1-100 (0 means 20)")
        return run_in_transaction(
            self.engine,
            lambda conn: queries.history(conn, member_id, page_size or 20, page_token),
        )


@dataclass(frozen=True)
class Profile:
    member: Any
    tier: str
    next_tier: str
    measure: str
    measure_value: int
    next_threshold: int
    grace_until: datetime | None
    pending_points: int


@dataclass(frozen=True)
class _MemberAction:
    request_id: str
    member_id: str
    action: str
    reference: str = ""

    def __post_init__(self) -> None:
        check_id("request_id", self.request_id, max_len=128)
        check_id("member_id", self.member_id)


@dataclass(frozen=True)
class _HoldAction:
    request_id: str
    hold_ref: str

    def __post_init__(self) -> None:
        check_id("request_id", self.request_id, max_len=128)
