"""Approvals: one model for runbook runs, patch windows and CodePipeline (issue 13).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 18:40:00
"""

from __future__ import annotations

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
