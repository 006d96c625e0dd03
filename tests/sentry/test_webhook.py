"""POST /sentry/webhook: signed webhooks open and resolve incidents; bad ones store nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from opsbot.app import MAX_REQUEST_BYTES
from opsbot.config import ConfigError, Settings, parse_policy
from opsbot.db.models import Delivery, Incident
from opsbot.intake.sources_config import parse_sources
from opsbot.runtime import Runtime
from tests.support.clock import Clock
from tests.support.hostile import assert_refused, row_counts
from tests.support.sentry import SECRET, deliver, load, signature

ISSUE = "issue-created-sentrydocs.json"
EVENT_ALERT = "event-alert-triggered-sentrydocs.json"
METRIC = "metric-alert-resolved-sentrydocs.json"


def incidents(rt: Runtime) -> list[Incident]:
    with rt.sessions() as session:
        return list(session.scalars(select(Incident).order_by(Incident.id)))


def issue(action: str, status: str = "unresolved") -> dict:
    body = load(ISSUE)
    body["action"] = action
    body["data"]["issue"]["status"] = status
    return body


def test_an_issue_opens_in_its_projects_account_and_resolves_when_sentry_says_so(
    client: FlaskClient, rt: Runtime, clock: Clock
) -> None:
    opened = deliver(client, "issue", issue("created"))
    clock.advance(minutes=1)
    event_alert = load(EVENT_ALERT)
    event_alert["data"]["event"]["issue_id"] = "1170820242"  # an alert about that issue
    alerted = deliver(client, "event_alert", event_alert)
    clock.advance(minutes=10)
    resolved = deliver(client, "issue", issue("resolved", "resolved"))

    assert opened.status_code == 200 and opened.json["status"] == "recorded"
    actions = [r.json["alerts"][0]["action"] for r in (opened, alerted, resolved)]
    assert actions == ["open", "repeat", "resolve"]
    (incident,) = incidents(rt)
    assert (incident.source, incident.account_id, incident.environment, incident.team) == (
        "sentry",
        "444455556666",
        "prod",
        "web",
    )
    assert (incident.status, incident.priority, incident.count) == ("resolved", "P2", 2)
    assert incident.title == "Sentry FRONT-END-9: ReferenceError: blooopy is not defined"


def test_a_metric_alert_follows_critical_warning_resolved_in_its_mapped_environment(
    client: FlaskClient, rt: Runtime, clock: Clock
) -> None:
    priorities = []
    for action in ("critical", "warning", "resolved"):
        body = load(METRIC)
        body["action"] = action
        clock.advance(minutes=5)
        assert deliver(client, "metric_alert", body).status_code == 200
        priorities.append(incidents(rt)[0].priority)

    (incident,) = incidents(rt)
    assert (incident.environment, incident.team, incident.account_id) == ("nonprod", "data", "")
    assert priorities == ["P2", "P4", "P4"]  # nonprod: critical P2, medium P4
    assert incident.status == "resolved"


def test_an_unmapped_project_is_prod_without_an_account(client: FlaskClient, rt: Runtime) -> None:
    body = issue("created")
    body["data"]["issue"]["project"]["slug"] = "unknown-project"

    assert deliver(client, "issue", body).status_code == 200
    (incident,) = incidents(rt)
    assert (incident.account_id, incident.environment, incident.team) == ("", "prod", "")


def test_the_same_body_twice_is_one_delivery(client: FlaskClient, rt: Runtime) -> None:
    first = deliver(client, "issue", issue("created"))
    second = deliver(client, "issue", issue("created"))

    assert (first.json["status"], second.json["status"]) == ("recorded", "duplicate")
    with rt.sessions() as session:
        (delivery,) = session.scalars(select(Delivery)).all()
    assert (delivery.namespace, delivery.channel, delivery.message_type) == (
        "sentry",
        "sentry",
        "issue.created",
    )


@pytest.mark.parametrize("resource", ["installation", "comment", "error"])
def test_resources_that_are_not_alerts_are_answered_and_not_stored(
    client: FlaskClient, rt: Runtime, resource: str
) -> None:
    before = row_counts(rt)

    response = deliver(client, resource, {"action": "created", "data": {}})

    assert response.status_code == 200 and response.json["status"] == "ignored"
    assert row_counts(rt) == before


@pytest.mark.parametrize(
    "sign",
    [
        None,  # unsigned
        "",
        "0" * 64,
        signature(b"another body"),
        signature(json.dumps(load(ISSUE)).encode(), "the wrong secret"),
        "sha256=" + signature(json.dumps(load(ISSUE)).encode()),
        "é" * 64,  # not ASCII: still a 401, not a 500
    ],
)
def test_unsigned_or_wrongly_signed_is_401_and_stores_nothing(
    client: FlaskClient, rt: Runtime, sign: str | None
) -> None:
    before = row_counts(rt)
    raw = json.dumps(load(ISSUE)).encode()

    response = deliver(client, "issue", raw, sign=sign)

    assert response.status_code == 401
    assert response.json["error"] == "unauthorized"
    assert_refused(response, before, rt)


def test_an_uppercase_signature_is_the_same_digest(client: FlaskClient) -> None:
    raw = json.dumps(load(ISSUE)).encode()

    assert deliver(client, "issue", raw, sign=signature(raw).upper()).status_code == 200


@pytest.mark.parametrize(
    ("resource", "raw", "code"),
    [
        ("issue", b"not json", "bad_json"),
        ("issue", b"[1, 2]", "bad_event"),
        ("issue", b"\xff\xfe", "bad_json"),
        ("issue", b"[" * 40 + b"]" * 40, "bad_json"),
        ("issue", json.dumps({"action": "created", "data": {}}).encode(), "bad_event"),
        ("metric_alert", json.dumps({"action": "critical", "data": {"metric_alert": {}}}).encode(),
         "bad_event"),
        ("", json.dumps(load(ISSUE)).encode(), "bad_request"),
    ],
)  # fmt: skip
def test_malformed_signed_bodies_are_400_and_store_nothing(
    client: FlaskClient, rt: Runtime, resource: str, raw: bytes, code: str
) -> None:
    before = row_counts(rt)

    response = deliver(client, resource, raw)

    assert response.status_code == 400
    assert response.json["error"] == code
    assert_refused(response, before, rt)


def padded(size: int) -> bytes:
    """Return a signed-able issue body of exactly ``size`` bytes."""
    body = issue("created")
    body["data"]["issue"]["padding"] = ""
    base = len(json.dumps(body).encode())
    body["data"]["issue"]["padding"] = "x" * (size - base)
    raw = json.dumps(body).encode()
    assert len(raw) == size
    return raw


def test_a_body_at_the_request_cap_is_taken_and_one_past_it_is_413(
    client: FlaskClient, rt: Runtime
) -> None:
    before = row_counts(rt)

    refused = deliver(client, "issue", padded(MAX_REQUEST_BYTES + 1))
    assert refused.status_code == 413
    assert_refused(refused, before, rt)
    taken = deliver(client, "issue", padded(MAX_REQUEST_BYTES))
    assert taken.status_code == 200 and taken.json["status"] == "recorded"


def test_the_endpoint_is_off_without_the_client_secret(
    settings: Settings, make_app: Callable[[Settings], Flask], config_path: Path
) -> None:
    config_path.write_text("")
    client = make_app(settings).test_client()

    response = deliver(client, "issue", issue("created"))

    assert response.status_code == 404
    assert response.json == {
        "error": "not_configured",
        "detail": "Sentry webhooks are off: set OPSBOT_SENTRY_CLIENT_SECRET.",
    }


def test_the_secret_never_reaches_the_log(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")

    deliver(client, "issue", issue("created"), sign="wrong")
    deliver(client, "issue", issue("created"))

    assert SECRET not in caplog.text
    assert "Sentry webhook refused" in caplog.text


def test_project_map_errors_are_reported_at_their_line() -> None:
    text = 'accounts: {}\nsentry:\n  projects:\n    web: {acount: "x"}\n'

    with pytest.raises(ConfigError) as raised:
        parse_sources(parse_policy(text, "opsbot.yaml"))

    assert str(raised.value).startswith("opsbot.yaml:4: sentry.projects.web.acount: unknown key")
