"""``POST /sns``: the SNS HTTP/S subscription endpoint.

The views stay thin: verify, parse, call one service function, answer. No
call to Jira, Slack or AWS happens inside a Notification request.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request

import handlers
from opsbot import logs
from opsbot.audit import audit
from opsbot.db import store
from opsbot.db.session import transaction
from opsbot.incidents import service
from opsbot.intake.inbound import certificates, delivery_of, inbound_of
from opsbot.runtime import Runtime
from opsbot.sns import verify as sns
from opsbot.web import error_response, runtime

log = logging.getLogger(__name__)
bp = Blueprint("intake", __name__)


@bp.post("/sns")
def sns_intake() -> Any:
    """Receive one SNS HTTP/S delivery."""
    rt = runtime()
    try:
        fields = sns.parse_envelope(request.get_data(cache=False))
        # The message id names this delivery in the log and X-Request-Id; the request resets it.
        logs.bind(request_id=logs.safe_id(fields.get("MessageId")))
        message = sns.verify(
            fields,
            certificates(rt),
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
    alerts = handlers.parse(inbound_of(message, rt.sources))
    result = service.ingest(
        rt.sessions,
        delivery=delivery_of(message, "push"),
        alerts=alerts,
        policy=rt.policy,
        now=rt.clock(),
        silences=rt.silences,
    )
    outcome = "duplicate" if result.duplicate else "recorded"
    rt.metrics.inc("opsbot_deliveries_total", channel="push", outcome=outcome)
    for alert, decided in zip(alerts, result.outcomes, strict=False):
        source = handlers.metric_source(alert.source)
        rt.metrics.inc("opsbot_alerts_total", source=source, decision=decided.action)
    return jsonify(
        status=outcome,
        alerts=[
            {"fingerprint": o.fingerprint, "action": o.action, "incident_id": o.incident_id}
            for o in result.outcomes
        ],
    )


def _confirm(rt: Runtime, message: sns.SnsMessage) -> Any:
    assert message.subscribe_url is not None
    sns.check_subscribe_url(message.subscribe_url, message.topic_arn)
    refusal = _confirmation_refusal(rt, message.topic_arn)
    if refusal is not None:
        log.warning("SNS subscription not confirmed (SubscribeURL not visited): %s", refusal)
        rt.metrics.inc("opsbot_sns_subscriptions_refused_total", reason="topic_not_allowed")
        rt.metrics.inc("opsbot_deliveries_total", channel="push", outcome="rejected_subscription")
        return error_response("topic_not_allowed", refusal, 403)
    with transaction(rt.sessions) as session:
        seen = store.find_delivery(session, "sns", message.message_id)
        if seen is not None and seen.outcome == "confirmed":
            return jsonify(status="duplicate")
    try:
        status = sns.confirm_subscription(message.subscribe_url)
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


def _confirmation_refusal(rt: Runtime, topic_arn: str) -> str | None:
    """Return why a subscription to this topic must not be confirmed, or None if it may be."""
    allowed = rt.settings.sns_topic_arns
    if allowed:
        in_list = topic_arn in allowed
        return None if in_list else f"topic {topic_arn} is not in OPSBOT_SNS_TOPIC_ARNS"
    parts = topic_arn.split(":")
    owner = parts[4] if len(parts) == 6 else ""
    account = rt.policy.accounts.find(owner) if owner else None
    if account is not None and account.id == owner:
        return None
    # With no allow-list, only topics owned by the estate's own accounts may subscribe opsbot.
    return (
        f"topic {topic_arn} is owned by account {owner or '(none)'}, which is not in the account "
        "map, and OPSBOT_SNS_TOPIC_ARNS is empty"
    )


def _record_confirmation(rt: Runtime, message: sns.SnsMessage, outcome: str, detail: str) -> None:
    now = rt.clock()
    with transaction(rt.sessions) as session:
        delivery = delivery_of(message, "push")
        values = {**delivery.__dict__, "received_at": now, "outcome": outcome}
        delivery_id = store.insert_delivery(session, values)
        if delivery_id is None:
            seen = store.find_delivery(session, "sns", message.message_id)
            assert seen is not None
            store.set_delivery_outcome(session, seen.id, outcome)
        audit(
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
        values = {**delivery_of(message, "push").__dict__, "received_at": now}
        if store.insert_delivery(session, {**values, "outcome": "unsubscribed"}) is not None:
            audit(
                session,
                actor="sns",
                action="sns.unsubscribed",
                subject=("topic", message.topic_arn),
                now=now,
            )
            log.warning("SNS says %s unsubscribed opsbot; not resubscribing", message.topic_arn)
    rt.metrics.inc("opsbot_deliveries_total", channel="push", outcome="unsubscribe")
    return jsonify(status="recorded")


def register(app: Flask) -> None:
    """Mount ``POST /sns``."""
    app.register_blueprint(bp)
