"""Configuration files of the node, the exchange and the campaign worker: validated whole (every
problem named by file, key and expected form), the environment over any key, older files
loading unchanged, and the CLI refusing a bad file with a message and a status, no traceback."""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coalition_kernel.settings import ConfigError
from exchange.runtime import ExchangeConfig
from merchant_node.config import NodeConfig, NotificationSettings
from workflows.campaigns.nodes import NodeAccess, load_nodes

# A node.toml as `coalition node init` wrote it before the configuration was validated: it
# must load as it is, and `save` must write it again byte for byte.
OLD_NODE_TOML = """\
# Merchant node configuration (coalition node init).
[node]
merchant_id = "tea"
database_url = "sqlite:////data/tea.db"
listen = "0.0.0.0:50051"
points_per_yuan = "3/2"
fen_per_point = "1"
points_ttl_days = 365
private_key_file = "/data/node_ed25519.pem"
public_key_file = "/data/node_ed25519.pub.pem"
key_id = "0123456789abcdef"
exchange_endpoint = "exchange:50050"
exchange_public_key_file = "/data/exchange_ed25519.pub.pem"
admin_token = "token-in-file"

[notifications]
webhook_url = ""
webhook_timeout_seconds = 10.0
default_channel = "webhook"
smtp_host = ""
smtp_port = 587
smtp_starttls = true
smtp_username = ""
smtp_password = ""
smtp_from = ""
smtp_timeout_seconds = 30.0
timezone = "Asia/Shanghai"
quiet_hours = "22:00-08:00"
reminder_offsets_days = [7, 3]
max_attempts = 8
backoff_base_seconds = 60
backoff_max_seconds = 21600
lease_seconds = 300
"""

OLD_EXCHANGE_TOML = """\
# Exchange configuration (coalition exchange init).
[exchange]
database_url = "sqlite:////data/exchange.db"
listen = "0.0.0.0:50050"
private_key_file = "/data/exchange_ed25519.pem"
public_key_file = "/data/exchange_ed25519.pub.pem"
operator_public_key_file = "/data/operator_ed25519.pub.pem"
quote_ttl_seconds = 120
hold_ttl_seconds = 900
issuer_timeout_seconds = 5
clock_skew_seconds = 300
recovery_interval_seconds = 10
tls_cert_file = ""
tls_key_file = ""
client_ca_file = ""
"""


@pytest.fixture(autouse=True)
def no_coalition_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.upper().startswith("COALITION_"):
            monkeypatch.delenv(name)


def write(tmp_path: pathlib.Path, name: str, text: str) -> pathlib.Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(load, path: pathlib.Path) -> list[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert all(line.startswith(f"{path}: ") for line in str(caught.value).splitlines())
    return [line.removeprefix(f"{path}: ") for line in str(caught.value).splitlines()]


# -- older files, save ---------------------------------------------------------------------


def test_files_written_before_validation_load_unchanged_and_save_writes_them_again(tmp_path):
    node = NodeConfig.load(write(tmp_path, "node.toml", OLD_NODE_TOML))
    assert (node.points_per_yuan, node.admin_token) == ("3/2", "token-in-file")
    assert node.notifications == NotificationSettings()
    node.save(tmp_path / "again.toml")
    saved = (tmp_path / "again.toml").read_text()
    # Every line as before; keys added since are written with their defaults.
    assert set(OLD_NODE_TOML.splitlines()) <= set(saved.splitlines())
    assert NodeConfig.load(tmp_path / "again.toml") == node

    exchange = ExchangeConfig.load(write(tmp_path, "exchange.toml", OLD_EXCHANGE_TOML))
    assert exchange.hold_ttl_seconds == 900
    exchange.save(tmp_path / "exchange-again.toml")
    saved = (tmp_path / "exchange-again.toml").read_text()
    assert set(OLD_EXCHANGE_TOML.splitlines()) <= set(saved.splitlines())
    assert ExchangeConfig.load(tmp_path / "exchange-again.toml") == exchange


def test_a_node_file_with_only_the_required_keys_takes_every_default(tmp_path):
    path = write(tmp_path, "node.toml", '[node]\nmerchant_id = "tea"\ndatabase_url = "sqlite://"\n')
    assert NodeConfig.load(path) == NodeConfig("tea", "sqlite://")


notification_settings = st.builds(
    NotificationSettings,
    webhook_url=st.text(max_size=20),
    smtp_password=st.text(max_size=20),
    quiet_hours=st.sampled_from(["", "22:00-08:00", "00:30-06:15", "12:00-13:00"]),
    reminder_offsets_days=st.lists(st.integers(1, 365), max_size=4).map(tuple),
    max_attempts=st.integers(1, 50),
    lease_seconds=st.integers(120, 10_000),
)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    notifications=notification_settings,
    merchant=st.text(min_size=1, max_size=12),
    ttl=st.integers(0, 3650),
    rate=st.sampled_from(["1", "3/2", "1.5", "10"]),
)
def test_any_valid_config_saved_loads_as_itself(tmp_path, notifications, merchant, ttl, rate):
    config = NodeConfig(
        merchant,
        "sqlite://",
        points_ttl_days=ttl,
        fen_per_point=rate,
        notifications=notifications,
    )
    config.save(tmp_path / "node.toml")
    assert NodeConfig.load(tmp_path / "node.toml") == config


