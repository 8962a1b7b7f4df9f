"""`coalition console init|alerts` as a merchant or operator runs them."""

from __future__ import annotations

import tomllib

from tests.test_network import coalition


def test_console_init_writes_the_shops_and_prints_the_operator_password_once(tmp_path):
    made = coalition("exchange", "init", "--dir", str(tmp_path / "x"))
    assert made.returncode == 0, made.stderr
    node = coalition(
        "node", "init", "--dir", str(tmp_path / "tea"), "--merchant-id", "tea",
        "--listen", "127.0.0.1:0",
    )  # fmt: skip
    assert node.returncode == 0, node.stderr
    done = coalition(
        "console", "init", "--dir", str(tmp_path / "c"),
        "--exchange-config", str(tmp_path / "x" / "exchange.toml"),
        "--node-config", str(tmp_path / "tea" / "node.toml"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    password = done.stdout.split("operator login: operator / ")[1].split()[0]
    config = tomllib.loads((tmp_path / "c" / "console.toml").read_text())
    assert password not in (tmp_path / "c" / "console.toml").read_text()
    assert list(config["nodes"]) == ["tea"]
    assert config["console"]["exchange_database_url"].endswith("exchange.db")
    assert (tmp_path / "c" / "console.toml").stat().st_mode & 0o077 == 0
    again = coalition("console", "init", "--dir", str(tmp_path / "c"))
    assert again.returncode == 1 and "exists" in again.stderr
    alerts = coalition("console", "alerts", "--config", str(tmp_path / "c" / "console.toml"))
    assert alerts.returncode == 0, alerts.stderr
    assert "no new alerts" in alerts.stdout
