"""Heartbeats and housekeeping (issue 12).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 18:40:00

Adds the heartbeats table (when each configured heartbeat began to be
watched), the partial index that finds a heartbeat's last event among the
stored alerts, and the audit exports: the append-only audit log now lets a
row be deleted once, and only once, an export that covers its id is recorded.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from opsbot.db.types import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
HEARTBEAT_SQL = "silence_id LIKE 'heartbeat:%'"
EXPORTED_SQL = "(SELECT coalesce(max(up_to_id), 0) FROM audit_exports)"


def upgrade() -> None:
    op.create_table(
        "heartbeats",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("watched_since", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_heartbeats")),
    )
    op.create_table(
        "audit_exports",
        sa.Column("id", ID, nullable=False),
        sa.Column("first_id", sa.BigInteger(), nullable=False),
        sa.Column("up_to_id", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("destination", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("exported_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_exports")),
    )
    op.create_index(
        "ix_alerts_heartbeat",
        "alerts",
        ["silence_id", "received_at"],
        unique=False,
        sqlite_where=sa.text(HEARTBEAT_SQL),
        postgresql_where=sa.text(HEARTBEAT_SQL),
    )
    _audit_deletes(exported_only=True)


def downgrade() -> None:
    _audit_deletes(exported_only=False)
    op.drop_index(
        "ix_alerts_heartbeat",
        table_name="alerts",
        sqlite_where=sa.text(HEARTBEAT_SQL),
        postgresql_where=sa.text(HEARTBEAT_SQL),
    )
    op.drop_table("audit_exports")
    op.drop_table("heartbeats")


def _audit_deletes(*, exported_only: bool) -> None:
    """Refuse every DELETE of audit entries, or only of those no recorded export covers."""
    if op.get_bind().dialect.name == "postgresql":
        allow = (
            f"IF TG_OP = 'DELETE' AND OLD.id <= {EXPORTED_SQL} THEN RETURN OLD; END IF; "
            if exported_only
            else ""
        )
        op.execute(
            "CREATE OR REPLACE FUNCTION opsbot_audit_log_immutable() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN {allow}"
            "RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
        return
    when = f"WHEN OLD.id > {EXPORTED_SQL} " if exported_only else ""
    op.execute("DROP TRIGGER audit_log_no_delete")
    op.execute(
        f"CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log {when}"
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
    )
