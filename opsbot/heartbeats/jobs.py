"""The heartbeat jobs: the dead-man's switch every minute, the outbound ping when configured."""

from __future__ import annotations

from apscheduler.schedulers.base import BaseScheduler

from opsbot.heartbeats.ping import ping_if_healthy
from opsbot.heartbeats.watch import check_heartbeats
from opsbot.jobs import JOB_OPTIONS
from opsbot.runtime import Runtime

CHECK_SECONDS = 60


def add_jobs(scheduler: BaseScheduler, rt: Runtime) -> None:
    """Add the heartbeat check (it reads the policy each run) and, with a URL, the ping."""
    scheduler.add_job(
        lambda: check_heartbeats(rt),
        "interval", seconds=CHECK_SECONDS, id="heartbeats", **JOB_OPTIONS,
    )  # fmt: skip
    if rt.settings.heartbeat_url:
        scheduler.add_job(
            lambda: ping_if_healthy(rt, scheduler),
            "interval", seconds=rt.settings.heartbeat_interval, id="heartbeat_ping",
            **JOB_OPTIONS,
        )  # fmt: skip
