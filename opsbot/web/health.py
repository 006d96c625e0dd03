"""Health: ``GET /healthz`` (alive), ``/readyz`` (can take traffic), ``/status``, ``/metrics``.

``/readyz`` depends on the database and its schema only: an integration's
trouble (Jira or Slack refusing credentials, an outage) must not take SNS
intake out of a load balancer. That goes to ``/status`` and the metrics,
read from the database, so every replica shows what the workers saw.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request
from sqlalchemy import text

from opsbot.db import migrate, store
from opsbot.db.session import transaction
from opsbot.metrics import CONTENT_TYPE, http_method_label
from opsbot.outbox.status import read_status
from opsbot.telemetry import DatabaseGauges
from opsbot.web.errors import error_response
from opsbot.web.request import runtime

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Answer while the process is alive."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Any:
    """Answer 200 when the database is reachable and its schema is current."""
    rt = runtime()
    try:
        with rt.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current = migrate.current_revision(rt.engine)
    except Exception as exc:
        log.warning("not ready: database unreachable: %s", exc)
        return error_response("database_unavailable", "The database is unreachable.", 503)
    head = migrate.head_revision()
    if current != head:
        detail = f"Schema at {current or 'nothing'}, code expects {head}: run 'opsbot db upgrade'."
        return error_response("schema_outdated", detail, 503)
    return jsonify(status="ready", schema=current)


@bp.get("/status")
def status() -> Response:
    """Describe each integration as the senders last saw it, and the outbox by target."""
    rt = runtime()
    with transaction(rt.sessions) as session:
        integrations = read_status(session)
        counts = store.outbox_counts(session)
    outbox: dict[str, dict[str, int]] = {}
    for (target, state), n in counts.items():
        outbox.setdefault(target, {})[state] = n
    return jsonify(
        integrations={
            target: {
                "state": row.state,
                "detail": row.detail,
                "since": row.since.isoformat(),
                "checked_at": row.checked_at.isoformat(),
            }
            for target, row in sorted(integrations.items())
        },
        outbox=outbox,
    )


@bp.get("/metrics")
def metrics() -> Response:
    """Expose metrics in the Prometheus text format: every worker's counters, the DB gauges.

    Answers when the database is down too (``opsbot_db_up 0``, no DB gauges).
    """
    rt = runtime()
    gauges = DatabaseGauges(rt.sessions, rt.clock, rt.settings.sns_topic_arns)
    return Response(rt.metrics.render([gauges]), content_type=CONTENT_TYPE)


def register(app: Flask) -> None:
    """Mount the health routes, and time every request."""
    app.register_blueprint(bp)

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()
        runtime().metrics.in_flight.inc()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.pop("started", None)
        if started is not None:
            # the route template, never the raw path: a scanner must not grow /metrics
            endpoint = request.url_rule.rule if request.url_rule else "unmatched"
            metrics = runtime().metrics
            metrics.in_flight.dec()
            metrics.observe(
                "opsbot_http_request_duration_seconds",
                time.perf_counter() - started,
                endpoint=endpoint,
                method=http_method_label(request.method),
                status=str(response.status_code),
            )
        return response

    @app.teardown_request
    def _unfinished(_exc: BaseException | None) -> None:
        if g.pop("started", None) is not None:  # no response was made (after_request skipped)
            runtime().metrics.in_flight.dec()
