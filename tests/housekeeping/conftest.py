"""Housekeeping fixtures: a runtime with retention settings, and rows of known ages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update

from opsbot.audit import audit
from opsbot.config import Settings
from opsbot.core.alert import Alert, AlertStatus, Severity, make_fingerprint
from opsbot.db.models import OutboxRow
from opsbot.db.session import transaction
from opsbot.incidents.service import DeliveryIn, IngestResult, ingest
from opsbot.runtime import Runtime
from opsbot.slack.dispatch import first_time

BODY = '{"detail": "' + "x" * 200 + '"}'


class Rows:
    """Makes rows the way opsbot makes them (ingest, Slack dedup, audit), at chosen times."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.n = 0

    def alert(
        self, at: datetime, resource: str, status: AlertStatus = AlertStatus.FIRING
    ) -> IngestResult:
        """Ingest one API delivery with one alert for ``resource`` at ``at``."""
        self.n += 1
        alert = Alert(
            fingerprint=make_fingerprint("test", resource),
            status=status,
            severity=Severity.HIGH,
            source="test",
            title=f"{resource} is broken",
            resource=resource,
        )
        delivery = DeliveryIn("api", f"m-{self.n}", "api", "event", BODY)
        return ingest(
            self.rt.sessions, delivery=delivery, alerts=[alert], policy=self.rt.policy, now=at
        )

    def delivery(self, at: datetime, namespace: str = "sns") -> int:
        """Record a delivery that produced no alert (a subscription confirmation, say)."""
        self.n += 1
        delivery = DeliveryIn(namespace, f"d-{self.n}", "push", "Notification", BODY)
        result = ingest(
            self.rt.sessions, delivery=delivery, alerts=[], policy=self.rt.policy, now=at
        )
        assert result.delivery_id is not None
        return result.delivery_id

    def slack_retry_key(self, at: datetime) -> None:
        self.n += 1
        with transaction(self.rt.sessions) as session:
            assert first_time(session, f"trigger-{self.n}", at)

    def audit(self, at: datetime) -> None:
        self.n += 1
        with transaction(self.rt.sessions) as session:
            audit(session, actor="U0OPS", action="test.done", subject=("test", str(self.n)), now=at)

    def finish_outbox(self, incident_id: int, state: str, at: datetime) -> None:
        """Mark an incident's outbox rows as the worker leaves them."""
        with transaction(self.rt.sessions) as session:
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.incident_id == incident_id)
                .values(state=state, updated_at=at)
            )


@pytest.fixture
def make_rt(settings: Settings, make_app: Callable[[Settings], Flask]) -> Callable[..., Runtime]:
    """Build a runtime with some settings changed (retention, batch size, export)."""

    def build(**changes: Any) -> Runtime:
        rt: Runtime = make_app(Settings(**(settings.model_dump() | changes))).extensions["opsbot"]
        return rt

    return build


DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
