"""Every response carries X-Request-Id: the load balancer's trace id if fit, else a new one."""

from __future__ import annotations

import re

from tests.support.sns import alarm_message, notify

TRACE = "Root=1-67891233-abcdef012345678912345678"


def test_the_trace_id_is_echoed(client) -> None:
    response = client.get("/healthz", headers={"X-Amzn-Trace-Id": TRACE})
    assert response.headers["X-Request-Id"] == TRACE


def test_a_request_id_is_made_when_there_is_no_trace_id(client) -> None:
    first = client.get("/healthz").headers["X-Request-Id"]
    second = client.get("/healthz").headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second


def test_an_error_response_carries_it_too(client) -> None:
    response = client.get("/no-such-page", headers={"X-Amzn-Trace-Id": TRACE})
    assert response.status_code == 404
    assert response.headers["X-Request-Id"] == TRACE
    refused = client.post("/sns", data=b"not json", headers={"X-Amzn-Trace-Id": TRACE})
    assert refused.status_code == 400 and refused.headers["X-Request-Id"] == TRACE


def test_a_hostile_trace_id_is_not_echoed(client) -> None:
    for hostile in ("Root=" + "1" * 500, "Root=1\x01\x7f", "Root=caf\u00e9"):
        response = client.get("/healthz", headers={"X-Amzn-Trace-Id": hostile})
        echoed = response.headers["X-Request-Id"]
        assert echoed != hostile and re.fullmatch(r"[0-9a-f]{32}", echoed)


def test_an_sns_delivery_is_named_by_its_message_id(client, signer, clock) -> None:
    message_id = "6c1d5f2e-4c8b-5b4a-9d2e-0f1a2b3c4d5e"
    response = notify(client, signer, clock, alarm_message(), message_id=message_id)
    assert response.status_code == 200
    assert response.headers["X-Request-Id"] == message_id
