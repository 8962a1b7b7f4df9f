"""How a `coalition` command ends: with a message and an exit status, never a traceback, and
with exactly the status its work earned, whatever the Temporal SDK does at interpreter exit.

Temporal (temporalio/sdk-python issue 300): the SDK's Rust core runs a Tokio runtime whose
threads call into Python (waking asyncio futures, dropping Python objects). That runtime is a
process-wide static the SDK never shuts down (there is no Client.close or Runtime shutdown), so
when the interpreter finalizes, one of those threads may still take or release the GIL, and
CPython aborts: "Fatal Python error: PyGILState_Release: thread state … must be current when
releasing", status 134 (or 139), about one run in five here, after the command had done its
work and printed its answer. The work-around: once the command is done and its output flushed,
a process that loaded the SDK's bridge ends with os._exit(status), skipping the finalization
the crash happens in. Nothing of ours needs that finalization: commands close their channels,
engines and files themselves, and the logs and standard streams are flushed here first.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn

log = logging.getLogger(__name__)

BROKEN_PIPE = 141  # 128 + SIGPIPE: what a reader closing the pipe early gives `cat` too
INTERRUPTED = 130  # 128 + SIGINT
TEMPORAL_BRIDGE = "temporalio.bridge.temporal_sdk_bridge"


def run_command(args: argparse.Namespace, run: Callable[[argparse.Namespace], int | None]) -> int:
    """The command's exit status; whatever it raises becomes one line on stderr."""
    from coalition_cli.connection import UsageError, resolve
    from coalition_kernel.settings import ConfigError

    name = f"coalition {args.command}"
    try:
        if hasattr(args, "_connection"):  # operator commands: flags, else env, else file
            resolve(args)
        return int(run(args) or 0)
    except UsageError as err:
        print(f"{name}: {err}", file=sys.stderr)
        return 2
    except ConfigError as err:  # every problem of a config file, named by file and key
        print(f"{name}: configuration refused:\n{err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`… | head`): nothing more to say
        _silence_stdout()
        return BROKEN_PIPE
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception as err:  # a refusal or a fault nobody caught: one line, not a traceback
        text = describe(err)
        print(f"{name}: {text}", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        elif text.startswith("unexpected "):
            print(f"{name}: (run with -v for the traceback)", file=sys.stderr)
        return 1


def describe(err: BaseException) -> str:
    """What went wrong, as an operator can act on it."""
    from coalition_kernel.errors import CoalitionError

    if isinstance(err, CoalitionError):
        return f"{err.reason}: {err.message}"
    code = getattr(err, "code", None)
    if callable(code) and hasattr(err, "details"):  # a grpc.RpcError from a server
        return f"{code().name}: {err.details()}"  # type: ignore[attr-defined]
    if isinstance(err, OSError) and err.strerror:
        return f"{err.strerror}" + (f": {err.filename}" if err.filename else "")
    if isinstance(err, RuntimeError) and str(err).startswith("Failed client connect"):
        return f"cannot reach Temporal: {err}"  # the SDK's connect error
    if type(err).__module__.startswith("temporalio"):
        cause = getattr(err, "cause", None)
        return f"Temporal: {cause or err}"
    return f"unexpected {type(err).__name__}: {err}"


def finish(status: int) -> NoReturn:
    """Ends the process with `status` after flushing logs and output (see the module's note)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            if stream is sys.stdout:
                _silence_stdout()
        except (OSError, ValueError):
            pass
    if TEMPORAL_BRIDGE in sys.modules:
        os._exit(status)
    sys.exit(status)


def _silence_stdout() -> None:
    """After a closed pipe, later writes (and the interpreter's last flush) go nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
