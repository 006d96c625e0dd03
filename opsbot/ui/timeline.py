"""An incident's story as one list: its alerts, audit entries and runbook runs, newest first."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from opsbot.db.models import AlertRow, AuditEntry, RunbookRun

BRIEF_LIMIT = 300
SLACK_ID = re.compile(r"[A-Z0-9]{1,32}")
SLACK_TS = re.compile(r"\d{1,12}\.\d{1,8}")


@dataclass(frozen=True)
class Event:
    """One line of the timeline."""

    at: datetime
    kind: str  # alert, audit, run
    what: str
    who: str
    detail: str
    run_id: int | None = None


def events(
    alerts: Iterable[AlertRow], entries: Iterable[AuditEntry], runs: Iterable[RunbookRun]
) -> list[Event]:
    """Return the timeline of an incident, newest first (ties: runs, audit, alerts)."""
    found = [
        *(_alert(a) for a in alerts),
        *(_audit(e) for e in entries),
        *(_run(r) for r in runs),
    ]
    order = {"alert": 0, "audit": 1, "run": 2}
    return sorted(found, key=lambda e: (_utc(e.at), order[e.kind]), reverse=True)


def _alert(row: AlertRow) -> Event:
    what = f"alert {row.status} ({row.decision})"
    detail = row.title if not row.summary else f"{row.title} — {row.summary}"
    return Event(row.received_at, "alert", what, row.source, brief(detail))


def _audit(row: AuditEntry) -> Event:
    return Event(row.at, "audit", row.action, row.actor, brief(row.detail))


def _run(row: RunbookRun) -> Event:
    what = f"runbook {row.runbook}: {row.state.replace('_', ' ')}"
    return Event(row.created_at, "run", what, row.requester, brief(row.reason), row.id)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def brief(value: Any) -> str:
    """Return a value as one short line of text (JSON for structures)."""
    if is_dataclass(value) and not isinstance(value, type):
        value = {k: v for k, v in asdict(value).items() if v not in (None, (), "")}
    if value is None or value == {} or value == "":
        return ""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = " ".join(text.split())
    return text if len(text) <= BRIEF_LIMIT else text[: BRIEF_LIMIT - 1] + "…"


def safe_href(url: str | None) -> str | None:
    """Return a URL fit for an href (http or https with a host), or None."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url.strip()


def slack_url(channel: str | None, ts: str | None) -> str | None:
    """Return the archive link of a Slack message, which Slack sends to the right workspace."""
    if not channel or not ts or not SLACK_ID.fullmatch(channel) or not SLACK_TS.fullmatch(ts):
        return None
    return f"https://slack.com/archives/{quote(channel)}/p{ts.replace('.', '')}"
