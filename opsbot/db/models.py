"""The tables of opsbot (Alembic revisions in ``migrations/`` create them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from opsbot.db.types import BigId, Json, UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ACTIVE_SQL = "status IN ('open', 'acknowledged')"
PENDING_SQL = "state = 'pending'"
HEARTBEAT_SQL = "silence_id LIKE 'heartbeat:%'"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Delivery(Base):
    """Every inbound message, recorded once by (namespace, message_id)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("namespace", "message_id"),
        # the last delivery per channel and per (channel, topic), for /metrics (0010)
        Index("ix_deliveries_channel_received_at", "channel", "received_at"),
        Index("ix_deliveries_channel_topic_received_at", "channel", "topic_arn", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    namespace: Mapped[str] = mapped_column(String(16))  # sns, eventbridge, api
    message_id: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(16))  # how it came: push, sqs, api
    message_type: Mapped[str] = mapped_column(String(32))
    topic_arn: Mapped[str] = mapped_column(String(256), default="")
    subject: Mapped[str | None] = mapped_column(String(256))
    body: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    outcome: Mapped[str] = mapped_column(String(32))


class Incident(Base):
    """One problem, identified by fingerprint; at most one active per fingerprint."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index(
            "uq_incidents_active_fingerprint",
            "fingerprint",
            unique=True,
            sqlite_where=text(ACTIVE_SQL),
            postgresql_where=text(ACTIVE_SQL),
        ),
        Index("ix_incidents_fingerprint_id", "fingerprint", "id"),
        Index("ix_incidents_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(2))
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(512))
    summary: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(128))
    account_id: Mapped[str] = mapped_column(String(32), default="")
    account_name: Mapped[str] = mapped_column(String(128), default="")
    environment: Mapped[str] = mapped_column(String(16))
    team: Mapped[str] = mapped_column(String(64), default="")
    region: Mapped[str] = mapped_column(String(32), default="")
    resource: Mapped[str] = mapped_column(String(512), default="")
    console_url: Mapped[str] = mapped_column(Text, default="")
    count: Mapped[int] = mapped_column(default=1)
    flapping: Mapped[bool] = mapped_column(default=False)
    flips: Mapped[list[str]] = mapped_column(Json, default=list)
    last_alert_status: Mapped[str] = mapped_column(String(16))
    last_alert_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    route: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    owner: Mapped[str | None] = mapped_column(String(128))
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    jira_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    slack_channel: Mapped[str | None] = mapped_column(String(64))
    slack_ts: Mapped[str | None] = mapped_column(String(32))


class AlertRow(Base):
    """Every alert a handler produced, linked to the incident it counted towards."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_incident_id_id", "incident_id", "id"),
        # a heartbeat's last event: only the alerts a heartbeat matched are indexed (0008)
        Index(
            "ix_alerts_heartbeat",
            "silence_id",
            "received_at",
            sqlite_where=text(HEARTBEAT_SQL),
            postgresql_where=text(HEARTBEAT_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    fingerprint: Mapped[str] = mapped_column(String(64))  # no index: never queried by (0006)
    status: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(512))
    summary: Mapped[str] = mapped_column(Text, default="")
    account_id: Mapped[str] = mapped_column(String(32), default="")
    region: Mapped[str] = mapped_column(String(32), default="")
    resource: Mapped[str] = mapped_column(String(512), default="")
    labels: Mapped[dict[str, str]] = mapped_column(Json, default=dict)
    decision: Mapped[str] = mapped_column(String(16))
    silence_id: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OutboxRow(Base):
    """A call to Jira, Slack or SSM, written with the state change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index(
            "uq_outbox_pending_coalesce_key",
            "coalesce_key",
            unique=True,
            sqlite_where=text(PENDING_SQL),
            postgresql_where=text(PENDING_SQL),
        ),
        Index("ix_outbox_state_due_at", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    target: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    # no index (0006): the one query by incident reads pending/sending rows via state
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    coalesce_key: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))  # pending, sending, done, skipped, dead
    attempts: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # the rate budget slot this row paid for ahead (it calls then without paying again)
    reserved_slot: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # W3C traceparent of the span that queued the row; its send span links to it (0010)
    trace_parent: Mapped[str | None] = mapped_column(String(64))


class SilenceRow(Base):
    """A silence made by an operator or by a patch window (config silences live in YAML)."""

    __tablename__ = "silences"
    __table_args__ = (Index("ix_silences_ends_at", "ends_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    matcher: Mapped[dict[str, Any]] = mapped_column(Json)
    starts_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AuditEntry(Base):
    """Who did what, when, to what. Append-only: the database refuses UPDATE and DELETE."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_subject", "subject_type", "subject_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class RateBudget(Base):
    """A token bucket shared by every worker (Jira requests, Slack posts per channel, updates).

    ``tokens`` may be negative: slots handed out ahead to rows that wait for them.
    """

    __tablename__ = "rate_budgets"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class IntegrationStatus(Base):
    """What the senders last saw of an integration, read by ``GET /status`` on every replica."""

    __tablename__ = "integration_status"

    target: Mapped[str] = mapped_column(String(16), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # ok, failing, stopped
    detail: Mapped[str] = mapped_column(Text, default="")
    since: Mapped[datetime] = mapped_column(UtcDateTime)
    checked_at: Mapped[datetime] = mapped_column(UtcDateTime)


class IncidentEscalation(Base):
    """The reminders and escalation already done for an incident."""

    __tablename__ = "incident_escalations"

    incident_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("incidents.id"), primary_key=True, autoincrement=False
    )
    reminders: Mapped[int] = mapped_column(default=0)
    last_reminded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class RunbookRun(Base):
    """One requested runbook run through SSM: parameters as rendered, approvals, SSM ids, state."""

    __tablename__ = "runbook_runs"
    __table_args__ = (
        Index("ix_runbook_runs_state_next_check_at", "state", "next_check_at"),
        Index("ix_runbook_runs_fingerprint_created_at", "fingerprint", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    runbook: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # command, automation
    document: Mapped[str] = mapped_column(String(128))
    parameters: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    document_parameters: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    targets: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    max_concurrency: Mapped[str] = mapped_column(String(8), default="1")
    max_errors: Mapped[str] = mapped_column(String(8), default="0")
    timeout_seconds: Mapped[int] = mapped_column(default=600)
    requester: Mapped[str] = mapped_column(String(128))
    approval: Mapped[str] = mapped_column(String(8))  # none, one, other
    approver: Mapped[str | None] = mapped_column(String(128))
    account_id: Mapped[str] = mapped_column(String(32), default="")
    region: Mapped[str] = mapped_column(String(32), default="")
    environment: Mapped[str] = mapped_column(String(16))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    auto: Mapped[bool] = mapped_column(default=False)
    patch_window: Mapped[str | None] = mapped_column(String(64))
    window: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    command_id: Mapped[str | None] = mapped_column(String(64))
    execution_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(Text, default="")
    output: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    deadline_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_check_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class JobRun(Base):
    """When a scheduled job last finished without error (the last-success gauge reads it)."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_success_at: Mapped[datetime] = mapped_column(UtcDateTime)


class JiraCreateAttempt(Base):
    """A Jira create that was sent and may have applied: search before creating again."""

    __tablename__ = "jira_create_attempts"

    incident_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("incidents.id"), primary_key=True, autoincrement=False
    )
    attempted_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Approval(Base):
    """A request for a second person's decision: a runbook run, a patch window or a pipeline."""

    __tablename__ = "approvals"
    __table_args__ = (Index("ix_approvals_state_expires_at", "state", "expires_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # run, patch_window, codepipeline
    key: Mapped[str] = mapped_column(String(400), unique=True)  # what it approves, once
    state: Mapped[str] = mapped_column(String(16))  # pending, approved, denied, expired, closed
    level: Mapped[str] = mapped_column(String(8))  # none, one, other
    what: Mapped[str] = mapped_column(Text)
    account_id: Mapped[str] = mapped_column(String(32), default="")
    region: Mapped[str] = mapped_column(String(32), default="")
    environment: Mapped[str] = mapped_column(String(16))
    requester: Mapped[str] = mapped_column(String(128))
    decider: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runbook_runs.id"), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    channel: Mapped[str | None] = mapped_column(String(64))  # where to post (None: default)
    slack_channel: Mapped[str | None] = mapped_column(String(64))  # where it was posted
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class JobCursor(Base):
    """How far a scanning job has read (e.g. the last alert id the approvals intake saw)."""

    __tablename__ = "job_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(BigId)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class HeartbeatRow(Base):
    """A configured heartbeat: when opsbot began to watch it (its grace starts there)."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    watched_since: Mapped[datetime] = mapped_column(UtcDateTime)


class AuditExport(Base):
    """An export of the audit log up to an id; the database lets exported entries be pruned."""

    __tablename__ = "audit_exports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    first_id: Mapped[int] = mapped_column(BigInteger)
    up_to_id: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column()
    destination: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    exported_at: Mapped[datetime] = mapped_column(UtcDateTime)
