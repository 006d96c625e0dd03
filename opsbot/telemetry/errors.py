"""Error reports, opt-in (``opsbot[sentry]``): the Sentry SDK when ``OPSBOT_SENTRY_DSN`` is set.

The Flask and logging integrations report unhandled errors and ERROR log
lines. What opsbot receives is not its to send on: alert bodies (request
bodies, SQL parameters in a database error's message, local variables) are
kept out of every event (``scrub_event``). Started per process like tracing.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from opsbot.config import Settings

log = logging.getLogger(__name__)

SCRUBBED = "[scrubbed]"
MESSAGE_LIMIT = 300
# Request headers worth keeping; every other header (tokens, signatures, cookies) is dropped.
KEPT_HEADERS = frozenset({"user-agent", "content-type", "content-length", "x-request-id"})
# SQLAlchemy appends the statement and its parameters (the alert's values) to its messages, and
# PostgreSQL's DETAIL line can quote a row ("Failing row contains (...)").
SQL_TAIL = re.compile(r"\s*(\[(SQL|parameters):|DETAIL:).*", re.DOTALL)


def available() -> bool:
    """Return whether the sentry extra is installed."""
    try:
        import sentry_sdk  # noqa: F401  (loaded only when a DSN asks for it)
    except ImportError:
        return False
    return True


def announce(settings: Settings) -> None:
    """Say once at start when a DSN is set but the extra is missing."""
    if settings.sentry_dsn is not None and not available():
        log.warning(
            "error reports unavailable: OPSBOT_SENTRY_DSN is set but the sentry extra is not "
            "installed (pip install 'opsbot[sentry]')"
        )


def start(settings: Settings) -> bool:
    """Start reporting errors to Sentry when a DSN is set; return whether on."""
    if settings.sentry_dsn is None or not available():
        return False
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        integrations=[
            FlaskIntegration(),
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
        ],
        # No PII (the SDK's default, and its event scrubber stays on), no bodies, no locals.
        max_request_body_size="never",
        include_local_variables=False,
        before_send=scrub_event,  # type: ignore[arg-type]
        before_breadcrumb=scrub_breadcrumb,  # type: ignore[arg-type]
    )
    return True


def stop() -> None:
    """Send what is queued and stop reporting (at exit, and between tests)."""
    sentry_sdk = sys.modules.get("sentry_sdk")  # never imported: nothing to stop
    if sentry_sdk is not None and sentry_sdk.get_client().is_active():
        sentry_sdk.get_client().close(timeout=5)


def scrub_event(event: dict[str, Any], _hint: Any = None) -> dict[str, Any]:
    """Return the event without alert bodies: no request body, SQL parameters or extras."""
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("data", None)
        request.pop("cookies", None)
        request.pop("query_string", None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {k: v for k, v in headers.items() if k.lower() in KEPT_HEADERS}
    event.pop("extra", None)
    for exception in (event.get("exception") or {}).get("values") or []:
        if isinstance(exception.get("value"), str):
            exception["value"] = scrub_text(exception["value"])
        for frame in (exception.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    entry = event.get("logentry")
    if isinstance(entry, dict):
        for key in ("message", "formatted"):
            if isinstance(entry.get(key), str):
                entry[key] = scrub_text(entry[key])
        entry.pop("params", None)
    for crumb in (event.get("breadcrumbs") or {}).get("values") or []:
        scrub_breadcrumb(crumb)
    return event


def scrub_breadcrumb(crumb: dict[str, Any], _hint: Any = None) -> dict[str, Any]:
    """Return the breadcrumb with its message trimmed and its data dropped."""
    if isinstance(crumb.get("message"), str):
        crumb["message"] = scrub_text(crumb["message"])
    crumb.pop("data", None)
    return crumb


def scrub_text(text: str) -> str:
    """Return a message without SQLAlchemy's statement and parameters, bounded in length."""
    return SQL_TAIL.sub(f" {SCRUBBED}", text)[:MESSAGE_LIMIT]
