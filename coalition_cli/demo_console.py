"""The demo's console chapter: the web console (console/, docs/console.md) for the demo's shops
and exchange, configured as `coalition console init` does and run as its own process
(`coalition console serve`), then logged into over HTTP as tea-house (an admin-scoped key of
its node) and as the operator (the console's password) to show each sees its figures. It stops
with the rest of the demo; with --keep it stays up beside everything else."""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

from console.config import ConsoleConfig
from console.logins import password_digest
from exchange.runtime import ExchangeConfig
from merchant_node.auth.domain import Limits
from merchant_node.auth.service import add_client


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None  # a login answers 303: the demo reads where it points


def _login(base: str, form: dict[str, str], then: str) -> tuple[str, dict]:  # type: ignore[type-arg]
    """Logs in as a browser would (a cookie jar) and reads `then` as JSON with the session."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(CookieJar()), _NoRedirect
    )
    try:
        opener.open(base + "/login", urllib.parse.urlencode(form).encode(), timeout=10)
        raise RuntimeError("the console's login did not redirect")
    except urllib.error.HTTPError as answer:
        landing = answer.headers["location"]
    with opener.open(base + then, timeout=10) as res:
        return landing, json.loads(res.read())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _until_up(base: str, process: subprocess.Popen) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the console exited ({process.returncode})")
        try:
            with urllib.request.urlopen(base + "/", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise RuntimeError("the console did not start within 30 s")


def _stop(process: subprocess.Popen) -> None:  # type: ignore[type-arg]
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def console_chapter(  # type: ignore[no-untyped-def]
    stack: contextlib.AsyncExitStack, root: pathlib.Path, shops, exchange_config, temporal: str
) -> str:
    """Starts the console (stopped by `stack`) and returns its address."""
    listen = f"127.0.0.1:{_free_port()}"
    password = secrets.token_urlsafe(18)
    path = root / "console" / "console.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    ConsoleConfig(
        listen=listen,
        session_secret=secrets.token_hex(32),
        operator_password_sha256=password_digest(password),
        exchange_database_url=ExchangeConfig.load(exchange_config).database_url,
        temporal_address=temporal,
        nodes={m: shop.config.database_url for m, shop in shops.items()},
    ).save(path)
    # tea-house's manager, as `coalition node client add --name console --scopes admin` issues
    tea = shops["tea-house"]
    key = add_client(tea.ledger.engine, "console", "admin", Limits()).key
    process = subprocess.Popen(
        [sys.executable, "-m", "coalition_cli.main", "console", "serve", "--config", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stack.callback(_stop, process)
    base = f"http://{listen}"
    await asyncio.to_thread(_until_up, base, process)
    print(f"\n-- the console (coalition console serve --config {path})")
    print(f"  {base}  (pid {process.pid})")
    print(f"  merchant login: tea-house / {key}")
    print(f"  operator login: operator / {password}")
    landing, shop = await asyncio.to_thread(
        _login,
        base,
        {"role": "merchant", "merchant_id": "tea-house", "key": key},
        "/api/shop/tea-house/figures",
    )
    totals = shop["totals"]
    print(
        f"  tea-house logged in → {landing}: {totals['issued']} points issued, "
        f"{totals['outstanding']} outstanding"
    )
    landing, district = await asyncio.to_thread(
        _login,
        base,
        {"role": "operator", "name": "operator", "password": password},
        "/api/district/figures",
    )
    batches = ", ".join(f"{b['period']} {b['status']}" for b in district["batches"])
    print(f"  the operator logged in → {landing}: settlement batches {batches}")
    return base
