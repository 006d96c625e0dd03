"""Writing outbox rows: every call to the outside world, in the transaction that causes it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from opsbot.core.effects import Effect
from opsbot.db import store
from opsbot.telemetry import tracing


def queue_effects(
    session: Session, incident_id: int, effects: Sequence[Effect], now: datetime
) -> None:
    """Write outbox rows for the effects on an incident (coalesced ones merge)."""
    rows = outbox_rows(incident_id, effects, now)
    if rows:
        store.insert_outbox(session, rows)


def outbox_rows(incident_id: int, effects: Sequence[Effect], now: datetime) -> list[dict[str, Any]]:
    """Return the outbox rows of the effects on an incident, as ``store.insert_outbox`` takes."""
    trace_parent = tracing.current_trace_parent()  # None unless traced (opsbot[otel])
    return [
        {
            "target": effect.target,
            "kind": effect.kind,
            "incident_id": incident_id,
            "payload": effect.payload,
            "coalesce_key": f"{effect.target}:{effect.kind}:{incident_id}"
            if effect.coalesce
            else None,
            "state": "pending",
            "attempts": 0,
            "due_at": now + effect.delay,
            "locked_until": None,
            "last_error": None,
            "created_at": now,
            "updated_at": now,
            "trace_parent": trace_parent,
        }
        for effect in effects
    ]