# -- every problem at once, named by key and expected form --------------------------------------


def test_node_problems_are_named_by_key_and_expected_form_all_at_once(tmp_path):
    text = OLD_NODE_TOML.replace("lease_seconds", "lease_secs")
    text = text.replace('"22:00-08:00"', '"25:00-08:00"').replace(
        "points_ttl_days = 365", 'points_ttl_days = "a year"'
    )
    found = problems(NodeConfig.load, write(tmp_path, "node.toml", text))
    assert found == [
        'node.points_ttl_days: "a year" is not an integer',
        'notifications.quiet_hours: "25:00-08:00" is not HH:MM-HH:MM'
        ' (e.g. "22:00-08:00"; "" for none)',
        "notifications.lease_secs: unknown key (did you mean lease_seconds?)",
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('default_channel = "sms"', "notifications.default_channel: \"sms\" is not 'webhook' or"),
        ('timezone = "Asia/Shanghia"', "notifications.timezone: 'Asia/Shanghia' is not an IANA"),
        ("reminder_offsets_days = [0, 400]", "notifications.reminder_offsets_days: [0, 400] must"),
        ("lease_seconds = 30", "notifications: lease_seconds (30) must be at least four times"),
        ('smtp_port = "x"', 'notifications.smtp_port: "x" is not an integer'),
    ],
)
def test_each_notification_key_is_checked(tmp_path, line, expected):
    key = line.split(" = ")[0]
    text = "\n".join(
        line if existing.startswith(f"{key} = ") else existing
        for existing in OLD_NODE_TOML.splitlines()
    )
    (found,) = problems(NodeConfig.load, write(tmp_path, "node.toml", text))
    assert found.startswith(expected)


def test_node_tables_and_required_keys(tmp_path):
    text = '[node]\nmerchant_id = "tea"\nlisten = "everywhere"\nfen_per_point = "0"\n'
    text += "[notification]\nwebhook_url = 'x'\n"
    assert problems(NodeConfig.load, write(tmp_path, "a.toml", text)) == [
        "[notification]: unknown table (did you mean notifications?)"
        " (known: [node], [notifications], [mall], [auth])"
    ]
    text = text.replace("[notification]", "[notifications]")
    assert problems(NodeConfig.load, write(tmp_path, "b.toml", text)) == [
        "node.database_url: missing (required)",
        'node.listen: "everywhere" is not HOST:PORT (e.g. "0.0.0.0:50051")',
        'node.fen_per_point: "0" is not a positive rate such as "1", "1.5" or "3/2"',
    ]
    assert problems(NodeConfig.load, write(tmp_path, "c.toml", "[node\n"))[0].startswith(
        "not valid TOML: "
    )
    assert problems(NodeConfig.load, tmp_path / "missing.toml") == ["no such file"]


