"""Jira: one ticket per incident (outbox sender), the webhook, and reconciliation.

The webhook's ``register(app)`` is in ``opsbot.jira.webhook``; this face stays
free of the web framework, so the worker does not load it.
"""

from opsbot.jira.reconcile import add_jobs
from opsbot.jira.sync import sender

__all__ = ["add_jobs", "sender"]
