"""Slack: the incident card (outbox sender), and /ops commands and buttons.

Bolt's ``register(app)`` is in ``opsbot.slack.bolt``; this face stays free of
the web framework, so the worker does not load it.
"""

from opsbot.slack.sync import sender

__all__ = ["sender"]
