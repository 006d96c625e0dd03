"""Helpers shared by the Jira tests: settings pointing at the fake Jira, a worker, row lookups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from opsbot.config import Settings
from opsbot.db.models import Incident, OutboxRow
from opsbot.jira.sync import JiraSync
from opsbot.outbox.worker import OutboxWorker
from opsbot.runtime import Runtime
from tests.fakes.jira_api import FakeJira

WEBHOOK_SECRET = "hook-secret-for-tests"
CONFIG = """
accounts:
  "111122223333": {name: prod-cim, environment: prod}
jira:
  priorities: {P1: Highest, P2: High, P3: Medium, P4: Low, P5: Lowest}
  incident_url: "https://opsbot.example.com/api/incidents/{id}"
  search_lag: 30s
"""


def jira_settings(settings: Settings, fake: FakeJira, **overrides: Any) -> Settings:
    """Return the test settings with Jira pointing at the fake (plain issues in OPS)."""
    values: dict[str, Any] = {
        "jira_url": fake.url,
        "jira_user": fake.user,
        "jira_token": fake.token,
        "jira_project": "OPS",
        "jira_requests_per_second": 1000.0,
        "jira_timeout_seconds": 2.0,
        "jira_webhook_secret": WEBHOOK_SECRET,
    }
    return Settings(**(settings.model_dump() | values | overrides))


def write_config(path: Path, extra: str = "") -> None:
    """Write the YAML file the app reads."""
    path.write_text(CONFIG + extra)


def worker(rt: Runtime, clock: Any, sync: JiraSync | None = None) -> OutboxWorker:
    """Return an outbox worker with only the Jira sender, on the test clock."""
    return OutboxWorker(
        rt.sessions,
        {"jira": sync or JiraSync(rt)},
        metrics=rt.metrics,
        clock=clock,
        rng=lambda: 0.5,
    )


def jira_rows(rt: Runtime) -> list[OutboxRow]:
    with rt.sessions() as session:
        stmt = select(OutboxRow).where(OutboxRow.target == "jira").order_by(OutboxRow.id)
        return list(session.execute(stmt).scalars())


def incidents(rt: Runtime) -> list[Incident]:
    with rt.sessions() as session:
        return list(session.execute(select(Incident).order_by(Incident.id)).scalars())
