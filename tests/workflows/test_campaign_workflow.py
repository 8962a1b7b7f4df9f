"""Campaigns on the time-skipping test server, against real nodes (gRPC servers over SQLite and
PostgreSQL): a weekend campaign starts on time, hits its budget and stops early; an extended one
earns past its first end and reports an ROI equal to the hand-computed one; a cancelled one is
switched off at once. The ledgers' clock follows the test server's, where orders happen."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.worker import Worker

from coalition_cli.campaign_cmd import render_report
from coalition_cli.main import main
from coalition_kernel.db import utc_now
from merchant_node.client import MerchantNodeClient
from merchant_node.ledger.schema import budget_pools
from merchant_node.ledger.service import NodeLedger
from merchant_node.rules.engine import in_control_group
from merchant_node.rules.program import ControlGroup
from merchant_node.server import build_server
from tests.conftest import FakeClock, issue_key, open_test_ledger
from tests.workflows.crash_harness import CrashingWorker, attempts
from tests.workflows.test_settlement_workflow import replay_and_keep
from workflows.campaigns import campaign_activities
from workflows.campaigns.nodes import NodeAccess
from workflows.campaigns.shared import (
    OPERATOR,
    CampaignRule,
    CampaignSpec,
    CampaignStatus,
    Cancel,
    Extend,
)
from workflows.campaigns.workflows import CampaignWorkflow

SHANGHAI = ZoneInfo("Asia/Shanghai")
BASE_PROGRAM = (
    'timezone: Asia/Shanghai\nrules: [{id: birthday, type: birthday_multiplier, multiplier: "2"}]\n'
)
WEEKEND = [CampaignRule(multiplier="2", days_of_week=["sat", "sun"])]


@dataclass
class Shop:
    merchant_id: str
    ledger: NodeLedger
    target: str
    # The node's API key (every scope): the shop's POS and the campaign worker's admin calls.
    key: str

    async def earn(self, member: str, order: str, fen: int) -> dict[str, int]:
        """Earns at the node; the breakdown as {rule id: points}."""
        async with MerchantNodeClient(self.target, api_key=self.key) as client:
            res = await client.earn(member, f"{self.merchant_id}-{order}", fen)
        return {line.rule_id: line.points for line in res.breakdown}

    def versions(self) -> list[int]:
        return [v.version for v in self.ledger.program_history()]


@pytest_asyncio.fixture
async def shops(new_database, clock) -> AsyncIterator[dict[str, Shop]]:  # type: ignore[no-untyped-def]
    """Two merchants' nodes with the admin service on, each with its own program and members."""
    running = []
    shops = {}
    try:
        for name in ("tea", "noodles"):
            ledger = open_test_ledger(new_database(name), clock)
            server, offload = build_server(ledger, "127.0.0.1:0")
            running.append((server, offload, ledger))
            target = f"127.0.0.1:{await server.start()}"
            shops[name] = Shop(name, ledger, target, issue_key(ledger))
        yield shops
    finally:
        for server, offload, ledger in running:
            await server.stop(1)
            offload.shutdown()
            ledger.engine.dispose()


async def open_shops(env, shops: dict[str, Shop], clock: FakeClock, members: list[str]) -> datetime:  # type: ignore[no-untyped-def]
    """Each shop's own program applied now (the test server's now) and members enrolled;
    returns the Saturday 00:00 (Shanghai) at least two days ahead."""
    clock.now = await env.get_current_time()
    for shop in shops.values():
        shop.ledger.apply_program(BASE_PROGRAM, "merchant")
        async with MerchantNodeClient(shop.target, api_key=shop.key) as client:
            for member in members:
                await client.enroll_member(member)
    day = (clock.now + timedelta(days=2)).astimezone(SHANGHAI).date()
    day += timedelta(days=(5 - day.weekday()) % 7)
    return datetime.combine(day, time(0), SHANGHAI)