def test_exchange_problems_are_named_by_key(tmp_path):
    text = OLD_EXCHANGE_TOML + 'hold_ttl = 60\nquote_ttl_seconds = 0\ntls_cert_file = "c.pem"\n'
    text = text.replace("quote_ttl_seconds = 120\n", "").replace('tls_cert_file = ""\n', "")
    assert problems(ExchangeConfig.load, write(tmp_path, "exchange.toml", text)) == [
        "exchange.quote_ttl_seconds: 0 must be at least 1 second",
        "exchange.hold_ttl: unknown key (did you mean hold_ttl_seconds?)",
    ]
    text = text.replace("hold_ttl = 60\n", "").replace("quote_ttl_seconds = 0\n", "")
    assert problems(ExchangeConfig.load, write(tmp_path, "exchange.toml", text)) == [
        "exchange: tls_cert_file, tls_key_file and client_ca_file are given together or not at all"
    ]


# -- the environment over the file ------------------------------------------------------------


def test_environment_overrides_any_key_so_secrets_stay_out_of_the_file(tmp_path, monkeypatch):
    text = OLD_NODE_TOML.replace('admin_token = "token-in-file"\n', "")
    path = write(tmp_path, "node.toml", text)
    monkeypatch.setenv("COALITION_NODE__ADMIN_TOKEN", "token-from-secret")
    monkeypatch.setenv("COALITION_NODE__NOTIFICATIONS__SMTP_PASSWORD", "smtp-secret")
    monkeypatch.setenv("COALITION_NODE__NOTIFICATIONS__REMINDER_OFFSETS_DAYS", "[14, 1]")
    monkeypatch.setenv("COALITION_NODE__POINTS_TTL_DAYS", "30")
    config = NodeConfig.load(path)
    assert config.admin_token == "token-from-secret"
    assert config.notifications.smtp_password == "smtp-secret"
    assert config.notifications.reminder_offsets_days == (14, 1)
    assert config.points_ttl_days == 30
    assert config.notifications.quiet_hours == "22:00-08:00"  # the file's, untouched
    assert path.read_text() == text

    monkeypatch.setenv("COALITION_EXCHANGE__HOLD_TTL_SECONDS", "60")
    monkeypatch.setenv("COALITION_EXCHANGE__DATABASE_URL", "postgresql+psycopg2://x@db/exchange")
    exchange = ExchangeConfig.load(write(tmp_path, "exchange.toml", OLD_EXCHANGE_TOML))
    assert (exchange.hold_ttl_seconds, exchange.database_url) == (
        60,
        "postgresql+psycopg2://x@db/exchange",
    )


def test_a_bad_value_from_the_environment_names_the_variable(tmp_path, monkeypatch):
    path = write(tmp_path, "node.toml", OLD_NODE_TOML)
    monkeypatch.setenv("COALITION_NODE__NOTIFICATIONS__QUIET_HOURS", "late")
    monkeypatch.setenv("COALITION_NODE__POINTS_TTL_DAYS", "-1")
    assert problems(NodeConfig.load, path) == [
        "node.points_ttl_days: -1 must be 0 (never expire) or more days"
        " (from the environment: COALITION_NODE__POINTS_TTL_DAYS)",
        'notifications.quiet_hours: "late" is not HH:MM-HH:MM (e.g. "22:00-08:00"; "" for none)'
        " (from the environment: COALITION_NODE__NOTIFICATIONS__QUIET_HOURS)",
    ]
    monkeypatch.setenv("COALITION_NODE__NOTIFICATIONS__REMINDER_OFFSETS_DAYS", "[7,")
    with pytest.raises(ConfigError, match="environment COALITION_NODE__"):
        NodeConfig.load(path)


# -- the campaign worker's nodes file -------------------------------------------------------------


