"""The CLI's defects of issue 11, each refused with a message naming the flag or key, an exit
status other than 0, no traceback, and nothing changed; output to a closed pipe ends quietly;
operator commands take their connection from the environment or operator.toml."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import grpc
import pytest

from tests.merchant_node.test_cli import PROGRAM, free_port


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coalition_cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def refused(done: subprocess.CompletedProcess[str], status: int, *expected: str) -> None:
    assert done.returncode == status, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    for text in expected:
        assert text in done.stderr, done.stderr


@pytest.fixture
def clean_env(tmp_path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """No COALITION_* variables and no operator.toml in the (empty) config home."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("COALITION_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config-home")
    return env


def test_bad_flag_values_are_refused_by_name_before_anything_is_done(tmp_path):
    config = str(tmp_path / "node.toml")  # never read: the flags are refused first
    simulate = ("rules", "simulate", "--config", config, "--amount-fen", "100")
    refused(
        run(*simulate, "--item", "bad"),
        2,
        'argument --item: "bad" is not SKU:CATEGORY:QTY:UNIT_PRICE_FEN',
    )
    refused(
        run(*simulate, "--item", "tea:drinks:two:500"),
        2,
        'argument --item: "tea:drinks:two:500" is not SKU:CATEGORY:QTY:UNIT_PRICE_FEN',
    )
    refused(run(*simulate, "--at", "tomorrow"), 2, 'argument --at: "tomorrow" is not an ISO time')
    refused(
        run(*simulate, "--file", str(tmp_path / "none.yaml")),
        2,
        "argument --file:",
        "No such file or directory",
    )
    refused(
        run("rules", "apply", "--config", config, str(tmp_path), "--by", "ops"),
        2,
        "argument file:",
    )
    extend = ("campaign", "extend", "spring", "--by", "ops", "--until")
    refused(run(*extend, "tomorrow"), 2, 'argument --until: "tomorrow" is not an ISO time')
    refused(run(*extend, "2026-03-14T10:00:00"), 2, "argument --until:", "has no UTC offset")
    refused(run("campaign", "create", str(tmp_path / "none.yaml")), 2, "argument file:")
    refused(
        run("operator", "rotate-key", "tea", "--public-key", "k.pem", "--old-valid-until", "soon"),
        2,
        'argument --old-valid-until: "soon" is not an ISO time',
    )
    worker = ("worker", "--exchange-config", str(tmp_path / "exchange.toml"))
    refused(
        run(*worker, "--zone", "Asia/Shangai"),
        2,
        'argument --zone: "Asia/Shangai" is not an IANA time zone',
    )
    refused(run(*worker, "--grace-minutes", "-5"), 2, "argument --grace-minutes:")
    refused(
        run("settle", "run-now", "--period", "2026-01-01", "--zone", "Mars/Base"),
        2,
        "argument --zone:",
    )
    assert not (tmp_path / "node.toml").exists()


def test_help_no_longer_promises_what_landed():
    done = run("--help")
    assert done.returncode == 0 and "as they land" not in done.stdout
    assert "settlement and campaigns" in " ".join(done.stdout.split())


def test_operator_commands_say_which_connection_setting_is_missing(tmp_path, clean_env):
    refused(
        run("operator", "list", env=clean_env),
        2,
        "--exchange is required: give it, or set COALITION_OPERATOR__EXCHANGE",
        "--exchange-key is required",
        "--key is required",
    )
    config = tmp_path / "operator.toml"
    config.write_text('[operator]\nexchang = "x:1"\ntemporal = 7233\n')
    refused(
        run("operator", "list", "--operator-config", str(config), env=clean_env),
        2,
        f"{config}: operator.temporal: 7233 is not a string",
        f"{config}: operator.exchang: unknown key (did you mean exchange?)",
    )
    refused(
        run("operator", "list", env={**clean_env, "COALITION_OPERATOR_CONFIG": str(config)}),
        2,
        "operator.exchang: unknown key",
    )
    refused(
        run("settle", "status", "--operator-config", str(tmp_path / "none.toml"), env=clean_env),
        2,
        "none.toml: no such file",
    )


def test_rules_commands_against_a_node_change_nothing_when_refused_and_end_quietly_on_a_closed_pipe(
    tmp_path,
):
    port = free_port()
    init = run(
        "node", "init", "--dir", str(tmp_path / "n"), "--merchant-id", "tea",
        "--listen", f"127.0.0.1:{port}",
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    config = str(tmp_path / "n" / "node.toml")
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM)
    server = subprocess.Popen(
        [sys.executable, "-m", "coalition_cli.main", "node", "serve", "--config", config],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
        refused(
            run(
                "rules",
                "apply",
                "--config",
                config,
                str(program),
                "--by",
                "ops",
                "--effective-from",
                "next monday",
            ),  # fmt: skip
            2,
            'argument --effective-from: "next monday" is not an ISO time',
        )
        assert "no program applied" in run("rules", "show", "--config", config).stdout
        applied = run("rules", "apply", "--config", config, str(program), "--by", "ops")
        assert "applied as version 1" in applied.stdout, applied.stderr

        # The reader of `coalition rules show | head -0` is gone before anything is written.
        reader, writer = os.pipe()
        os.close(reader)
        try:
            show = subprocess.run(
                [sys.executable, "-m", "coalition_cli.main", "rules", "show", "--config", config],
                stdout=writer,
                stderr=subprocess.PIPE,
                text=True,
                timeout=120,
            )
        finally:
            os.close(writer)
        assert show.returncode == 141, show.stderr
        assert show.stderr == "", show.stderr  # quiet: no BrokenPipeError, no traceback
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def test_whatever_a_command_raises_ends_as_one_line_and_a_status(capsys):
    import argparse

    from coalition_cli.process import run_command
    from coalition_kernel.errors import NotFound
    from coalition_kernel.settings import ConfigError

    def raising(error: BaseException):  # type: ignore[no-untyped-def]
        def run(_: argparse.Namespace) -> int:
            raise error

        return run

    args = argparse.Namespace(command="operator", verbose=False)
    cases = [
        (NotFound("MERCHANT_NOT_FOUND", "no merchant 'tee'"), 1, "MERCHANT_NOT_FOUND: no merchant"),
        (ConfigError("node.toml", ["node.listen: bad"]), 2, "node.toml: node.listen: bad"),
        (FileNotFoundError(2, "No such file or directory", "k.pem"), 1, "directory: k.pem"),
        (KeyError("x"), 1, "unexpected KeyError: 'x'"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ]
    for error, status, message in cases:
        assert run_command(args, raising(error)) == status
        err = capsys.readouterr().err
        assert f"coalition operator: {message}" in err or message in err, err
        assert "Traceback" not in err