async def run_campaign(env, shops: dict[str, Shop], spec: CampaignSpec, story):  # type: ignore[no-untyped-def]
    queue = f"campaigns-{uuid.uuid4()}"
    nodes = {s.merchant_id: NodeAccess(s.target, s.key) for s in shops.values()}
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[CampaignWorkflow],
        activities=campaign_activities(nodes),
    ):
        first = await env.client.start_workflow(
            CampaignWorkflow.run,
            spec,
            id=f"campaign-{spec.campaign_id}-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        # Without a run id: queries and updates reach the latest run of a continued campaign.
        await story(env.client.get_workflow_handle_for(CampaignWorkflow.run, first.id))
        result: CampaignStatus = await first.result()
        return first, result


async def status(handle) -> CampaignStatus:  # type: ignore[no-untyped-def]
    return await handle.query(CampaignWorkflow.status)  # type: ignore[no-any-return]


async def until_state(handle, *states: str) -> CampaignStatus:  # type: ignore[no-untyped-def]
    for _ in range(400):
        now = await status(handle)
        if now.state in states:
            return now
        await asyncio.sleep(0.05)
    raise AssertionError(f"never reached {states}")


async def skip_to(env, when: datetime, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    """Moves the test server's time to `when`, and the ledgers' clock with it."""
    await env.sleep(when - await env.get_current_time())
    clock.now = await env.get_current_time()


async def test_a_weekend_campaign_starts_on_time_hits_its_budget_and_stops_early(
    time_skipping, shops, clock
):
    env, tea, noodles = time_skipping, shops["tea"], shops["noodles"]
    start = await open_shops(env, shops, clock, ["m1", "m2"])
    spec = CampaignSpec(
        "weekend_double",
        OPERATOR,
        ["tea", "noodles"],
        start,
        start + timedelta(days=2),
        WEEKEND,
        budget_points=1000,
        poll_minutes=60,
    )
    earned: dict[str, list[dict[str, int]]] = {"tea": [], "noodles": []}

    async def story(handle) -> None:  # type: ignore[no-untyped-def]
        clock.now = start - timedelta(minutes=30)
        await tea.earn("m2", "baseline", 20_000)  # the baseline: the hour before
        await skip_to(env, start - timedelta(minutes=1), clock)
        assert (await status(handle)).state == "scheduled"
        assert tea.versions() == [1] and noodles.versions() == [1]
        await skip_to(env, start + timedelta(minutes=1), clock)
        active = await until_state(handle, "active")
        assert active.activated == ["tea", "noodles"] and active.activated_at is not None
        assert start <= active.activated_at <= start + timedelta(minutes=1)
        for i in range(5):  # 300 each from the pool of 1000: 300, 300, 300, 100, then nothing
            earned["tea"].append(await tea.earn("m1", f"w{i}", 30_000))
        for i in range(2):
            earned["noodles"].append(await noodles.earn("m1", f"w{i}", 50_000))
        await skip_to(env, start + timedelta(minutes=62), clock)  # past the first poll

    handle, result = await run_campaign(env, shops, spec, story)
    assert result.state == "ended" and result.end_reason == "budget_spent"
    assert result.ended_at is not None and result.ended_at < spec.ends_at
    assert [line.get("weekend_double_1", 0) for line in earned["tea"]] == [300] * 5
    assert [line.get("budget_pool:weekend_double_pool", 0) for line in earned["tea"]] == [
        0,
        0,
        0,
        -200,
        -300,
    ]
    assert [(p.merchant_id, p.budget, p.granted) for p in result.pools] == [
        ("tea", 1000, 1000),
        ("noodles", 1000, 1000),
    ]
    for shop in (tea, noodles):  # on, off: one version each; the program is the merchant's again
        history = shop.ledger.program_history()
        assert [v.version for v in history] == [3, 2, 1]
        assert history[0].digest == history[2].digest
    clock.now = await env.get_current_time() + timedelta(minutes=1)
    assert await tea.earn("m1", "after", 30_000) == {"base_rate": 300}
    report = result.report
    assert report is not None and report.starts_at == start and report.ended_at == result.ended_at
    by_merchant = {roi.figures.merchant_id: roi.figures for roi in report.merchants}
    assert by_merchant["tea"].points_granted == 1000 and by_merchant["tea"].points_cost_fen == 1000
    assert by_merchant["tea"].participating.orders == 5  # the last one too: the pool was empty
    assert by_merchant["tea"].participating.revenue_fen == 150_000
    assert by_merchant["tea"].participating.points == 600 * 3 + 400 + 300
    assert by_merchant["tea"].baseline.orders == 1
    assert by_merchant["tea"].baseline.revenue_fen == 20_000
    assert by_merchant["noodles"].participating.revenue_fen == 100_000
    assert report.total is not None
    assert report.total.figures.points_granted == 2000
    assert report.total.figures.points_cost_fen == 2000
    assert report.total.figures.participating.orders == 7
    await replay_and_keep(handle, "campaign-budget-spent")


async def test_an_extended_campaign_earns_past_its_first_end_and_reports_its_roi_exactly(
    time_skipping, shops, clock
):
    env, tea = time_skipping, shops["tea"]
    group = ControlGroup(percent=50, salt="tea_saturday")
    members = [f"m{i}" for i in range(40)]
    held = next(m for m in members if in_control_group(group, m))
    p1, p2 = [m for m in members if not in_control_group(group, m)][:2]
    start = await open_shops(env, {"tea": tea}, clock, [held, p1, p2])
    baseline = (start - timedelta(days=7), start - timedelta(days=7) + timedelta(hours=12))
    spec = CampaignSpec(
        "tea_saturday",
        "tea",
        ["tea"],
        start,
        start + timedelta(hours=12),
        WEEKEND,
        budget_points=100_000,
        control_group_percent=50,
        baseline_starts_at=baseline[0],
        baseline_ends_at=baseline[1],
        poll_minutes=60,
        polls_per_run=4,  # a long campaign's history stays short: it continues as new
    )
    new_end = start + timedelta(hours=20)
    late: dict[str, int] = {}

    async def story(handle) -> None:  # type: ignore[no-untyped-def]
        clock.now = baseline[0] + timedelta(hours=10)  # last Saturday, 10:00
        await tea.earn(p1, "b1", 10_000)
        await tea.earn(held, "b2", 10_000)
        clock.now = await env.get_current_time()
        await skip_to(env, start + timedelta(minutes=1), clock)
        await until_state(handle, "active")
        for bad in (
            Extend(start + timedelta(hours=6), "ops-lin"),  # earlier than the end
            Extend(new_end, ""),  # nobody
            Extend(new_end.replace(tzinfo=None), "ops-lin"),  # no offset
        ):
            with pytest.raises(WorkflowUpdateFailedError):
                await handle.execute_update(CampaignWorkflow.extend, bad)
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(CampaignWorkflow.cancel, Cancel("", "ops-lin"))
        extended = await handle.execute_update(CampaignWorkflow.extend, Extend(new_end, "ops-lin"))
        assert extended.ends_at == new_end and tea.versions() == [3, 2, 1]
        assert (await tea.earn(p1, "w1", 30_000))["tea_saturday_1"] == 300
        assert await tea.earn(held, "w2", 10_000) == {
            "base_rate": 100,
            "control_group:tea_saturday_1": 0,
        }
        await skip_to(env, start + timedelta(hours=13), clock)  # past the first end
        late.update(await tea.earn(p2, "w3", 10_000))

    handle, result = await run_campaign(env, {"tea": tea}, spec, story)
    assert late == {"base_rate": 100, "tea_saturday_1": 100}
    assert result.end_reason == "ends_at" and result.ended_at == new_end
    assert [v.version for v in tea.ledger.program_history()] == [4, 3, 2, 1]
    clock.now = new_end + timedelta(minutes=1)
    assert await tea.earn(p1, "after", 10_000) == {"base_rate": 100}

    # By hand: participants p1 (300 yuan) and p2 (100 yuan), 400 campaign points at 1 fen each;
    # the control group's one member spent 100 yuan; the baseline's 12 hours took 200 yuan.
    report = result.report
    assert report is not None and report.total is not None and len(report.merchants) == 1
    tea_roi = report.merchants[0]
    figures = tea_roi.figures
    assert (figures.points_granted, figures.points_cost_fen, figures.fen_per_point) == (
        400,
        400,
        "1",
    )
    assert (figures.participating.orders, figures.participating.revenue_fen) == (2, 40_000)
    assert (figures.participating.points, figures.participating.members) == (800, 2)
    assert (figures.control_group.orders, figures.control_group.revenue_fen) == (1, 10_000)
    assert (figures.window.orders, figures.window.revenue_fen) == (3, 50_000)
    assert (figures.baseline.orders, figures.baseline.revenue_fen) == (2, 20_000)
    cost = Fraction(400)
    campaign_days, baseline_days = Fraction(20, 24), Fraction(12, 24)
    assert tea_roi.participant_revenue_per_member == "20000"
    assert tea_roi.control_revenue_per_member == "10000"
    assert tea_roi.campaign_revenue_per_day == str(50_000 / campaign_days) == "60000"
    assert tea_roi.baseline_revenue_per_day == "40000"
    vs_control = tea_roi.vs_control_group
    assert vs_control is not None
    incremental = 40_000 - Fraction(10_000, 1) * 2  # what participants spent over the control's
    assert Fraction(vs_control.incremental_revenue) == incremental == 20_000
    assert Fraction(vs_control.roi) == (incremental - cost) / cost == 49
    assert vs_control.roi_bp == 490_000
    vs_baseline = tea_roi.vs_baseline
    assert vs_baseline is not None
    incremental = 50_000 - 20_000 * campaign_days / baseline_days
    assert Fraction(vs_baseline.incremental_revenue) == incremental == Fraction(50_000, 3)
    assert vs_baseline.incremental_revenue_fen == 16_666
    assert Fraction(vs_baseline.roi) == (incremental - cost) / cost == Fraction(122, 3)
    assert vs_baseline.roi_bp == 406_666
    assert report.total.figures.window == figures.window  # one merchant: the total is its own
    rendered = "\n".join(render_report(report))
    assert "vs control_group: incremental ¥200.00, ROI 4900.00%" in rendered
    assert "vs baseline: incremental ¥166.67, ROI 4066.66%" in rendered
    first_run = env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
    history = await first_run.fetch_history()
    assert history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    await replay_and_keep(first_run, "campaign-extended")
    await replay_and_keep(handle, "campaign-extended-last-run")


async def test_a_cancelled_campaign_is_switched_off_at_once(time_skipping, shops, clock):
    env, tea = time_skipping, shops["tea"]
    start = await open_shops(env, {"tea": tea}, clock, ["m1"])
    spec = CampaignSpec(
        "flash",
        OPERATOR,
        ["tea", "ghost"],  # the worker knows no node of ghost's: it is refused, tea goes on
        start,
        start + timedelta(days=2),
        WEEKEND,
        budget_points=5000,
    )

    async def story(handle) -> None:  # type: ignore[no-untyped-def]
        await skip_to(env, start + timedelta(hours=1), clock)
        active = await until_state(handle, "active")
        assert active.activated == ["tea"] and len(active.refused) == 1
        assert active.refused[0].startswith("activate at ghost: merchant 'ghost' is not in")
        assert (await tea.earn("m1", "w1", 10_000))["flash_1"] == 100
        done = await handle.execute_update(
            CampaignWorkflow.cancel, Cancel("the shop is closing early", "ops-lin")
        )
        assert done.end_reason == "cancelled" and tea.versions() == [3, 2, 1]
        assert await tea.earn("m1", "w2", 10_000) == {"base_rate": 100}
        with pytest.raises((WorkflowUpdateFailedError, RPCError)):  # over, or ending
            await handle.execute_update(CampaignWorkflow.cancel, Cancel("again", "ops-chen"))
        with pytest.raises((WorkflowUpdateFailedError, RPCError)):
            await handle.execute_update(
                CampaignWorkflow.extend, Extend(start + timedelta(days=3), "ops-chen")
            )

    handle, result = await run_campaign(env, {"tea": tea}, spec, story)
    assert result.state == "ended" and result.cancellation is not None
    assert result.cancellation.by == "ops-lin"
    assert result.report is not None
    assert result.report.merchants[0].figures.participating.orders == 1
    await replay_and_keep(handle, "campaign-cancelled")


async def test_a_campaign_cancelled_before_its_start_never_touches_the_nodes(
    time_skipping, shops, clock
):
    env, tea = time_skipping, shops["tea"]
    start = await open_shops(env, {"tea": tea}, clock, [])
    spec = CampaignSpec(
        "never", OPERATOR, ["tea"], start, start + timedelta(days=1), WEEKEND, budget_points=10
    )

    async def story(handle) -> None:  # type: ignore[no-untyped-def]
        later = await handle.execute_update(
            CampaignWorkflow.extend, Extend(start + timedelta(days=2), "ops-lin")
        )
        assert later.ends_at == start + timedelta(days=2) and later.state == "scheduled"
        await handle.execute_update(CampaignWorkflow.cancel, Cancel("budget moved", "ops-lin"))

    _, result = await run_campaign(env, {"tea": tea}, spec, story)
    assert result.end_reason == "cancelled" and result.activated == [] and result.report is None
    assert tea.versions() == [1]


async def test_a_spec_that_cannot_run_fails_the_workflow_before_any_node_is_touched(
    time_skipping, shops, clock
):
    env, tea = time_skipping, shops["tea"]
    start = await open_shops(env, {"tea": tea}, clock, [])
    spec = CampaignSpec("Bad Id", "noodles", ["tea"], start, start, [CampaignRule()], 0)

    async def story(_handle) -> None:  # type: ignore[no-untyped-def]
        pass

    with pytest.raises(Exception) as err:
        await run_campaign(env, {"tea": tea}, spec, story)
    message = str(err.value.__cause__)
    for field in ("id:", "merchants:", "starts_at:", "rules[0].", "budget_points:"):
        assert field in message
    assert tea.versions() == [1]


# -- crash safety -----------------------------------------------------------------------------


@pytest.mark.parametrize("kill_after", ["activate", "deactivate"])
async def test_killing_the_worker_mid_campaign_changes_each_node_once_and_reports_once(
    dev_server, new_database, tmp_path, kill_after
):
    """The worker is killed right after it switched the campaign on (or off) at the node and
    before Temporal heard of it. A new worker takes over: the retried step finds the node in
    its state and adds no program version, the pool is never overspent, one report."""
    ledger = open_test_ledger(new_database("tea"))  # the real clock: the dev server's time
    server, offload = build_server(ledger, "127.0.0.1:0")
    tea = Shop("tea", ledger, f"127.0.0.1:{await server.start()}", issue_key(ledger))
    nodes = tmp_path / "nodes.toml"
    nodes.write_text(
        f'[[node]]\nmerchant_id = "tea"\nendpoint = "{tea.target}"\nadmin_token = "{tea.key}"\n'
    )
    ledger.apply_program(BASE_PROGRAM, "merchant")
    async with MerchantNodeClient(tea.target, api_key=tea.key) as client:
        await client.enroll_member("m1")
    temporal = dev_server.client.service_client.config.target_host
    earned = []
    try:
        async with CrashingWorker(
            "campaign", nodes, temporal, f"apply_campaign:{kill_after}", tmp_path
        ) as worker:
            # Starting 4 s after the worker polls (however long its start took), for 16 s.
            start = utc_now().replace(microsecond=0) + timedelta(seconds=4)
            spec = CampaignSpec(
                f"crash_{kill_after}",
                OPERATOR,
                ["tea"],
                start,
                start + timedelta(seconds=16),
                [CampaignRule(multiplier="2")],
                budget_points=500,
                heartbeat_seconds=2,
            )
            handle = await dev_server.client.start_workflow(
                CampaignWorkflow.run, spec, id=f"campaign-{uuid.uuid4()}", task_queue=worker.queue
            )
            if kill_after == "activate":
                await worker.kill_at_pause()
            await until_state(handle, "active")
            for i in range(3):  # 300 each asked of a pool of 500: 300, 200, nothing
                earned.append(await tea.earn("m1", f"o{i}", 30_000))
            if kill_after == "deactivate":
                await worker.kill_at_pause()
            result = await asyncio.wait_for(handle.result(), 90)
            history = await handle.fetch_history()
    finally:
        await server.stop(1)
        offload.shutdown()
    try:
        assert [line.get(f"crash_{kill_after}_1", 0) for line in earned] == [300, 300, 300]
        assert result.state == "ended" and result.end_reason == "ends_at"
        assert tea.versions() == [3, 2, 1]  # switched on once, off once
        with ledger.engine.connect() as conn:
            pool = conn.execute(sa.select(budget_pools.c.budget, budget_pools.c.granted)).one()
        assert tuple(pool) == (500, 500)  # spent, never overspent
        retried = attempts(
            history, lambda e: json.loads(e.input.payloads[0].data).get("step") == kill_after
        )
        assert retried and max(retried) >= 2  # the killed attempt was retried
        reports = [
            e
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and e.activity_task_scheduled_event_attributes.activity_type.name == "campaign_figures"
        ]
        assert len(reports) == 1 and result.report is not None
        figures = result.report.merchants[0].figures
        assert (figures.points_granted, figures.participating.orders) == (500, 3)
    finally:
        ledger.engine.dispose()


# -- the CLI ----------------------------------------------------------------------------------


async def test_the_cli_creates_shows_extends_cancels_lists_and_reports(
    dev_server, tmp_path, capsys
):
    campaign = f"cli_{uuid.uuid4().hex[:8]}"
    start = (utc_now() + timedelta(days=3)).astimezone(SHANGHAI).replace(microsecond=0)
    spec = tmp_path / "spring.yaml"
    spec.write_text(
        f"id: {campaign}\nowner: operator\nmerchants: [tea, noodles]\n"
        f"starts_at: {start.isoformat()}\nends_at: {(start + timedelta(days=2)).isoformat()}\n"
        'rules:\n  - {multiplier: "1.5", days_of_week: [sat, sun], hours: {from: "10:00", to: "22:00"}}\n'
        "budget_points: 100000\ncontrol_group_percent: 10\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        spec.read_text().replace('"1.5"', '"0.5"').replace("owner: operator", "owner: tea")
    )
    queue = f"campaigns-cli-{uuid.uuid4()}"
    temporal = dev_server.client.service_client.config.target_host

    async def cli(*argv: str) -> tuple[int, str]:
        code = await asyncio.to_thread(main, ["campaign", *argv, "--temporal", temporal])
        out, err = capsys.readouterr()
        return code, out + err

    async with Worker(
        dev_server.client,
        task_queue=queue,
        workflows=[CampaignWorkflow],
        activities=campaign_activities({}),
    ):
        code, out = await cli("create", str(bad), "--task-queue", queue, "--skip-registry-check")
        assert code == 1 and "multiplier: must be at least 1" in out and "merchants:" in out
        code, out = await cli("create", str(spec), "--task-queue", queue, "--skip-registry-check")
        assert code == 0 and f"started campaign-{campaign}" in out
        code, out = await cli("create", str(spec), "--task-queue", queue, "--skip-registry-check")
        assert code == 1  # one campaign per id
        code, out = await cli("status", campaign)
        assert code == 0 and "scheduled" in out and "tea, noodles" in out
        later = (start + timedelta(days=3)).isoformat()
        code, out = await cli("extend", campaign, "--until", start.isoformat(), "--by", "ops-lin")
        assert code == 1 and "later than the end" in out
        code, out = await cli("extend", f"campaign-{campaign}", "--until", later, "--by", "ops-lin")
        assert code == 0 and f"extended to {later} by ops-lin" in out
        code, out = await cli("cancel", campaign, "--reason", "rain", "--by", "ops-lin")
        assert code == 0 and "cancelled by ops-lin: rain" in out
        code, out = await cli("report", campaign)
        assert code == 0 and "no report yet (ended)" in out
        for _ in range(100):  # visibility catches up
            code, out = await cli("list")
            if f"campaign-{campaign}" in out:
                break
            await asyncio.sleep(0.1)
        assert f"campaign-{campaign}" in out and "COMPLETED" in out
