"""Member intelligence use cases, each in one transaction: definitions applied and listed,
the nightly steps (facts, placement, churn, triggers), one member's view, the at-risk list, a
trigger's report. Entrypoints (gRPC, CLI, Temporal activities) call these and nothing below."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select, update

from coalition_kernel.db import run_in_transaction
from coalition_kernel.errors import InvalidArgument, NotFound
from merchant_node.config import NotificationSettings
from merchant_node.ledger import rewards
from merchant_node.ledger.commands import check_id
from merchant_node.ledger.schema import members
from merchant_node.ledger.service import NodeLedger
from merchant_node.ledger.store import Context, find_member
from merchant_node.marketing import definitions as defs
from merchant_node.marketing import report, store, triggers
from merchant_node.marketing.actions import TriggerOutcome, run_trigger
from merchant_node.marketing.at_risk_share import NightlyOutcome, record_night
from merchant_node.marketing.facts import FactsScope, compute_facts
from merchant_node.marketing.schema import member_facts
from merchant_node.marketing.segments import Placement, Scores, place
from merchant_node.marketing.segments_sql import place_members
from merchant_node.notify.outbox import set_member_contact
from merchant_node.rules import tiers as tier_rules


@dataclass(frozen=True)
class MemberView:
    member_id: str
    facts: dict[str, Any]
    placement: Placement
    definitions_version: int


@dataclass(frozen=True)
class AtRisk:
    member_id: str
    segment: str
    cause: str
    recency_days: int
    p_alive_bps: int | None
    expected_orders_90d_milli: int | None
    spend_365d_fen: int


class MarketingService:
    def __init__(
        self,
        ledger: NodeLedger,
        notifications: NotificationSettings | None = None,
        *,
        merchant_id: str = "",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.ledger = ledger
        self.engine = ledger.engine
        self.settings = notifications or NotificationSettings()
        self.merchant_id = merchant_id
        self.clock = clock or ledger.clock

    # -- definitions -------------------------------------------------------------------------

    def validate(self, kind: str, document: str) -> str:
        """The canonical form of a valid document; DefinitionsInvalid lists what is wrong."""
        if kind == "segments":
            return defs.canonical(defs.parse_definitions(document))
        if kind == "triggers":
            return triggers.canonical(triggers.parse_triggers(document))
        raise InvalidArgument("UNKNOWN_DEFINITIONS", "kind must be segments or triggers")

    def apply(self, kind: str, document: str, applied_by: str) -> store.StoredDefinitions:
        """A new version (the same document again changes nothing); audited by who and when."""
        canonical = self.validate(kind, document)
        if not applied_by or len(applied_by) > 100:
            raise InvalidArgument("MISSING_FIELD", "applied_by must be 1-100 characters")
        now = self.clock()
        return run_in_transaction(
            self.engine, lambda c: store.add_definitions(c, kind, canonical, now, applied_by)
        )

    def versions(self, kind: str) -> list[store.StoredDefinitions]:
        return run_in_transaction(self.engine, lambda c: store.list_definitions(c, kind))

    def _segments(self, conn: Connection) -> tuple[defs.Definitions, int]:
        return store.current_segments(conn)

    def _triggers(self, conn: Connection) -> tuple[triggers.TriggerSet, int]:
        stored = store.latest_definitions(conn, "triggers")
        if stored is None:
            return triggers.TriggerSet(), 0
        return triggers.parse_triggers(stored.document), stored.version

    # -- the nightly steps (each idempotent: it replaces derived rows or decides once) --------

    def refresh_facts(self, as_of: datetime) -> int:
        scope = FactsScope(as_of, self.settings.timezone)
        return run_in_transaction(self.engine, lambda c: compute_facts(c, scope))

    def place_all(self, as_of: datetime) -> int:
        def work(conn: Connection) -> int:
            definitions, version = self._segments(conn)
            return place_members(conn, definitions, version, as_of)

        return run_in_transaction(self.engine, work)

    def evaluate_tiers(self, as_of: datetime) -> int:
        """Tiers go down after grace (rules/tiers.on_evaluation): on the program's evaluation
        day every member is evaluated; on other nights only members whose grace has ended.
        Returns how many members were evaluated."""
        program = self.ledger.program()
        if program is None or program.tiers is None:
            return 0
        today = as_of.astimezone(ZoneInfo(program.timezone)).date()
        evaluation_day = tier_rules.next_evaluation(program.tiers, today) == today

        def work(conn: Connection) -> int:
            query = select(members).where(members.c.tier.is_not(None))
            if not evaluation_day:
                query = query.where(members.c.tier_grace_until <= as_of)
            rows = conn.execute(query.order_by(members.c.id).with_for_update()).all()
            for member in rows:
                rewards.evaluate_tier(conn, member, program, as_of)
            return len(rows)

        return run_in_transaction(self.engine, work)

    def score_churn(self, as_of: datetime) -> bool:
        """Fits the model on every member's history and stores their scores; False when there
        is too little history for a model (scores left empty)."""
        from merchant_node.marketing import churn_store

        zone = self.settings.timezone
        return run_in_transaction(self.engine, lambda c: churn_store.score_all(c, as_of, zone))

    def record_run(self, as_of: datetime) -> NightlyOutcome:
        """The night's at-risk share, kept per day; `warned` when it rose the merchant's
        `churn.warn_jump_bps` or more over the previous night's, and then one warning to the
        merchant is in the outbox (merchant_node/marketing/at_risk_share.py)."""
        day = as_of.astimezone(ZoneInfo(self.settings.timezone)).date().isoformat()

        def work(conn: Connection) -> NightlyOutcome:
            definitions, _ = self._segments(conn)
            return record_night(
                conn, definitions.churn, day, as_of, self.settings, self.merchant_id
            )

        return run_in_transaction(self.engine, work)

    def run_triggers(self, as_of: datetime) -> list[TriggerOutcome]:
        """Each enabled trigger in its own transaction: decisions, messages, bonuses, coupons."""
        trigger_set, version = run_in_transaction(self.engine, self._triggers)
        program = self.ledger.program()  # its tiers, for near_next_tier triggers
        tiers = program.tiers if program is not None else None
        ctx = Context(
            as_of, None, self.ledger.rate.version, self.ledger.rules.version, lambda: as_of
        )
        outcomes = []
        for trigger in trigger_set.triggers:
            if not trigger.enabled:
                continue
            outcomes.append(
                run_in_transaction(
                    self.engine,
                    lambda c, t=trigger: run_trigger(  # type: ignore[misc]
                        c, t, trigger_set, version, ctx, self.settings, self.merchant_id, tiers
                    ),
                )
            )
        return outcomes

    # -- one member, lists, reports ----------------------------------------------------------

    def member(self, member_id: str) -> MemberView:
        """The member's facts recomputed now, their segment, tags and cause with the reasons."""
        check_id("member_id", member_id)
        now = self.clock()

        def work(conn: Connection) -> MemberView:
            member = find_member(conn, member_id)
            definitions, version = self._segments(conn)
            stored = store.segment_of(conn, member.id)
            churn = store.facts_of(conn, member.id)
            compute_facts(conn, FactsScope(now, self.settings.timezone, member.id))
            if churn is not None:  # the nightly model's scores stay until the next night
                conn.execute(
                    update(member_facts)
                    .where(member_facts.c.member_pk == member.id)
                    .values(
                        p_alive_bps=churn.p_alive_bps,
                        expected_orders_90d_milli=churn.expected_orders_90d_milli,
                        expected_order_value_fen=churn.expected_order_value_fen,
                    )
                )
            row = store.facts_of(conn, member.id)
            assert row is not None
            facts = dict(row._mapping)
            scores = None
            if definitions.rfm.method == "quantiles" and stored is not None:
                scores = Scores(stored.r_score, stored.f_score, stored.m_score)
            placement = place(definitions, facts, scores)
            place_members(conn, definitions, version, now, member.id)
            return MemberView(member_id, facts, placement, version)

        return run_in_transaction(self.engine, work)

    def stored_member(self, member_id: str) -> MemberView | None:
        """The member as the last nightly run left them, read only (GetMemberProfile, read
        scope): the stored facts placed in Python for the reasons; None before any run."""
        check_id("member_id", member_id)

        def work(conn: Connection) -> MemberView | None:
            member = find_member(conn, member_id)
            row = store.facts_of(conn, member.id)
            if row is None:
                return None
            definitions, version = self._segments(conn)
            stored = store.segment_of(conn, member.id)
            scores = None
            if definitions.rfm.method == "quantiles" and stored is not None:
                scores = Scores(stored.r_score, stored.f_score, stored.m_score)
            facts = dict(row._mapping)
            return MemberView(member_id, facts, place(definitions, facts, scores), version)

        return run_in_transaction(self.engine, work)

    def at_risk(self, limit: int = 100) -> list[AtRisk]:
        """Members of at-risk segments, most at risk first: fewest expected orders (the model,
        when fitted), then longest silence; each with the likely cause."""
        if not 1 <= limit <= 10_000:
            raise InvalidArgument("PAGE_SIZE_OUT_OF_RANGE", "limit must be 1-10000")

        def work(conn: Connection) -> list[AtRisk]:
            return [AtRisk(*row) for row in store.at_risk(conn, limit)]

        return run_in_transaction(self.engine, work)

    def trigger_report(self, trigger_id: str) -> report.TriggerReport:
        def work(conn: Connection) -> report.TriggerReport:
            trigger_set, _ = self._triggers(conn)
            found = [t for t in trigger_set.triggers if t.id == trigger_id]
            if not found:
                raise NotFound("TRIGGER_NOT_FOUND", f"no trigger {trigger_id!r}")
            return report.trigger_report(conn, found[0], self.clock())

        return run_in_transaction(self.engine, work)

    def set_contact(
        self,
        member_id: str,
        *,
        email: str | None,
        preferred_channel: str | None,
        quiet_hours: str | None,
    ) -> None:
        check_id("member_id", member_id)
        now = self.clock()
        run_in_transaction(
            self.engine,
            lambda c: set_member_contact(
                c,
                member_id,
                now,
                email=email,
                preferred_channel=preferred_channel,
                quiet_hours=quiet_hours,
            ),
        )
