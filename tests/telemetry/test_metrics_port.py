"""Where /metrics is served: COALITION_METRICS_PORT, else the `metrics_port` key of node.toml or
exchange.toml (itself overridable by COALITION_NODE__METRICS_PORT / COALITION_EXCHANGE__…)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from coalition_kernel.settings import ConfigError
from coalition_kernel.telemetry import Settings
from exchange.runtime import ExchangeConfig
from merchant_node.config import NodeConfig


def test_the_environment_port_wins_over_the_configured_one():
    assert Settings.from_env({}, configured_port=9464).metrics_port == 9464
    assert Settings.from_env({"COALITION_METRICS_PORT": "9500"}, 9464).metrics_port == 9500
    assert Settings.from_env({}, configured_port=None).metrics_port is None


def test_the_config_files_name_the_port_and_the_environment_overrides_it(tmp_path, monkeypatch):
    node = tmp_path / "node.toml"
    node.write_text(
        '[node]\nmerchant_id = "tea"\ndatabase_url = "sqlite://"\nmetrics_port = 9464\n'
    )
    assert NodeConfig.load(node).metrics_port == 9464
    monkeypatch.setenv("COALITION_NODE__METRICS_PORT", "9465")
    assert NodeConfig.load(node).metrics_port == 9465
    exchange = tmp_path / "exchange.toml"
    exchange.write_text('[exchange]\ndatabase_url = "sqlite://"\n')
    assert ExchangeConfig.load(exchange).metrics_port == 0  # not served
    monkeypatch.setenv("COALITION_EXCHANGE__METRICS_PORT", "70000")
    with pytest.raises(ConfigError) as refused:
        ExchangeConfig.load(exchange)
    assert "metrics_port" in str(refused.value) and "is not a port" in str(refused.value)


def test_a_process_serves_metrics_on_the_configured_port():
    """In a fresh process (setup reads the settings once per process), as `node serve` and
    `exchange serve` do with their file's key, and without COALITION_METRICS_PORT."""
    script = (
        "import socket, urllib.request\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()\n"
        "from coalition_kernel import telemetry\n"
        "telemetry.use_metrics_port(port); telemetry.setup('test')\n"
        "assert telemetry.metrics_port() == port\n"
        "with urllib.request.urlopen(f'http://127.0.0.1:{port}/metrics', timeout=10) as r:\n"
        "    assert r.status == 200 and b'coalition_rpc_calls' in r.read()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "COALITION_METRICS_PORT"}
    done = subprocess.run([sys.executable, "-c", script], env=env, timeout=60, check=False)
    assert done.returncode == 0
