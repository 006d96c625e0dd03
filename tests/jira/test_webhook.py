"""Jira → opsbot: the signed webhook and the reconciliation job resolve incidents."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from opsbot.jira.reconcile import reconcile_tickets
from opsbot.jira.webhook import signature_valid
from opsbot.jobs import run_singleton
from tests.support.hostile import assert_refused, row_counts
from tests.support.jira import (
    WEBHOOK_SECRET,
    incidents,
    jira_rows,
    jira_settings,
    worker,
    write_config,
)
from tests.support.outbox import drain
from tests.support.sns import alarm_message, notify


@pytest.fixture
def ticketed(client, signer, clock, rt) -> str:
    assert notify(client, signer, clock, alarm_message()).status_code == 200
    drain(worker(rt, clock))
    key = incidents(rt)[0].jira_key
    assert key
    return key


def event(key: str, *items: dict[str, Any], status: str = "Done", **fields: Any) -> dict[str, Any]:
    """Return a jira:issue_updated webhook body (the documented shape)."""
    category = {"Done": "done", "To Do": "new"}[status]
    return {
        "timestamp": 1796025600000,
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": {"accountId": "557058:f58131cb", "displayName": "Dana Desk"},
        "issue": {
            "id": "10001",
            "key": key,
            "fields": {
                "status": {"name": status, "statusCategory": {"key": category}},
                "resolution": {"name": "Done"} if status == "Done" else None,
                **fields,
            },
        },
        "changelog": {"id": "10100", "items": list(items)},
    }


RESOLVED = (
    {"field": "resolution", "fromString": None, "toString": "Done"},
    {"field": "status", "fromString": "To Do", "toString": "Done"},
)


def post_signed(client, body: dict[str, Any], secret: str = WEBHOOK_SECRET) -> Any:
    raw = json.dumps(body).encode()
    signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return client.post(
        "/jira/webhook",
        data=raw,
        headers={"X-Hub-Signature": f"sha256={signature}", "Content-Type": "application/json"},
    )


def test_a_ticket_resolved_by_a_person_resolves_its_incident(client, rt, ticketed) -> None:
    answer = post_signed(client, event(ticketed, *RESOLVED))
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "resolved"}
    [incident] = incidents(rt)
    assert incident.status == "resolved"
    kinds = [(r.kind, r.state) for r in jira_rows(rt)]
    assert ("resolve", "pending") not in kinds  # no transition back to Jira


def test_data_center_query_secret_is_accepted(client, rt, ticketed) -> None:
    answer = client.post(f"/jira/webhook?secret={WEBHOOK_SECRET}", json=event(ticketed, *RESOLVED))
    assert answer.status_code == 200
    assert incidents(rt)[0].status == "resolved"


def test_an_assignee_change_records_the_owner_without_commenting_back(client, rt, ticketed) -> None:
    change = {"field": "assignee", "fromString": None, "toString": "Dana Desk"}
    answer = post_signed(client, event(ticketed, change, status="To Do"))
    assert answer.get_json() == {"status": "assigned"}
    [incident] = incidents(rt)
    assert (incident.owner, incident.status) == ("Dana Desk", "open")
    assert [r.kind for r in jira_rows(rt)] == ["create"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"webhookEvent": "jira:issue_created", "issue": {"key": "OPS-1"}}, "ignored"),
        ({"webhookEvent": "jira:issue_updated", "issue": {"key": "NOPE-9"}}, "ignored"),
        ({"webhookEvent": "comment_created", "issue": {"key": "OPS-1"}}, "ignored"),
    ],
)
def test_irrelevant_events_are_answered_and_ignored(client, rt, ticketed, body, expected) -> None:
    answer = post_signed(client, body)
    assert (answer.status_code, answer.get_json()) == (200, {"status": expected})
    assert incidents(rt)[0].status == "open"


@pytest.mark.parametrize(
    ("headers", "query", "status", "code"),
    [
        ({}, "", 401, "unauthorized"),
        ({"X-Hub-Signature": "sha256=00"}, "", 401, "unauthorized"),
        ({"X-Hub-Signature": "md5=abc"}, "", 401, "unauthorized"),
        ({}, "?secret=wrong", 401, "unauthorized"),
    ],
)
def test_missing_or_wrong_secrets_are_refused(client, rt, ticketed, headers, query, status, code):
    answer = client.post(f"/jira/webhook{query}", json=event(ticketed, *RESOLVED), headers=headers)
    assert answer.status_code == status
    assert answer.get_json()["error"] == code
    assert incidents(rt)[0].status == "open"


def test_bad_json_is_a_clear_400(client) -> None:
    answer = client.post(f"/jira/webhook?secret={WEBHOOK_SECRET}", data=b"{not json")
    assert (answer.status_code, answer.get_json()["error"]) == (400, "bad_json")
    answer = client.post(f"/jira/webhook?secret={WEBHOOK_SECRET}", json=[1, 2])
    assert (answer.status_code, answer.get_json()["error"]) == (400, "bad_event")


def test_webhooks_are_off_without_a_secret(settings, fake, make_app, config_path) -> None:
    write_config(config_path)
    app = make_app(jira_settings(settings, fake, jira_webhook_secret=None))
    answer = app.test_client().post("/jira/webhook", json={})
    assert (answer.status_code, answer.get_json()["error"]) == (404, "not_configured")


def test_signature_check_is_exact() -> None:
    body = b'{"a": 1}'
    good = hmac.new(b"s", body, hashlib.sha256).hexdigest()
    assert signature_valid("s", body, f"sha256={good}", None)
    assert not signature_valid("s", body + b" ", f"sha256={good}", None)
    assert not signature_valid("s", body, None, None)
    assert signature_valid("s", body, None, "s")


def test_reconciliation_resolves_incidents_whose_ticket_is_done(rt, clock, fake, ticketed) -> None:
    job = reconcile_tickets(rt)
    assert run_singleton(rt, "jira_reconcile", job) == 0
    fake.resolve_by_person(ticketed)
    assert run_singleton(rt, "jira_reconcile", job) == 1
    [incident] = incidents(rt)
    assert incident.status == "resolved"
    assert run_singleton(rt, "jira_reconcile", job) == 0


def test_reconciliation_waits_while_jira_calls_are_queued(
    client, signer, clock, rt, fake, ticketed
) -> None:
    clock.advance(minutes=5)
    message = alarm_message(state="OK", old="ALARM", when=clock.now)
    assert notify(client, signer, clock, message).status_code == 200
    clock.advance(hours=1)
    assert notify(client, signer, clock, alarm_message(when=clock.now)).status_code == 200
    fake.resolve_by_person(ticketed)  # still Done in Jira: the reopen is not delivered yet
    assert run_singleton(rt, "jira_reconcile", reconcile_tickets(rt)) == 0
    assert incidents(rt)[0].status == "open"


# -- hostile input (issue 15): signed but oddly shaped, and unauthenticated garbage ------------


@pytest.mark.parametrize(
    "shape",
    [
        {"user": "bob"},
        {"changelog": [1]},
        {"changelog": {"items": "status"}},
        {"changelog": {"items": [1, "x", None]}},
        {"issue": {"key": "OPS-1", "fields": "Done"}},
        {"issue": {"key": ["OPS-1"], "fields": {"status": "Done", "assignee": 7}}},
        {"issue": {"key": "K" * 65, "fields": {}}},
        {"issue": {"key": "OPS-\x00", "fields": {}}},
    ],
)
def test_signed_events_of_odd_shapes_are_answered_without_error(
    client, rt, ticketed, shape
) -> None:
    body = {**event(ticketed, *RESOLVED), **shape}
    answer = post_signed(client, body)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["status"] in ("ignored", "unchanged", "resolved")


def test_deeply_nested_signed_json_is_400_and_changes_nothing(client, rt, ticketed) -> None:
    before = row_counts(rt)
    raw = '{"issue": {"key": "' + ticketed + '"}, "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    signature = hmac.new(WEBHOOK_SECRET.encode(), raw.encode(), hashlib.sha256).hexdigest()
    answer = client.post(
        "/jira/webhook", data=raw, headers={"X-Hub-Signature": f"sha256={signature}"}
    )
    assert_refused(answer, before, rt)


@pytest.mark.parametrize("header", ["sha256=é", "sha256=\u2603" * 10, "é=abc", "sha256="])
def test_a_non_ascii_signature_is_401_not_500(client, rt, ticketed, header) -> None:
    before = row_counts(rt)
    answer = client.post(
        "/jira/webhook",
        data=json.dumps(event(ticketed, *RESOLVED)),
        headers={"X-Hub-Signature": header.encode().decode("latin-1")},
    )
    assert_refused(answer, before, rt)
    assert answer.status_code == 401


def test_a_long_or_nul_assignee_is_stored_cleaned_and_cut(client, rt, ticketed) -> None:
    change = {"field": "assignee", "fromString": None, "toString": "D\x00" + "x" * 300}
    answer = post_signed(client, event(ticketed, change, status="To Do"))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    [incident] = incidents(rt)
    assert incident.owner is not None and len(incident.owner) == 128
    assert incident.owner.startswith("D\ufffd") and incident.owner.endswith("…")
