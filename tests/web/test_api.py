"""The incident API (auth, filters, pages, errors), health and metrics."""

from __future__ import annotations

import pytest
from alembic import command
from pydantic import SecretStr

from opsbot.db import migrate
from tests.support.sns import alarm_message, notify


def open_incidents(client, signer, clock, n: int) -> None:
    for i in range(n):
        clock.advance(seconds=1)
        assert notify(client, signer, clock, alarm_message(name=f"Alarm-{i}")).status_code == 200


def test_list_is_newest_first_and_pages_with_a_cursor(client, signer, clock) -> None:
    open_incidents(client, signer, clock, 5)
    first = client.get("/api/incidents?limit=2").json
    assert [i["title"].split(":")[1].strip()[:7] for i in first["incidents"]] == [
        "Alarm-4",
        "Alarm-3",
    ]
    second = client.get(f"/api/incidents?limit=2&cursor={first['next']}").json
    third = client.get(f"/api/incidents?limit=2&cursor={second['next']}").json
    ids = [i["id"] for page in (first, second, third) for i in page["incidents"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 5
    assert third["next"] is None


def test_incident_has_the_documented_fields(client, signer, clock) -> None:
    open_incidents(client, signer, clock, 1)
    [incident] = client.get("/api/incidents").json["incidents"]
    for field in (
        "id",
        "fingerprint",
        "status",
        "priority",
        "severity",
        "title",
        "source",
        "account_id",
        "environment",
        "region",
        "resource",
        "count",
        "flapping",
        "first_seen",
        "last_seen",
        "resolved_at",
        "jira_key",
        "slack_channel",
        "slack_ts",
    ):
        assert field in incident
    assert incident["first_seen"].endswith("Z")


def test_filters_by_status_priority_and_environment(client, signer, clock) -> None:
    open_incidents(client, signer, clock, 2)
    clock.advance(seconds=5)
    notify(
        client,
        signer,
        clock,
        alarm_message(name="Alarm-0", state="OK", old="ALARM", when=clock.now),
    )
    assert len(client.get("/api/incidents?status=resolved").json["incidents"]) == 1
    assert len(client.get("/api/incidents?status=open").json["incidents"]) == 1
    assert len(client.get("/api/incidents?environment=prod").json["incidents"]) == 2
    assert client.get("/api/incidents?priority=P5").json["incidents"] == []


def test_detail_has_alerts_and_audit(client, signer, clock) -> None:
    open_incidents(client, signer, clock, 1)
    clock.advance(seconds=5)
    notify(
        client,
        signer,
        clock,
        alarm_message(name="Alarm-0", state="OK", old="ALARM", when=clock.now),
    )
    [incident] = client.get("/api/incidents").json["incidents"]
    detail = client.get(f"/api/incidents/{incident['id']}").json
    assert [a["status"] for a in detail["alerts"]] == ["resolved", "firing"]
    assert [e["action"] for e in detail["audit"]] == ["incident.opened", "incident.resolved"]


@pytest.mark.parametrize(
    "query",
    [
        "status=bogus",
        "priority=P9",
        "environment=moon",
        "limit=0",
        "limit=abc",
        "limit=501",
        "cursor=!!!",
        "cursor=eDox",
    ],
)
def test_bad_parameters_are_a_precise_400(client, query) -> None:
    r = client.get(f"/api/incidents?{query}")
    assert r.status_code == 400 and r.json["error"] == "bad_parameter"


@pytest.mark.parametrize("incident_id", ["999999", str(2**63), "9" * 40])
def test_unknown_incident_is_404_json(client, incident_id) -> None:
    r = client.get(f"/api/incidents/{incident_id}")
    assert r.status_code == 404 and r.json["error"] == "not_found"


def test_unknown_route_and_wrong_method_are_json(client) -> None:
    assert client.get("/nope").json["error"] == "not_found"
    r = client.get("/sns")
    assert r.status_code == 405 and r.json["error"] == "method_not_allowed"


def test_without_a_token_the_api_answers_only_on_loopback(client) -> None:
    assert client.get("/api/incidents").status_code == 200
    r = client.get("/api/incidents", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert r.status_code == 401 and r.json["error"] == "unauthorized"


def test_with_a_token_every_caller_must_present_it(settings, make_app) -> None:
    app = make_app(settings.model_copy(update={"api_token": SecretStr("s3cret-token")}))
    client = app.test_client()
    assert client.get("/api/incidents").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.get("/api/incidents", headers=wrong).status_code == 401
    right = {"Authorization": "Bearer s3cret-token"}
    assert client.get("/api/incidents", headers=right).status_code == 200
    remote = client.get("/api/incidents", headers=right, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert remote.status_code == 200


def test_healthz_and_readyz(client) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["schema"] is not None


def test_readyz_refuses_an_outdated_schema(client, database_url) -> None:
    command.downgrade(migrate.alembic_config(database_url), "base")
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json["error"] == "schema_outdated"


def test_metrics_count_deliveries_rejections_incidents_and_outbox(client, signer, clock) -> None:
    open_incidents(client, signer, clock, 2)
    client.post("/sns", data=b"{broken", headers={"Content-Type": "text/plain"})
    body = client.get("/metrics").get_data(as_text=True)
    assert 'opsbot_deliveries_total{channel="push",outcome="recorded"} 2' in body
    assert 'outcome="rejected_malformed_json"} 1' in body
    assert 'opsbot_incidents{status="open"} 2' in body
    assert "opsbot_outbox_backlog 4" in body
    assert 'opsbot_alerts_total{decision="open",source="aws.cloudwatch"} 2' in body
    assert "opsbot_http_request_duration_seconds_bucket" in body
