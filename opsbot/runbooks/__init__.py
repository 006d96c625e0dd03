"""Runbooks: the catalogue, runs through SSM with approvals, patch windows, their jobs and CLI."""

from opsbot.runbooks.cli import patch, runbooks
from opsbot.runbooks.jobs import add_jobs

__all__ = ["add_jobs", "patch", "runbooks"]
