"""Telemetry: alerting gauges read from the database, traces (opt-in) and error reports (opt-in)."""

from opsbot.telemetry import errors, tracing
from opsbot.telemetry.gauges import DatabaseGauges

__all__ = ["DatabaseGauges", "errors", "tracing"]
