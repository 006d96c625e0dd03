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
from opsbot.db.models import Incident
from opsbot.db.session import transaction
from opsbot.metrics import Labels
from opsbot.outbox.status import read_status
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
    """Expose metrics in the Prometheus text format."""
    rt = runtime()
    with transaction(rt.sessions) as session:
        by_status = store.count_by(session, Incident.status)
        backlog, oldest = store.outbox_backlog(session, rt.clock())
        counts = store.outbox_counts(session)
        integrations = read_status(session)
    targets = {target for target, _ in counts}
    gauges: dict[str, dict[Labels, float]] = {
        "opsbot_incidents": {(("status", s),): float(n) for s, n in by_status.items()},
        "opsbot_outbox_backlog": {(): float(backlog)},
        "opsbot_outbox_oldest_seconds": {(): oldest},
        "opsbot_outbox_dead": {
            (("target", t),): float(counts.get((t, "dead"), 0)) for t in sorted(targets)
        },
        "opsbot_integration_up": {
            (("target", t),): float(row.state == "ok") for t, row in sorted(integrations.items())
        },
    }
    body = rt.metrics.render(gauges)
    return Response(body, mimetype="text/plain; version=0.0.4")


def register(app: Flask) -> None:
    """Mount the health routes, and time every request."""
    app.register_blueprint(bp)

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.get("started")
        if started is not None:
            endpoint = request.url_rule.rule if request.url_rule else "unmatched"
            runtime().metrics.observe(
                "opsbot_http_request_duration_seconds",
                time.perf_counter() - started,
                endpoint=endpoint,
                method=request.method,
            )
        return response
