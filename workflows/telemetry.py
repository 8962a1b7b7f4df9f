"""The worker's metrics: every activity it runs, counted and timed by type and outcome, on the
worker's /metrics (COALITION_METRICS_PORT, coalition_kernel.telemetry)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Histogram
from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

ACTIVITIES = Counter(
    "coalition_worker_activities",
    "Temporal activities this worker ran, by type and outcome",
    ["activity", "outcome"],
)
ACTIVITY_SECONDS = Histogram(
    "coalition_worker_activity_seconds",
    "Time an activity attempt took",
    ["activity"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0),
)


class ActivityMetrics(Interceptor):
    """Passed to each Worker: wraps every activity attempt."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Counting(next)


class _Counting(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        name = activity.info().activity_type
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await super().execute_activity(input)
        except BaseException:
            outcome = "error"
            raise
        finally:
            ACTIVITY_SECONDS.labels(name).observe(time.perf_counter() - started)
            ACTIVITIES.labels(name, outcome).inc()
