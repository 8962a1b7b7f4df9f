"""Several server processes on one port, for when one core is not enough.

A Python gRPC server is held near one core by the GIL; the kernel spreads a port's connections
over every process listening on it with SO_REUSEPORT. `serve_processes` checks that nobody holds
the port, then forks N copies of one server, each binding it with `reuse_port`, and stops them
all together: SIGINT/SIGTERM to the parent reaches every child, and one child failing to start
stops the others. Each child builds its own event loop, database pool and channels after the
fork (gRPC and SQLAlchemy must not cross a fork).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import signal
import socket
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from types import FrameType

from coalition_kernel.rpc import PortInUse

log = logging.getLogger(__name__)


def split_listen(listen: str) -> tuple[str, int]:
    """HOST:PORT (or [IPv6]:PORT) as a host and a port number."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address {listen!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def check_port_free(listen: str) -> None:
    """Refuses a port any process holds, including a group of processes sharing it through
    SO_REUSEPORT (which a reuse_port server would silently join)."""
    host, port = split_listen(listen)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise PortInUse(f"cannot listen on {listen}: {exc}") from exc
    for family, kind, proto, _name, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise PortInUse(
                    f"cannot listen on {listen}: {exc.strerror or exc}; stop the other server "
                    "or choose another port"
                ) from exc


def serve_processes(count: int, listen: str, serve_one: Callable[[int], int]) -> int:
    """Runs `serve_one(index)` in `count` forked processes that share `listen`'s port; returns 0
    when all stopped cleanly, else the first failing child's exit status (or 1)."""
    if count < 1:
        raise ValueError("--processes must be at least 1")
    if split_listen(listen)[1] == 0:
        raise ValueError(
            "--processes needs a fixed port (HOST:PORT, not port 0): the processes "
            "must all listen on the same one"
        )
    check_port_free(listen)
    context = multiprocessing.get_context("fork")
    children: list[BaseProcess] = []
    stopping = False

    def stop_children(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.is_alive() and child.pid is not None:
                child.terminate()  # SIGTERM: each child finishes its in-flight calls

    previous = {sig: signal.signal(sig, stop_children) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for index in range(count):
            started = context.Process(
                target=_child, args=(serve_one, index), name=f"server-{index}", daemon=False
            )
            started.start()
            children.append(started)
        status = 0
        remaining = list(children)
        while remaining:
            finished = [c for c in remaining if c.exitcode is not None]
            for child in finished:
                remaining.remove(child)
                if child.exitcode != 0 and not stopping:
                    # One process could not serve: the group is not what was asked for.
                    log.error(
                        "%s exited with status %s; stopping the others", child.name, child.exitcode
                    )
                    status = status or (
                        child.exitcode if child.exitcode and child.exitcode > 0 else 1
                    )
                    stop_children(signal.SIGTERM, None)
            if remaining:
                multiprocessing.connection.wait([c.sentinel for c in remaining], timeout=1.0)
        return status
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _child(serve_one: Callable[[int], int], index: int) -> None:
    # The parent's handlers were inherited by the fork; a child stops on its own signals.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise SystemExit(serve_one(index))
