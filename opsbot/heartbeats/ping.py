"""The outbound heartbeat: ``OPSBOT_HEARTBEAT_URL`` is fetched after each healthy cycle.

An external monitor (healthchecks.io, Cronitor, Dead Man's Snitch, an
uptime check) that stops hearing from opsbot knows opsbot itself is down —
the one failure opsbot cannot report. Healthy means the scheduler is running
(the ping is one of its jobs, so a stopped scheduler pings nothing) and the
database answers ``SELECT 1``. The request is a plain GET (what those
services document for a ping), bounded by ``OPSBOT_HEARTBEAT_TIMEOUT``; a
failure is logged and never stops anything. The URL is treated as a secret
(such URLs carry the check's key): only its host is ever logged.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import text

from opsbot.runtime import Runtime

log = logging.getLogger(__name__)

USER_AGENT = "opsbot-heartbeat"


def database_reachable(rt: Runtime) -> bool:
    """Return whether the database answers ``SELECT 1``."""
    try:
        with rt.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("heartbeat ping skipped: the database does not answer (%s)", type(exc).__name__)
        return False
    return True


def ping(url: str, timeout: float) -> bool:
    """GET the URL; return whether it answered 2xx. Never raises."""
    host = urlsplit(url).hostname or "?"
    # http(s) only: the setting is checked (Settings._check_heartbeat_url)
    request = urllib.request.Request(url, method="GET", headers={"User-Agent": USER_AGENT})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        log.warning("heartbeat ping to %s failed: HTTP %d", host, exc.code)
        return False
    except (OSError, ValueError) as exc:  # URLError, timeouts, resets
        reason = getattr(exc, "reason", exc)
        log.warning("heartbeat ping to %s failed: %s", host, type(reason).__name__)
        return False
    if not 200 <= status < 300:
        log.warning("heartbeat ping to %s failed: HTTP %d", host, status)
        return False
    return True


def ping_if_healthy(rt: Runtime, scheduler: BaseScheduler) -> bool:
    """Ping ``OPSBOT_HEARTBEAT_URL`` when the scheduler runs and the database answers."""
    url = rt.settings.heartbeat_url
    if url is None or not scheduler.running or not database_reachable(rt):
        return False
    return ping(url.get_secret_value(), rt.settings.heartbeat_timeout)
