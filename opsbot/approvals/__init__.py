"""Approvals: one request model for runbook runs, patch windows and CodePipeline approvals."""

from opsbot.approvals.jobs import add_jobs
from opsbot.approvals.pipelines import sender

__all__ = ["add_jobs", "sender"]
