"""The campaign workflow's activities: each talks to one merchant's node over its
RulesAdminService, with the admin token of the worker's node registry.

Idempotent by state, not by request: `apply_campaign` reads the node's newest program, builds
the program with the campaign in the wanted state, and applies it only if its digest differs —
run twice (a retry, a worker killed after the apply but before reporting it), the second run
finds the state in place and changes nothing. It applies on top of the version it read
(`base_version`), so a program changed meanwhile (by the merchant, or another campaign) is read
again on the retry rather than overwritten.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from temporalio import activity
from temporalio.exceptions import ApplicationError

from coalition.merchant.v1 import rules_admin_pb2 as rpb
from coalition_kernel.errors import CoalitionError, error_info_of
from merchant_node.client import RulesAdminClient
from merchant_node.ledger.programs import parse_stored
from merchant_node.rules.program import Program, with_campaign, without_campaign
from workflows.campaigns.documents import campaign_pools, campaign_rules
from workflows.campaigns.nodes import CampaignNodes
from workflows.campaigns.shared import (
    FiguresQuery,
    MerchantFigures,
    NodeChange,
    NodeChangeResult,
    OrderFigures,
    PoolQuery,
    PoolUsage,
)
from workflows.heartbeat import heartbeating

REFUSED = "CampaignRefused"  # the workflow records the merchant as refused; never retried


@dataclass
class CampaignActivities:
    nodes: CampaignNodes

    def all(self) -> list[Callable[..., object]]:
        return [self.apply_campaign, self.campaign_pool, self.campaign_figures]

    def _admin(self, merchant_id: str, final: bool = True) -> RulesAdminClient:
        node = self.nodes.get(merchant_id)
        if node is None:
            raise ApplicationError(
                f"merchant {merchant_id!r} is not in the worker's campaign nodes",
                type=REFUSED,
                non_retryable=final,
            )
        return RulesAdminClient(node.endpoint, node.admin_token)

    @activity.defn(name="apply_campaign")
    @heartbeating
    async def apply_campaign(self, change: NodeChange) -> NodeChangeResult:
        """Brings the merchant's program to the campaign's state. A refusal (an invalid program,
        a wrong token) is final when switching on; switching off is retried until it succeeds."""
        async with self._admin(change.merchant_id, change.active) as admin:
            try:
                return await _apply(admin, change)
            except grpc.aio.AioRpcError as err:
                raise _failure(change.merchant_id, err, final=change.active) from None
            except CoalitionError as err:
                raise ApplicationError(
                    f"{change.merchant_id}: {err.message}", type=REFUSED, non_retryable=True
                ) from None

    @activity.defn(name="campaign_pool")
    @heartbeating
    async def campaign_pool(self, query: PoolQuery) -> PoolUsage:
        async with self._admin(query.merchant_id) as admin:
            pools = await admin.budget_pools([query.pool_id])
        if not pools:
            return PoolUsage(query.merchant_id, query.pool_id, 0, 0)
        return PoolUsage(
            query.merchant_id, query.pool_id, pools[0].budget_points, pools[0].granted_points
        )

    @activity.defn(name="campaign_figures")
    @heartbeating
    async def campaign_figures(self, query: FiguresQuery) -> MerchantFigures:
        async with self._admin(query.merchant_id) as admin:
            res = await admin.campaign_report(
                query.campaign_id,
                (query.starts_at, query.ends_at),
                (query.baseline_starts_at, query.baseline_ends_at),
            )
        return MerchantFigures(
            merchant_id=query.merchant_id,
            budget_points=sum(pool.budget_points for pool in res.pools),
            points_granted=res.points_granted,
            points_cost_fen=res.points_cost_fen,
            fen_per_point=res.fen_per_point,
            participating=_orders(res.participating),
            control_group=_orders(res.control_group),
            window=_orders(res.window),
            baseline=_orders(res.baseline),
        )


async def _apply(admin: RulesAdminClient, change: NodeChange) -> NodeChangeResult:
    spec, merchant = change.spec, change.merchant_id
    versions = await admin.versions()
    newest = versions[0] if versions else None
    if newest is not None:
        in_force = await admin.in_force()
        if in_force is None or in_force.version != newest.version:
            # Changing it now would bring the scheduled version forward; retried until it is in.
            raise ApplicationError(
                f"{merchant}: program version {newest.version} is scheduled and not yet in force",
                type="ProgramScheduled",
            )
    current: Program | None = parse_stored(newest.document) if newest else None
    if change.active:
        rules = campaign_rules(spec, change.ends_at)
        wanted = with_campaign(current, spec.campaign_id, rules, campaign_pools(spec))
    elif newest is None:
        return NodeChangeResult(merchant, 0, False)
    else:
        wanted = without_campaign(current, spec.campaign_id)
    if newest is not None and wanted.digest() == newest.digest:
        return NodeChangeResult(merchant, newest.version, False)
    info = activity.info()
    applied = await admin.apply(
        json.dumps(wanted.to_document(), sort_keys=True, ensure_ascii=False),
        f"campaign {spec.campaign_id}: {change.step}",
        base_version=newest.version if newest else 0,
        request_id=f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}",
    )
    return NodeChangeResult(merchant, applied.version, True)


def _failure(merchant: str, err: grpc.aio.AioRpcError, final: bool) -> ApplicationError:
    info = error_info_of(err)
    reason = info.reason if info else err.code().name
    refused = err.code() in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
    )
    return ApplicationError(
        f"{merchant}: {reason}: {err.details()}",
        type=REFUSED if refused else "NodeUnavailable",
        non_retryable=refused and final,
    )


def _orders(figures: rpb.OrderFigures) -> OrderFigures:
    return OrderFigures(figures.orders, figures.revenue_fen, figures.points, figures.members)
