"""Roots of full Merkle subtrees (RFC 9162: node = SHA-256(0x01 ‖ left ‖ right)), hashed by
helper processes so that closing a period uses every core.

A million-leaf root is a million SHA-256 calls of 65 bytes each, and hashlib holds the GIL for
inputs that short, so threads cannot share the work. The leaves are cut into full subtrees of
2^16 leaves (2 MiB of hashes, no odd node inside one) and each helper, a plain interpreter
started once per close (`python -S`, importing only this module), returns the 32-byte root of
each subtree it is sent. This module imports only the standard library: a helper starts in
milliseconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pathlib
import queue
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO

log = logging.getLogger(__name__)
_ROOT = pathlib.Path(__file__).resolve().parent.parent
_HELPER = (
    f"import sys; sys.path.insert(0, {str(_ROOT)!r}); "
    "from settlement.subtrees import serve; serve(int(sys.argv[1]))"
)


def subtree_root(leaves: bytes) -> bytes:
    """The root over concatenated 32-byte leaf hashes, a power of two of them, level by level."""
    sha256 = hashlib.sha256
    level = [leaves[i : i + 32] for i in range(0, len(leaves), 32)]
    while len(level) > 1:
        level = [
            sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)
        ]
    return level[0]


def serve(block_bytes: int) -> None:
    """A helper's loop: read a subtree's leaves (exactly `block_bytes`), write its root."""
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    while len(block := source.read(block_bytes)) == block_bytes:
        sink.write(subtree_root(block))
        sink.flush()


def helpers_for_this_machine() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


class SubtreeHashers:
    """`count` helper processes, each fed one subtree at a time by a thread of this process
    (the thread waits on the pipes without the GIL). They start at the first submit(), so a
    period too small to have a full subtree starts none. Use as a context manager; submit()
    returns a future of the subtree's root."""

    def __init__(self, count: int, block_bytes: int) -> None:
        self.count = count
        self.block_bytes = block_bytes
        self._idle: queue.SimpleQueue[subprocess.Popen[bytes]] = queue.SimpleQueue()
        self._procs: list[subprocess.Popen[bytes]] = []
        self._threads: ThreadPoolExecutor | None = None
        self._here = False  # True once starting a helper failed

    def submit(self, leaves: bytes) -> Future[bytes]:
        if len(leaves) != self.block_bytes:
            raise ValueError(f"a subtree is {self.block_bytes} bytes of leaves, not {len(leaves)}")
        if self._threads is None and not self._here:
            self._start()
        if self._threads is None:  # no helper could be started: hashed here, as before
            done: Future[bytes] = Future()
            done.set_result(subtree_root(leaves))
            return done
        return self._threads.submit(self._root, leaves)

    def _start(self) -> None:
        try:
            for _ in range(self.count):
                proc = subprocess.Popen(
                    [sys.executable, "-S", "-c", _HELPER, str(self.block_bytes)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
                self._procs.append(proc)
                self._idle.put(proc)
        except OSError as exc:
            log.warning("no subtree hashing helper (%s): hashing in this process", exc)
            self.close()
            self._procs.clear()
            self._here = True
            return
        self._threads = ThreadPoolExecutor(self.count, thread_name_prefix="subtree")

    def _root(self, leaves: bytes) -> bytes:
        proc = self._idle.get()
        try:
            stdin, stdout = _pipes(proc)
            stdin.write(leaves)
            stdin.flush()
            root = stdout.read(32)
        finally:
            self._idle.put(proc)
        if len(root) != 32:
            raise RuntimeError(f"a subtree hashing helper ended (exit code {proc.poll()})")
        return root

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=True)
        for proc in self._procs:
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):  # a helper that died: nothing to flush to
                        pipe.close()
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> SubtreeHashers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pipes(proc: subprocess.Popen[bytes]) -> tuple[IO[bytes], IO[bytes]]:
    assert proc.stdin is not None and proc.stdout is not None
    return proc.stdin, proc.stdout