def test_campaign_nodes_file_is_checked_whole_and_tokens_may_come_from_the_environment(
    tmp_path, monkeypatch
):
    text = """
[[node]]
merchant_id = "tea-house"
endpoint = "10.0.0.5:50051"

[[node]]
merchant_id = "noodle"
endpont = "10.0.0.6:50051"
admin_token = "t2"

[[node]]
merchant_id = "noodle"
endpoint = "10.0.0.7:50051"
admin_token = "t3"
"""
    path = write(tmp_path, "nodes.toml", text)
    assert problems(load_nodes, path) == [
        "node[0].admin_token: missing (required)"
        " (or set COALITION_CAMPAIGN_NODES__TEA_HOUSE__ADMIN_TOKEN)",
        "node[1].endpoint: missing (required) (or set COALITION_CAMPAIGN_NODES__NOODLE__ENDPOINT)",
        "node[1].endpont: unknown key (did you mean endpoint?)",
    ]
    monkeypatch.setenv("COALITION_CAMPAIGN_NODES__TEA_HOUSE__ADMIN_TOKEN", "t1")
    path = write(tmp_path, "nodes.toml", text.replace("endpont", "endpoint"))
    assert problems(load_nodes, path) == ["node[2].merchant_id: repeats merchant 'noodle'"]
    path = write(tmp_path, "nodes.toml", text.replace("endpont", "endpoint").rsplit("[[", 1)[0])
    assert load_nodes(path) == {
        "tea-house": NodeAccess("10.0.0.5:50051", "t1"),
        "noodle": NodeAccess("10.0.0.6:50051", "t2"),
    }


# -- the CLI: a message and a status, never a traceback, nothing changed -----------------------


def coalition(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coalition_cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def refused(done: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    for text in expected:
        assert text in done.stderr, done.stderr


def test_commands_refuse_a_bad_config_with_every_problem_and_change_nothing(tmp_path):
    db = tmp_path / "ledger.db"
    node_text = OLD_NODE_TOML.replace("sqlite:////data/tea.db", f"sqlite:///{db}")
    node_text = node_text.replace("lease_seconds", "lease_secs").replace(
        '"22:00-08:00"', '"25:00-08:00"'
    )
    node_path = write(tmp_path, "node.toml", node_text)
    exchange_text = OLD_EXCHANGE_TOML.replace("sqlite:////data/exchange.db", f"sqlite:///{db}")
    exchange_path = write(tmp_path, "exchange.toml", exchange_text + "hold_ttl = 60\n")
    nodes_path = write(tmp_path, "nodes.toml", '[[node]]\nmerchant_id = "tea"\n')

    node_problems = (
        f"{node_path}: notifications.lease_secs: unknown key (did you mean lease_seconds?)",
        f'{node_path}: notifications.quiet_hours: "25:00-08:00" is not HH:MM-HH:MM',
    )
    refused(coalition("node", "serve", "--config", str(node_path)), *node_problems)
    refused(coalition("worker", "--node-config", str(node_path)), *node_problems)
    refused(
        coalition("exchange", "serve", "--config", str(exchange_path)),
        f"{exchange_path}: exchange.hold_ttl: unknown key (did you mean hold_ttl_seconds?)",
    )
    refused(
        coalition("worker", "--campaign-nodes", str(nodes_path)),
        f"{nodes_path}: node[0].endpoint: missing",
        f"{nodes_path}: node[0].admin_token: missing",
    )
    refused(
        coalition("node", "serve", "--config", str(tmp_path / "nowhere.toml")),
        "nowhere.toml: no such file",
    )
    assert not db.exists()
    assert node_path.read_text() == node_text


def test_replacing_a_section_keeps_validation(tmp_path):
    config = NodeConfig("tea", "sqlite://")
    with pytest.raises(ValueError, match="quiet"):
        dataclasses.replace(config.notifications, quiet_hours="soon")
    with pytest.raises(ValueError, match="lease_secs"):
        NotificationSettings(lease_secs=10)  # type: ignore[call-arg]
