"""Add outbox budget reservations, shared rate budgets and the integration status rows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 16:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from opsbot.db.types import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("reserved_slot", UtcDateTime(), nullable=True))
    op.create_table(
        "rate_budgets",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_budgets")),
    )
    op.create_table(
        "integration_status",
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("since", UtcDateTime(), nullable=False),
        sa.Column("checked_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("target", name=op.f("pk_integration_status")),
    )
    op.drop_table("jira_request_budget")
    op.drop_table("slack_rate_limits")


def downgrade() -> None:
    op.create_table(
        "slack_rate_limits",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("window_start", UtcDateTime(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_slack_rate_limits")),
    )
    op.create_table(
        "jira_request_budget",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_jira_request_budget")),
    )
    op.drop_table("integration_status")
    op.drop_table("rate_budgets")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("reserved_slot")
