"""Helpers for the runbook tests: the account map, outbox, audit and run lookups."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from opsbot.db.models import AuditEntry, OutboxRow, RunbookRun

PROD = "111122223333"
NONPROD = "222233334444"
SANDBOX = "444455556666"
INSTANCE = "i-0123456789abcdef0"

CONFIG = f"""
accounts:
  "{PROD}": {{name: prod-web, environment: prod, role_arn: "arn:aws:iam::{PROD}:role/opsbot"}}
  "{NONPROD}": {{name: stage-web, environment: nonprod,
                 role_arn: "arn:aws:iam::{NONPROD}:role/opsbot"}}
  "{SANDBOX}": {{name: lab, environment: sandbox}}
"""


def outbox_rows(rt: Any, incident_id: int | None = None) -> list[tuple[str, str, dict]]:
    with rt.sessions() as s:
        stmt = select(OutboxRow).order_by(OutboxRow.id)
        if incident_id is not None:
            stmt = stmt.where(OutboxRow.incident_id == incident_id)
        return [(r.target, r.kind, r.payload) for r in s.execute(stmt).scalars()]


def audit_actions(rt: Any, run_id: int) -> list[tuple[str, str]]:
    with rt.sessions() as s:
        rows = s.execute(
            select(AuditEntry)
            .where(AuditEntry.subject_type == "run", AuditEntry.subject_id == str(run_id))
            .order_by(AuditEntry.id)
        ).scalars()
        return [(r.actor, r.action) for r in rows]


def load_run(rt: Any, run_id: int) -> RunbookRun:
    with rt.sessions() as s:
        run = s.get(RunbookRun, run_id)
        assert run is not None
        s.expunge(run)
        return run


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
