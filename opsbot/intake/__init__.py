"""Intake: SNS push (``POST /sns``), SQS pull, and ``POST /api/events``.

The routes are mounted by ``register`` in ``opsbot.intake.push`` and
``opsbot.intake.events_api``; this face stays free of the web framework.
"""

from opsbot.intake.sqs import SqsWorkers

__all__ = ["SqsWorkers"]
