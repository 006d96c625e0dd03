"""Add the shared Slack rate-limit windows and the escalation state of incidents.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from opsbot.db.types import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_rate_limits",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("window_start", UtcDateTime(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_slack_rate_limits")),
    )
    op.create_table(
        "incident_escalations",
        sa.Column(
            "incident_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("reminders", sa.Integer(), nullable=False),
        sa.Column("last_reminded_at", UtcDateTime(), nullable=True),
        sa.Column("escalated_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_escalations_incident_id_incidents"),
        ),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_incident_escalations")),
    )


def downgrade() -> None:
    op.drop_table("incident_escalations")
    op.drop_table("slack_rate_limits")
