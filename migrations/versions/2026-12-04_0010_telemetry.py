"""Telemetry: the trace context of outbox rows, last job successes, last deliveries (issue 12).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 18:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from opsbot.db.types import UtcDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("trace_parent", sa.String(length=64), nullable=True))
    op.create_table(
        "job_runs",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("last_success_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_runs")),
    )
    # /metrics reads the last delivery per channel and per (channel, topic) by index lookups.
    op.create_index("ix_deliveries_channel_received_at", "deliveries", ["channel", "received_at"])
    op.create_index(
        "ix_deliveries_channel_topic_received_at",
        "deliveries",
        ["channel", "topic_arn", "received_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_channel_topic_received_at", table_name="deliveries")
    op.drop_index("ix_deliveries_channel_received_at", table_name="deliveries")
    op.drop_table("job_runs")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("trace_parent")
