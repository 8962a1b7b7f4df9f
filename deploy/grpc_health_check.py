#!/usr/bin/env python3
"""Probe a coalition gRPC server: exit 0 when grpc.health.v1 says SERVING, 1 otherwise.

    grpc-health-check [HOST:PORT] [SERVICE]      (default 127.0.0.1:50050, the whole server)

The image installs this file as /usr/local/bin/grpc-health-check; Compose healthchecks and
Kubernetes probes run it. It uses grpcio-health-checking, already a dependency of the project,
so the image needs no probe binary. During a graceful stop the server reports NOT_SERVING,
so the probe fails while in-flight calls finish.
"""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(target: str, service: str = "", timeout: float = 3.0) -> str | None:
    """None when `target` serves `service`; otherwise why not."""
    try:
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
    except grpc.RpcError as err:
        return f"{err.code().name}: {err.details()}"
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return None


def main(argv: list[str]) -> int:
    target = argv[1] if len(argv) > 1 else "127.0.0.1:50050"
    service = argv[2] if len(argv) > 2 else ""
    problem = check(target, service)
    if problem:
        print(f"{target} {service or '(server)'}: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
