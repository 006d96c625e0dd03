"""Heartbeats: expected events whose absence opens an incident, and opsbot's own outbound ping."""

from opsbot.heartbeats.config import Heartbeat, parse_heartbeats, with_heartbeats
from opsbot.heartbeats.jobs import add_jobs
from opsbot.heartbeats.ping import ping_if_healthy
from opsbot.heartbeats.watch import check_heartbeats

__all__ = [
    "Heartbeat",
    "add_jobs",
    "check_heartbeats",
    "parse_heartbeats",
    "ping_if_healthy",
    "with_heartbeats",
]
