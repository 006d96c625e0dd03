"""Add the shared Jira request budget and the Jira create attempts that may have applied.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 06:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from opsbot.db.types import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jira_request_budget",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_jira_request_budget")),
    )
    op.create_table(
        "jira_create_attempts",
        sa.Column(
            "incident_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("attempted_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_jira_create_attempts_incident_id_incidents"),
        ),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_jira_create_attempts")),
    )


def downgrade() -> None:
    op.drop_table("jira_create_attempts")
    op.drop_table("jira_request_budget")
