"""`coalition campaign create` checks a spec whole before anything is started — its shape, dates,
duplicates, its id, its merchants at the exchange's registry — with the operator's connection
from the environment or operator.toml; `operator list` takes the same settings."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from temporalio.service import RPCError, RPCStatusCode

from coalition_cli.main import main
from coalition_kernel.db import utc_now
from tests.conftest import FakeClock
from tests.exchange.conftest import Coalition, start_coalition
from workflows.campaigns.shared import campaign_workflow_id

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest_asyncio.fixture
async def coalition(new_database) -> AsyncIterator[Coalition]:  # type: ignore[no-untyped-def]
    async for running in start_coalition(new_database, FakeClock(utc_now())):
        yield running


@pytest.fixture
def operator_env(coalition, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """The operator's connection in the environment only: no flags, no file."""
    key = tmp_path / "operator.pem"
    key.write_bytes(
        coalition.operator_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    exchange_key = tmp_path / "exchange.pub.pem"
    exchange_key.write_bytes(
        coalition.exchange.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    monkeypatch.delenv("COALITION_OPERATOR_CONFIG", raising=False)
    monkeypatch.setenv("COALITION_OPERATOR__EXCHANGE", coalition.exchange_target)
    monkeypatch.setenv("COALITION_OPERATOR__EXCHANGE_KEY", str(exchange_key))
    monkeypatch.setenv("COALITION_OPERATOR__KEY", str(key))
    return {"key": key, "exchange_key": exchange_key}


async def cli(capsys, *argv: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out + err


def spec_text(campaign: str, merchants: str, starts: str, ends: str) -> str:
    return (
        f"id: {campaign}\nowner: operator\nmerchants: {merchants}\n"
        f"starts_at: {starts}\nends_at: {ends}\n"
        'rules:\n  - {multiplier: "2", days_of_week: [sat, sun]}\nbudget_points: 1000\n'
    )


@pytest.mark.parametrize("new_database", ["sqlite"], indirect=True)
async def test_a_campaign_spec_is_checked_whole_before_anything_starts(
    dev_server, coalition, operator_env, tmp_path, capsys, monkeypatch
):
    target = dev_server.client.service_client.config.target_host
    monkeypatch.setenv("COALITION_OPERATOR__TEMPORAL", target)  # not even --temporal
    start = (utc_now() + timedelta(days=3)).astimezone(SHANGHAI).replace(microsecond=0)
    end = start + timedelta(days=2)

    code, out = await cli(capsys, "operator", "list")
    assert code == 0 and "tea" in out and "noodles" in out and "salon" in out

    campaign = f"spring_{uuid.uuid4().hex[:8]}"
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        spec_text(campaign, "[tea, tee, tea]", end.isoformat(), start.isoformat())
        .replace("budget_points", "budget_point")
        .replace("days_of_week: [sat, sun]", 'dates: ["2026-02-30"]')
    )
    code, out = await cli(capsys, "campaign", "create", str(bad))
    assert code == 1
    for problem in (
        "budget_point: unknown field (did you mean budget_points?)",
        "merchants: 'tea' is given twice",
        "rules[0].dates: '2026-02-30' is not a date YYYY-MM-DD",
    ):
        assert problem in out, out

    bad.write_text(spec_text(campaign, "[tea, tee]", end.isoformat(), start.isoformat()))
    code, out = await cli(capsys, "campaign", "create", str(bad))
    assert code == 1
    assert "starts_at: must be before ends_at" in out, out
    assert "merchants: 'tee' is not registered at the exchange (did you mean tea?)" in out, out
    past = spec_text(campaign, "[tea]", "2020-01-01T00:00:00+08:00", "2020-01-02T00:00:00+08:00")
    bad.write_text(past)
    code, out = await cli(capsys, "campaign", "create", str(bad))
    assert code == 1 and "ends_at: 2020-01-02T00:00:00+08:00 is already past" in out, out
    with pytest.raises(RPCError) as nothing:  # nothing was started for the refused specs
        await dev_server.client.get_workflow_handle(campaign_workflow_id(campaign)).describe()
    assert nothing.value.status == RPCStatusCode.NOT_FOUND

    await coalition.operator.set_status("salon", active=False)
    good = tmp_path / "spring.yaml"
    good.write_text(spec_text(campaign, "[tea, salon]", start.isoformat(), end.isoformat()))
    code, out = await cli(capsys, "campaign", "create", str(good), "--task-queue", "nowhere")
    assert code == 1 and "merchants: 'salon' is suspended at the exchange" in out, out
    good.write_text(spec_text(campaign, "[tea, noodles]", start.isoformat(), end.isoformat()))
    code, out = await cli(capsys, "campaign", "create", str(good), "--task-queue", "nowhere")
    assert code == 0 and f"started campaign-{campaign}" in out, out
    code, out = await cli(capsys, "campaign", "create", str(good), "--task-queue", "nowhere")
    assert code == 1 and f"id: campaign '{campaign}' exists already" in out, out
    assert "choose another id" in out
    handle = dev_server.client.get_workflow_handle(campaign_workflow_id(campaign))
    await handle.terminate("test over")  # no worker serves the queue "nowhere"


@pytest.mark.parametrize("new_database", ["sqlite"], indirect=True)
async def test_without_the_operator_connection_create_says_what_to_give(
    dev_server, coalition, operator_env, tmp_path, capsys, monkeypatch
):
    for name in ("EXCHANGE", "EXCHANGE_KEY", "KEY"):
        monkeypatch.delenv(f"COALITION_OPERATOR__{name}")
    target = dev_server.client.service_client.config.target_host
    start = (utc_now() + timedelta(days=3)).astimezone(SHANGHAI).replace(microsecond=0)
    campaign = f"autumn_{uuid.uuid4().hex[:8]}"
    spec = tmp_path / "autumn.yaml"
    spec.write_text(
        spec_text(campaign, "[tea]", start.isoformat(), (start + timedelta(days=1)).isoformat())
    )
    code, out = await cli(capsys, "campaign", "create", str(spec), "--temporal", target)
    assert code == 1 and "merchants: cannot be checked at the exchange" in out, out
    assert "--skip-registry-check" in out

    operator_toml = tmp_path / "operator.toml"
    operator_toml.write_text(
        f'[operator]\nexchange = "{coalition.exchange_target}"\n'
        f'exchange_key = "{operator_env["exchange_key"]}"\nkey = "{operator_env["key"]}"\n'
        f'temporal = "{target}"\n'
    )
    monkeypatch.setenv("COALITION_OPERATOR_CONFIG", str(operator_toml))
    code, out = await cli(capsys, "campaign", "create", str(spec), "--task-queue", "nowhere")
    assert code == 0 and f"started campaign-{campaign}" in out, out
    await dev_server.client.get_workflow_handle(campaign_workflow_id(campaign)).terminate("over")
