"""Ingest fast path: indexes that earn their place (issue 14).

Every delivery writes its rows once and their index entries with them. Two
indexes served no query and are dropped: ``alerts.fingerprint`` (alerts are
read by incident, by delivery for pruning, by heartbeat; never by fingerprint)
and ``outbox.incident_id`` (the one query by incident, the Jira reconcile's
"calls still in flight", reads pending and sending rows, which
``ix_outbox_state_due_at`` finds).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 18:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_index("ix_alerts_fingerprint")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_incident_id")


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.create_index("ix_outbox_incident_id", ["incident_id"], unique=False)
    with op.batch_alter_table("alerts") as batch:
        batch.create_index("ix_alerts_fingerprint", ["fingerprint"], unique=False)
