"""`coalition node init` closes the node by default; `coalition node client add|list|revoke`."""

from __future__ import annotations

import os
import tomllib

import sqlalchemy as sa

from coalition_kernel.db import make_engine
from merchant_node.auth.schema import api_clients
from tests.merchant_node.test_cli import coalition


def test_init_writes_a_wallet_key_for_its_owner_only_and_a_first_admin_key(tmp_path, db_url):
    done = coalition(
        "node", "init", "--dir", str(tmp_path / "n"), "--merchant-id", "tea", "--db", db_url
    )
    assert done.returncode == 0, done.stderr
    assert os.stat(tmp_path / "n" / "wallet.key").st_mode & 0o777 == 0o600
    admin_key = tomllib.loads((tmp_path / "n" / "node.toml").read_text())["node"]["admin_token"]
    assert admin_key.startswith("cpk_")
    listed = coalition("node", "client", "list", "--config", str(tmp_path / "n" / "node.toml"))
    assert listed.returncode == 0, listed.stderr
    (line,) = listed.stdout.splitlines()
    assert "node-admin" in line and " admin " in line and "active" in line
    assert admin_key.split("_")[1] in line and admin_key.split("_", 2)[2] not in line


def test_client_add_prints_the_key_once_list_shows_it_and_revoke_ends_it(tmp_path, db_url):
    assert (
        coalition(
            "node", "init", "--dir", str(tmp_path), "--merchant-id", "tea", "--db", db_url
        ).returncode
        == 0
    )
    config = str(tmp_path / "node.toml")
    added = coalition(
        "node", "client", "add", "--config", config, "--name", "till-1", "--scopes", "pos,read",
        "--max-points-per-earn", "5000", "--max-order-fen", "1000000",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    key = added.stdout.splitlines()[-1]
    assert key.startswith("cpk_") and "key id" in added.stdout
    key_id, secret = key.split("_")[1], key.split("_", 2)[2]
    listed = coalition("node", "client", "list", "--config", config).stdout
    till = next(line for line in listed.splitlines() if "till-1" in line)
    assert key_id in till and "pos,read" in till and "active" in till
    assert "max_points_per_earn=5000" in till and "max_order_fen=1000000" in till
    assert secret not in listed
    engine = make_engine(db_url, pool_size=1)
    try:
        with engine.connect() as conn:
            stored = conn.execute(sa.select(api_clients)).all()
        assert all(secret not in str(tuple(row)) for row in stored)  # only its digest is kept
    finally:
        engine.dispose()
    refused = coalition(
        "node", "client", "add", "--config", config, "--name", "x", "--scopes", "root"
    )
    assert refused.returncode == 2 and "scopes" in refused.stderr
    revoked = coalition("node", "client", "revoke", "--config", config, "till-1")
    assert revoked.returncode == 0 and key_id in revoked.stdout, revoked.stderr
    till = next(
        line
        for line in coalition("node", "client", "list", "--config", config).stdout.splitlines()
        if "till-1" in line
    )
    assert "revoked" in till
    unknown = coalition("node", "client", "revoke", "--config", config, "nobody")
    assert unknown.returncode == 1 and "no client" in unknown.stderr
