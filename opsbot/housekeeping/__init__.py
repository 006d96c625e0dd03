"""Housekeeping: pruning by retention, the audit export, configuration reload."""

from opsbot.housekeeping.export import ExportError
from opsbot.housekeeping.jobs import add_jobs, prune_job
from opsbot.housekeeping.prune import PruneReport, Retention, prune

__all__ = ["ExportError", "PruneReport", "Retention", "add_jobs", "prune", "prune_job"]
