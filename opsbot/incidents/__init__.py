"""Incidents: the ingest transaction, operator actions, silences, escalation and their jobs."""

from opsbot.incidents.jobs import add_jobs

__all__ = ["add_jobs"]
