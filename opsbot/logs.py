"""Logging: text or JSON lines (``OPSBOT_LOG_FORMAT``), carrying the ids of the work at hand.

The ids (request, incident, fingerprint, outbox row) live in a context
variable: a web request, an outbox send or an ingest binds them, a filter on
the handler copies them onto every record logged meanwhile. JSON lines are
one object a line, for CloudWatch Logs Insights. Values are bounded and
printable; secrets are never logged (settings hold them as SecretStr).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

from opsbot.config import Settings

CONTEXT_FIELDS = ("request_id", "incident_id", "fingerprint", "outbox_id")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Chatty libraries: their INFO lines (every job run, every migration step) are noise.
QUIET_LOGGERS = ("apscheduler", "alembic")
ID_LIMIT = 128

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: ContextVar[Mapping[str, Any]] = ContextVar("opsbot_log_context", default=_EMPTY)


def safe_id(value: object, limit: int = ID_LIMIT) -> str | None:
    """Return the value if it fits a log line and a header (bounded printable ASCII), else None."""
    text = str(value) if value is not None else ""
    if not text or len(text) > limit or not all(" " < ch < "\x7f" for ch in text):
        return None
    return text


def bind(**fields: Any) -> Token[Mapping[str, Any]]:
    """Add ids to the log context (None leaves a field as it is); return the token to reset."""
    merged = dict(_context.get())
    merged.update({k: v for k, v in fields.items() if k in CONTEXT_FIELDS and v is not None})
    return _context.set(MappingProxyType(merged))


def fresh(**fields: Any) -> Token[Mapping[str, Any]]:
    """Start a new log context holding only these ids; return the token to reset."""
    values = {k: v for k, v in fields.items() if k in CONTEXT_FIELDS and v is not None}
    return _context.set(MappingProxyType(values))


def reset(token: Token[Mapping[str, Any]]) -> None:
    """Put the log context back as it was before ``bind`` or ``fresh``."""
    _context.reset(token)


@contextmanager
def context(**fields: Any) -> Iterator[None]:
    """Log with these ids inside the block."""
    token = bind(**fields)
    try:
        yield
    finally:
        reset(token)


def current() -> Mapping[str, Any]:
    """Return the ids bound now."""
    return _context.get()


class ContextFilter(logging.Filter):
    """Copies the bound ids onto each record (an ``extra=`` given to the call wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted (servers swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def formatter_for(log_format: str) -> logging.Formatter:
    """Return the formatter of a log format: ``json`` or ``text``."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def handler_for(log_format: str = "text") -> logging.Handler:
    """Return a stderr handler in the log format, adding the bound ids to each record."""
    handler = StderrHandler()
    handler.setFormatter(formatter_for(log_format))
    handler.addFilter(ContextFilter())
    handler._opsbot = True  # type: ignore[attr-defined]  # marks ours, for a second setup
    return handler


def setup_logging(settings: Settings) -> None:
    """Log to stderr at the configured level and format; quieten APScheduler and Alembic."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    root = logging.getLogger()
    if any(not getattr(h, "_opsbot", False) for h in root.handlers):
        return  # configured by someone else (a test runner): like basicConfig, leave it be
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler_for(settings.log_format))
    root.setLevel(settings.log_level)


def gunicorn_logconfig(settings: Settings) -> dict[str, Any]:
    """Return gunicorn's ``logconfig_dict``: its loggers go through opsbot's handler and format.

    The access log stays off (WARNING), as without this configuration: the load
    balancer keeps one, and requests that matter log their own lines.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"opsbot": {"()": handler_for, "log_format": settings.log_format}},
        "formatters": {},
        "root": {"level": settings.log_level, "handlers": ["opsbot"]},
        "loggers": {
            "gunicorn.error": {"level": settings.log_level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
        },
    }
