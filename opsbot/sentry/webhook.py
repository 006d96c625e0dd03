"""``POST /sentry/webhook``: Sentry's integration-platform webhooks become incidents.

Sentry signs every webhook with the integration's Client Secret:
``Sentry-Hook-Signature`` is the HMAC-SHA256 hex digest of the raw body
(https://docs.sentry.io/organization/integrations/integration-platform/webhooks/),
compared here in constant time. ``Sentry-Hook-Resource`` names what the body is
about; ``handlers.sentry`` turns it into alerts, which go through the same
service as SNS deliveries (rules, silences, lifecycle).

Answers: 404 ``not_configured`` while ``OPSBOT_SENTRY_CLIENT_SECRET`` is unset
(the endpoint is off, as ``/jira/webhook`` is without its secret); 413 for a
body over the app's request cap; 401 for a missing or wrong signature; 400 for
a body that is not a JSON object of the resource's documented shape, or no
resource header; 200 ``ignored`` for resources and actions that are not alerts
(installation, comment, error, …); 200 ``recorded``/``duplicate`` otherwise.
Nothing is stored for a 4xx. Each signed body is one delivery in namespace
"sentry", keyed by the SHA-256 of the body, so a resent webhook changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import replace
from typing import Any

from flask import Blueprint, Flask, jsonify, request

import handlers
from handlers import sentry as parser
from handlers.base import bound, clean, fit_alert, json_depth_within
from opsbot.core.accounts import Account, AccountMap
from opsbot.core.alert import Alert
from opsbot.core.policy import Policy
from opsbot.incidents import service
from opsbot.runtime import Runtime
from opsbot.web import ApiError, error_response, runtime, runtime_of

log = logging.getLogger(__name__)

bp = Blueprint("sentry_webhook", __name__)
NAMESPACE = "sentry"
RESOURCE_LIMIT = 40


def register(app: Flask) -> None:
    """Add the Sentry webhook route to the app (it answers 404 until the secret is set)."""
    if runtime_of(app).settings.sentry_client_secret is None:
        log.info("Sentry webhooks are off: set OPSBOT_SENTRY_CLIENT_SECRET")
    app.register_blueprint(bp)


def signature_valid(secret: str, body: bytes, given: str | None) -> bool:
    """Return whether ``given`` is the HMAC-SHA256 hex digest of the body under the secret."""
    if not given:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    # Bytes, not str: compare_digest refuses a non-ASCII str with TypeError.
    return hmac.compare_digest(given.strip().lower().encode("utf-8", "replace"), expected)


@bp.post("/sentry/webhook")
def sentry_webhook() -> Any:
    """Record one signed Sentry webhook as alerts; resolved issues resolve their incident."""
    rt = runtime()
    secret = rt.settings.sentry_client_secret
    if secret is None:
        return error_response(
            "not_configured", "Sentry webhooks are off: set OPSBOT_SENTRY_CLIENT_SECRET.", 404
        )
    body = request.get_data(cache=False)  # over the app's MAX_CONTENT_LENGTH: 413
    given = request.headers.get("Sentry-Hook-Signature")
    if not signature_valid(secret.get_secret_value(), body, given):
        log.warning(
            "Sentry webhook refused from %s: missing or wrong signature", request.remote_addr
        )
        rt.metrics.inc("opsbot_deliveries_total", channel="sentry", outcome="rejected_unauthorized")
        return error_response("unauthorized", "The Sentry-Hook-Signature is missing or wrong.", 401)
    resource = request.headers.get("Sentry-Hook-Resource", "").strip()
    if not resource:
        raise ApiError("bad_request", "The Sentry-Hook-Resource header is missing.", 400)
    document = read_document(body)
    projects = rt.sources.get("sentry") or parser.SentryProjects()
    try:
        alerts = [fit_alert(a) for a in parser.parse(resource, document, projects, rt.clock())]
    except ValueError as exc:
        raise ApiError("bad_event", f"Not a Sentry {bound(resource, 40)} webhook: {exc}.") from None
    action = bound(clean(str(document.get("action", ""))), RESOURCE_LIMIT)
    if not alerts:
        return jsonify(
            status="ignored", resource=bound(clean(resource), RESOURCE_LIMIT), action=action
        )
    return record(rt, body, resource, action, alerts, projects)


def read_document(body: bytes) -> dict[str, Any]:
    """Return the body as a JSON object, or raise the 400 that says why it is not one."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise ApiError("bad_json", "The body is not JSON.", 400) from None
    if not json_depth_within(document):
        raise ApiError("bad_json", "The body is nested more than 32 deep.", 400)
    if not isinstance(document, dict):
        raise ApiError("bad_event", "Expected a JSON object with action and data.", 400)
    return document


def record(
    rt: Runtime,
    body: bytes,
    resource: str,
    action: str,
    alerts: list[Alert],
    projects: parser.SentryProjects,
) -> Any:
    """Store the delivery and apply its alerts; answer with what each did."""
    slug = alerts[0].labels.get("sentry_project", "")
    delivery = service.DeliveryIn(
        namespace=NAMESPACE,
        message_id=hashlib.sha256(body).hexdigest(),
        channel="sentry",
        message_type=bound(f"{resource}.{action}", 32),
        body=clean(body.decode("utf-8", "replace")),
        subject=alerts[0].title[:256],
    )
    result = service.ingest(
        rt.sessions,
        delivery=delivery,
        alerts=alerts,
        policy=policy_for(rt.policy, projects.get(slug)),
        now=rt.clock(),
        silences=rt.silences,
    )
    outcome = "duplicate" if result.duplicate else "recorded"
    rt.metrics.inc("opsbot_deliveries_total", channel="sentry", outcome=outcome)
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


def policy_for(policy: Policy, project: parser.SentryProject | None) -> Policy:
    """Return the policy whose account map gives the project's account the YAML's environment
    and team (a project without an account gets an account of its own, id "")."""
    if project is None or not (project.environment or project.team):
        return policy
    accounts = policy.accounts
    base = accounts.get(project.account)
    account = Account(
        id=project.account,
        name=base.name if base else project.account or f"sentry/{project.slug}",
        environment=project.environment or accounts.environment_of(project.account),
        team=project.team or (base.team if base else ""),
        role_arn=base.role_arn if base else "",
    )
    others = tuple(a for a in accounts if a.id != account.id)
    return replace(policy, accounts=AccountMap((*others, account), accounts.default_environment))
