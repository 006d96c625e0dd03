"""Create runbook_runs: every requested runbook run, its approvals, SSM ids and outcome.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 05:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from opsbot.db.types import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "runbook_runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("runbook", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("document", sa.String(length=128), nullable=False),
        sa.Column("parameters", JSON, nullable=False),
        sa.Column("document_parameters", JSON, nullable=False),
        sa.Column("targets", JSON, nullable=False),
        sa.Column("max_concurrency", sa.String(length=8), nullable=False),
        sa.Column("max_errors", sa.String(length=8), nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("requester", sa.String(length=128), nullable=False),
        sa.Column("approval", sa.String(length=8), nullable=False),
        sa.Column("approver", sa.String(length=128), nullable=True),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("incident_id", ID, nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("auto", sa.Boolean(), nullable=False),
        sa.Column("patch_window", sa.String(length=64), nullable=True),
        sa.Column("window", JSON, nullable=False),
        sa.Column("command_id", sa.String(length=64), nullable=True),
        sa.Column("execution_id", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("approved_at", UtcDateTime(), nullable=True),
        sa.Column("started_at", UtcDateTime(), nullable=True),
        sa.Column("deadline_at", UtcDateTime(), nullable=True),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("next_check_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_runbook_runs_incident_id_incidents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runbook_runs")),
    )
    op.create_index(
        "ix_runbook_runs_fingerprint_created_at", "runbook_runs", ["fingerprint", "created_at"]
    )
    op.create_index(op.f("ix_runbook_runs_incident_id"), "runbook_runs", ["incident_id"])
    op.create_index(
        "ix_runbook_runs_state_next_check_at", "runbook_runs", ["state", "next_check_at"]
    )


def downgrade() -> None:
    op.drop_table("runbook_runs")
