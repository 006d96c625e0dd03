"""POST /api/events: batches, precise refusals, idempotency, same lifecycle as AWS events."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from flask import Flask
from pydantic import SecretStr
from sqlalchemy import func, select

from opsbot.config import Settings
from opsbot.core.alert import make_fingerprint
from opsbot.db.models import AlertRow, Delivery, Incident
from opsbot.intake.events_schema import SCHEMA, published
from opsbot.runtime import Runtime

SCHEMA_FILE = Path(__file__).parents[2] / "docs" / "events.schema.json"


def event(**fields: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "id": "evt-1",
        "source": "nagios",
        "resource": "db-01",
        "title": "Disk almost full",
        "summary": "/var at 97%",
        "severity": "high",
        "status": "firing",
        "labels": {"team": "dba"},
        "occurred_at": "2026-11-29T07:59:00Z",
        "link": "https://nagios.example.com/db-01",
    }
    value.update(fields)
    return {k: v for k, v in value.items() if v is not None}


def post(client: Any, *events: dict[str, Any], token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/api/events", json={"events": list(events)}, headers=headers)


def counts(rt: Runtime) -> tuple[int, int, int]:
    with rt.sessions() as s:
        return tuple(  # type: ignore[return-value]
            s.scalar(select(func.count()).select_from(m)) for m in (Delivery, AlertRow, Incident)
        )


def test_a_batch_opens_incidents_and_answers_per_event(client: Any, rt: Runtime) -> None:
    r = post(client, event(), event(id="evt-2", resource="db-02"))

    assert r.status_code == 200, r.json
    assert [x["status"] for x in r.json["results"]] == ["recorded", "recorded"]
    assert [x["alerts"][0]["action"] for x in r.json["results"]] == ["open", "open"]
    assert counts(rt) == (2, 2, 2)
    with rt.sessions() as s:
        incident = s.scalars(select(Incident).order_by(Incident.id)).first()
    assert incident is not None
    assert (incident.source, incident.severity, incident.resource) == ("nagios", "high", "db-01")
    assert incident.fingerprint == make_fingerprint("api", "nagios", "db-01", "Disk almost full")


def test_a_repeated_event_id_changes_nothing(client: Any, rt: Runtime) -> None:
    post(client, event())
    before = counts(rt)
    r = post(client, event(severity="critical", title="changed"))

    assert r.json["results"][0]["status"] == "duplicate"
    assert r.json["results"][0]["alerts"] == []
    assert counts(rt) == before


def test_resolved_with_the_dedup_key_resolves_the_incident(client: Any, rt: Runtime) -> None:
    post(client, event(dedup_key="disk:db-01"))
    r = post(client, event(id="evt-9", dedup_key="disk:db-01", status="resolved", title="ok"))

    assert r.json["results"][0]["alerts"][0]["action"] == "resolve"
    with rt.sessions() as s:
        assert s.scalars(select(Incident.status)).all() == ["resolved"]


def test_rules_and_silences_apply_as_to_aws_events(
    settings: Settings, make_app: Callable[[Settings], Flask], config_path: Path
) -> None:
    config_path.write_text(
        "rules:\n  - match: {source: nagios}\n    priority: P1\n"
        'silences:\n  - {match: {resource: "lab-*"}, until: "2030-01-01T00:00:00Z", '
        'reason: "lab"}\n'
    )
    app = make_app(settings)
    client = app.test_client()
    routed = post(client, event(severity="low"))
    silenced = post(client, event(id="evt-2", resource="lab-7"))

    assert silenced.json["results"][0]["alerts"][0]["action"] == "silenced"
    rt: Runtime = app.extensions["opsbot"]
    with rt.sessions() as s:
        incident = s.get(Incident, routed.json["results"][0]["alerts"][0]["incident_id"])
        assert incident is not None and incident.priority == "P1"


@pytest.mark.parametrize(
    ("events", "field", "detail_part"),
    [
        ([event(), event(id="evt-2", severity="urgent")], "events[1].severity", "'urgent'"),
        ([event(title=None)], "events[0]", "'title' is a required property"),
        ([event(status="open")], "events[0].status", "'open' is not one of"),
        ([event(labels={"team": 7})], "events[0].labels.team", "7 is not of type 'string'"),
        ([event(source="has spaces")], "events[0].source", "does not match"),
        ([event(colour="red")], "events[0]", "'colour' was unexpected"),
        ([event(occurred_at="yesterday")], "events[0].occurred_at", "RFC 3339"),
        ([event(link="ftp://x")], "events[0].link", "does not match"),
        ([event(title="x" * 201)], "events[0].title", "longer than the allowed 200"),
        ([event(), event()], "events[1].id", "repeats the id of events[0]"),
        ([], "events", "should be non-empty"),
        ([event(id=f"e{i}") for i in range(101)], "events", "longer than the allowed 100"),
    ],
)
def test_a_bad_field_is_refused_precisely_and_nothing_is_stored(
    client: Any, rt: Runtime, events: list[dict[str, Any]], field: str, detail_part: str
) -> None:
    r = client.post("/api/events", json={"events": events})

    assert r.status_code == 400
    assert r.json["error"] == "invalid_event"
    assert r.json["field"] == field
    assert r.json["detail"].startswith(f"{field}: ")
    assert detail_part in r.json["detail"]
    assert counts(rt) == (0, 0, 0)


@pytest.mark.parametrize(
    ("body", "code"),
    [(b"{not json", "bad_json"), (b"[]", "invalid_event"), (b'{"event": []}', "invalid_event")],
)
def test_a_bad_body_is_a_json_400(client: Any, body: bytes, code: str) -> None:
    r = client.post("/api/events", data=body, content_type="application/json")

    assert (r.status_code, r.json["error"]) == (400, code)


def test_a_token_is_required_when_configured(
    settings: Settings, make_app: Callable[[Settings], Flask]
) -> None:
    app = make_app(settings.model_copy(update={"api_token": SecretStr("s3cret")}))
    client = app.test_client()

    assert post(client, event()).status_code == 401
    assert post(client, event(), token="wrong").status_code == 401
    assert post(client, event(), token="s3cret").status_code == 200


def test_without_a_token_only_loopback_may_post(client: Any) -> None:
    r = client.post(
        "/api/events", json={"events": [event()]}, environ_base={"REMOTE_ADDR": "10.0.0.5"}
    )

    assert (r.status_code, r.json["error"]) == (401, "unauthorized")


def test_the_published_schema_is_the_one_enforced() -> None:
    assert SCHEMA_FILE.read_text() == published()
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_FILE.read_text()))
    jsonschema.validate({"events": [event()]}, SCHEMA)
