"""HTTP intake and health: ``POST /sns``, ``/healthz``, ``/readyz``, ``/metrics``.

The views stay thin: verify, parse, call one service function, answer. No
call to Jira, Slack or AWS happens inside a Notification request.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request
from sqlalchemy import text

import handlers
from handlers.base import Inbound
from opsbot.db import migrate, store
from opsbot.db.models import Incident
from opsbot.db.session import transaction
from opsbot.incidents import service as services
from opsbot.metrics import Labels
from opsbot.runtime import Runtime, runtime
from opsbot.sns import verify as sns
from opsbot.web.errors import error_response

log = logging.getLogger(__name__)
bp = Blueprint("intake", __name__)


@bp.post("/sns")
def sns_intake() -> Any:
    """Receive one SNS HTTP/S delivery."""
    rt = runtime()
    try:
        fields = sns.parse_envelope(request.get_data(cache=False))
        message = sns.verify(
            fields,
            rt.certs,
            now=rt.clock(),
            max_age=timedelta(seconds=rt.settings.sns_max_age_seconds),
            allowed_topics=frozenset(rt.settings.sns_topic_arns),
        )
        if message.type == "SubscriptionConfirmation":
            return _confirm(rt, message)
    except sns.SnsError as exc:
        return _refuse(rt, exc)
    if message.type == "UnsubscribeConfirmation":
        return _unsubscribed(rt, message)
    return _notification(rt, message)


def _refuse(rt: Runtime, exc: sns.SnsError) -> tuple[Response, int]:
    log.warning("SNS delivery refused from %s: %s (%s)", request.remote_addr, exc.code, exc.detail)
    rt.metrics.inc("opsbot_deliveries_total", channel="push", outcome=f"rejected_{exc.code}")
    return error_response(exc.code, exc.detail, exc.status)


def _notification(rt: Runtime, message: sns.SnsMessage) -> Response:
    alerts = handlers.parse(
        Inbound(
            text=message.message,
            subject=message.subject,
            topic_arn=message.topic_arn,
            message_id=message.message_id,
            received_at=message.timestamp,
        )
    )
    result = services.ingest(
        rt.sessions,
        delivery=_delivery(message, "Notification"),
        alerts=alerts,
        policy=rt.policy,
        now=rt.clock(),
        silences=rt.silences,
    )
    outcome = "duplicate" if result.duplicate else "recorded"
    rt.metrics.inc("opsbot_deliveries_total", channel="push", outcome=outcome)
    for alert, decided in zip(alerts, result.outcomes, strict=False):
        rt.metrics.inc("opsbot_alerts_total", source=alert.source, decision=decided.action)
    return jsonify(
        status=outcome,
        alerts=[
            {"fingerprint": o.fingerprint, "action": o.action, "incident_id": o.incident_id}
            for o in result.outcomes
        ],
    )


def _delivery(message: sns.SnsMessage, kind: str, channel: str = "push") -> services.DeliveryIn:
    return services.DeliveryIn(
        namespace="sns",
        message_id=message.message_id,
        channel=channel,
        message_type=kind,
        body=message.message,
        topic_arn=message.topic_arn,
        subject=(message.subject or "")[:256] or None,
        sent_at=message.timestamp,
    )


def _confirm(rt: Runtime, message: sns.SnsMessage) -> Any:
    assert message.subscribe_url is not None
    sns.check_subscribe_url(message.subscribe_url, message.topic_arn)
    with transaction(rt.sessions) as session:
        seen = store.find_delivery(session, "sns", message.message_id)
        if seen is not None and seen.outcome == "confirmed":
            return jsonify(status="duplicate")
    try:
        status = rt.confirm_subscription(message.subscribe_url)
    except sns.SnsError as exc:
        status, detail = 0, exc.detail
    else:
        detail = f"SNS answered HTTP {status}"
    confirmed = 200 <= status < 300
    _record_confirmation(rt, message, "confirmed" if confirmed else "confirm_failed", detail)
    rt.metrics.inc("opsbot_deliveries_total", channel="push", outcome="subscription")
    if not confirmed:
        # 502 makes SNS deliver the confirmation again, so it is tried again.
        return error_response("confirmation_failed", detail, 502)
    log.info("confirmed the SNS subscription of %s", message.topic_arn)
    return jsonify(status="confirmed", topic_arn=message.topic_arn)


def _record_confirmation(rt: Runtime, message: sns.SnsMessage, outcome: str, detail: str) -> None:
    now = rt.clock()
    with transaction(rt.sessions) as session:
        delivery = _delivery(message, message.type)
        values = {**delivery.__dict__, "received_at": now, "outcome": outcome}
        delivery_id = store.insert_delivery(session, values)
        if delivery_id is None:
            seen = store.find_delivery(session, "sns", message.message_id)
            assert seen is not None
            store.set_delivery_outcome(session, seen.id, outcome)
        services.audit(
            session,
            actor="sns",
            action=f"sns.subscription_{outcome}",
            subject=("topic", message.topic_arn),
            now=now,
            detail={"detail": detail},
        )


def _unsubscribed(rt: Runtime, message: sns.SnsMessage) -> Response:
    now = rt.clock()
    with transaction(rt.sessions) as session:
        values = {**_delivery(message, message.type).__dict__, "received_at": now}
        if store.insert_delivery(session, {**values, "outcome": "unsubscribed"}) is not None:
            services.audit(
                session,
                actor="sns",
                action="sns.unsubscribed",
                subject=("topic", message.topic_arn),
                now=now,
            )
            log.warning("SNS says %s unsubscribed opsbot; not resubscribing", message.topic_arn)
    rt.metrics.inc("opsbot_deliveries_total", channel="push", outcome="unsubscribe")
    return jsonify(status="recorded")


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
    for check in rt.readiness:
        if (problem := check()) is not None:
            return error_response("integration_unavailable", problem, 503)
    return jsonify(status="ready", schema=current)


@bp.get("/metrics")
def metrics() -> Response:
    """Expose metrics in the Prometheus text format."""
    rt = runtime()
    with transaction(rt.sessions) as session:
        by_status = store.count_by(session, Incident.status)
        backlog, oldest = store.outbox_backlog(session, rt.clock())
    gauges: dict[str, dict[Labels, float]] = {
        "opsbot_incidents": {(("status", s),): float(n) for s, n in by_status.items()},
        "opsbot_outbox_backlog": {(): float(backlog)},
        "opsbot_outbox_oldest_seconds": {(): oldest},
    }
    body = rt.metrics.render(gauges)
    return Response(body, mimetype="text/plain; version=0.0.4")


def register(app: Flask) -> None:
    """Mount the intake and health routes, and time every request."""
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
