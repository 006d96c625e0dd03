"""The audit log: who did what to which subject, and when (append-only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from opsbot.db import store

ACTOR = "opsbot"


def audit(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: tuple[str, str],
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append an audit entry: who did what to which subject, and when."""
    store.insert_audit(
        session,
        {
            "at": now,
            "actor": actor,
            "action": action,
            "subject_type": subject[0],
            "subject_id": subject[1],
            "detail": detail or {},
        },
    )


def audit_incident(
    session: Session, action: str, incident_id: int, now: datetime, **detail: Any
) -> None:
    """Append an audit entry by opsbot itself about an incident."""
    audit(
        session, actor=ACTOR, action=action, subject=("incident", str(incident_id)), now=now,
        detail=detail,
    )  # fmt: skip
