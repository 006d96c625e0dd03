"""The read API and POST /api/events under hostile input (issue 15): a JSON 4xx, nothing stored;
and the published events schema allows nothing the columns cannot hold."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from sqlalchemy import String

from handlers.base import ALERT_CODE_LIMITS, ALERT_TEXT_LIMITS
from opsbot.db.models import AlertRow, Delivery, Incident
from opsbot.db.session import transaction
from opsbot.intake.events_schema import EVENT
from tests.support.hostile import assert_refused, row_counts
from tests.support.sns import alarm_message, notify


def event(**fields: Any) -> dict[str, Any]:
    return {"id": "e-1", "source": "nagios", "resource": "db1", "title": "Disk full",
            "severity": "high", **fields}  # fmt: skip


def post_raw(client: Any, text: str) -> Any:
    data = text.encode("utf-8", "surrogatepass")
    return client.post("/api/events", data=data, content_type="application/json")


def cursor_of(number: int) -> str:
    return base64.urlsafe_b64encode(f"i:{number}".encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "query",
    ["limit=²", "limit=\uff11", "limit=+5", "limit=501", "limit=0", f"cursor={cursor_of(2**63)}",
     f"cursor={cursor_of(2**63 - 1 + 10**30)}", "cursor=%C2%B2", f"cursor={cursor_of(0)}"],
)  # fmt: skip
def test_bad_limits_and_cursors_are_400(client, rt, query) -> None:
    before = row_counts(rt)
    response = client.get(f"/api/incidents?{query}")
    assert_refused(response, before, rt)
    assert response.status_code == 400


def test_limit_at_its_bounds_is_accepted(client) -> None:
    assert client.get("/api/incidents?limit=1").status_code == 200
    assert client.get("/api/incidents?limit=500").status_code == 200
    assert client.get(f"/api/incidents?cursor={cursor_of(2**63 - 1)}").status_code == 200


@pytest.mark.parametrize("raw_id", ["\uff11", "²", "1\u0661", "0", str(2**63), "-1"])
def test_an_id_that_is_not_an_ascii_bigint_is_404(client, signer, clock, rt, raw_id) -> None:
    assert notify(client, signer, clock, alarm_message()).status_code == 200  # incident 1 exists
    before = row_counts(rt)
    response = client.get(f"/api/incidents/{raw_id}")
    assert_refused(response, before, rt)
    assert response.status_code == 404
    assert client.get("/api/incidents/1").status_code == 200


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000, '{"events": ' + "[" * 40 + "]" * 40 + "}",
     '{"events": [{"id": "\\ud800", "source": "s", "resource": "r", "title": "t", '
     '"severity": "low"}]}'],
)  # fmt: skip
def test_deep_json_and_lone_surrogate_ids_are_400(client, rt, text) -> None:
    before = row_counts(rt)
    assert_refused(post_raw(client, text), before, rt)


def test_a_lone_surrogate_or_nul_in_display_text_is_replaced(client, rt) -> None:
    body = json.dumps({"events": [event(title="a\ud800b", summary="x\x00y")]})
    response = post_raw(client, body)
    assert response.status_code == 200, response.get_data(as_text=True)
    with transaction(rt.sessions) as session:
        incident = session.query(Incident).one()
        assert incident.title == "a\ufffdb" and incident.summary == "x\ufffdy"
        assert "\x00" not in session.query(Delivery).one().body


@pytest.mark.parametrize("name", ["id", "dedup_key", "source", "account_id", "region", "link"])
def test_a_nul_in_an_identifier_is_refused(client, rt, name) -> None:
    values = {"id": "a\x00", "dedup_key": "a\x00", "source": "a\x00", "region": "a\x00",
              "account_id": "11112222333\x00", "link": "https://x/\x00"}  # fmt: skip
    before = row_counts(rt)
    response = client.post("/api/events", json={"events": [event(**{name: values[name]})]})
    assert_refused(response, before, rt)


@pytest.mark.parametrize("occurred", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-23:59"])
def test_a_schema_valid_time_outside_utc_is_400_not_overflow(client, rt, occurred) -> None:
    before = row_counts(rt)
    response = client.post("/api/events", json={"events": [event(occurred_at=occurred)]})
    assert_refused(response, before, rt)
    assert response.get_json()["field"] == "events[0].occurred_at"


@pytest.mark.parametrize(
    ("text", "utc"),
    [("2026-11-29T08:00:00Z", "2026-11-29T08:00:00"),
     ("2026-11-29t08:00:00z", "2026-11-29T08:00:00"),
     ("2026-11-29T09:00:00.123456789+01:00", "2026-11-29T08:00:00.123456"),
     ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59")],
)  # fmt: skip
def test_rfc3339_times_are_accepted(client, rt, text, utc) -> None:
    response = client.post("/api/events", json={"events": [event(occurred_at=text)]})
    assert response.status_code == 200, response.get_data(as_text=True)
    with transaction(rt.sessions) as session:
        stored = session.query(AlertRow).one().occurred_at
        assert stored.replace(tzinfo=None).isoformat() == utc


@pytest.mark.parametrize(
    "text", ["2026-11-29", "2026-11-29T08:00:00", "2026-11-29T08:00Z", "20261129T080000Z",
             "2026-W48-7T08:00:00Z", "2026-11-29T08:00:00+0100", "2026-11-29T08:00:00 Z"],
)  # fmt: skip
def test_other_iso_8601_forms_are_refused(client, rt, text) -> None:
    before = row_counts(rt)
    response = client.post("/api/events", json={"events": [event(occurred_at=text)]})
    assert_refused(response, before, rt)


def test_region_at_and_past_its_column_width(client, rt) -> None:
    ok = client.post("/api/events", json={"events": [event(region="r" * 32)]})
    assert ok.status_code == 200
    before = row_counts(rt)
    too_long = client.post("/api/events", json={"events": [event(id="e-2", region="r" * 33)]})
    assert_refused(too_long, before, rt)


def _width(model: type, column: str) -> int | None:
    kind = model.__table__.columns[column].type  # type: ignore[attr-defined]
    return kind.length if isinstance(kind, String) else None


def test_the_events_schema_and_the_edge_limits_fit_the_columns() -> None:
    props = EVENT["properties"]
    assert props["id"]["maxLength"] <= _width(Delivery, "message_id")  # type: ignore[operator]
    assert props["region"]["maxLength"] <= _width(Incident, "region")  # type: ignore[operator]
    assert props["resource"]["maxLength"] <= _width(Incident, "resource")  # type: ignore[operator]
    assert props["title"]["maxLength"] <= _width(Incident, "title")  # type: ignore[operator]
    source_max = int(props["source"]["pattern"].split("{0,")[1].split("}")[0]) + 1
    assert source_max <= _width(Incident, "source")  # type: ignore[operator]
    for model in (Incident, AlertRow):
        for column, limit in {**ALERT_TEXT_LIMITS, **ALERT_CODE_LIMITS}.items():
            width = _width(model, column)
            assert width is None or limit <= width, (model, column)
