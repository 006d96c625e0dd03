"""The write API: incident actions, silences, runbook runs, dead outbox rows, as from Slack."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from opsbot.db import store
from opsbot.db.models import AuditEntry, OutboxRow
from opsbot.db.session import transaction
from opsbot.runbooks import service
from opsbot.web.openapi import AUTHOR_LIMIT, NOTE_LIMIT, OUTBOX_MAX_LIMIT, OWNER_LIMIT
from tests.support.hostile import assert_refused, row_counts
from tests.support.runbooks import CONFIG, NONPROD, PROD, audit_actions, load_run
from tests.support.sns import alarm_message, notify
from tests.support.tokens import bearer, install_tokens

OPS = bearer("ops-ci")


@pytest.fixture
def app(settings, make_app, config_path, monkeypatch):
    install_tokens(monkeypatch, config_path, CONFIG)
    return make_app(settings)


def open_incident(client, signer, clock, name: str = "High-CPU", account: str = PROD) -> int:
    clock.advance(seconds=1)
    reply = notify(client, signer, clock, alarm_message(name=name, account=account))
    assert reply.status_code == 200, reply.get_data(as_text=True)
    return int(reply.json["alerts"][0]["incident_id"])


def post(client, path: str, body: Any = None, headers: dict[str, str] = OPS) -> Any:
    if body is None:
        return client.post(path, headers=headers)
    return client.post(path, json=body, headers=headers)


def audit_of(rt, subject_type: str, subject_id: int) -> list[tuple[str, str, dict]]:
    with rt.sessions() as s:
        rows = s.execute(
            select(AuditEntry)
            .where(AuditEntry.subject_type == subject_type,
                   AuditEntry.subject_id == str(subject_id))
            .order_by(AuditEntry.id)
        ).scalars()  # fmt: skip
        return [(e.actor, e.action, e.detail) for e in rows]


def queued(rt, incident_id: int) -> list[tuple[str, str, str]]:
    with rt.sessions() as s:
        rows = s.execute(
            select(OutboxRow).where(OutboxRow.incident_id == incident_id).order_by(OutboxRow.id)
        ).scalars()
        return [(r.target, r.kind, (r.payload or {}).get("text", "")) for r in rows]


# -- incident actions -------------------------------------------------------------------------


def test_acknowledge_resolve_assign_comment_are_audited_as_the_token(
    client, rt, signer, clock
) -> None:
    incident = open_incident(client, signer, clock)
    base = f"/api/incidents/{incident}"
    ack = post(client, f"{base}/acknowledge")
    assert ack.status_code == 200
    assert ack.json["changed"] is True and ack.json["incident"]["status"] == "acknowledged"
    assert ack.json["incident"]["acknowledged_by"] == "api:ops-ci"
    again = post(client, f"{base}/acknowledge", {})
    assert again.status_code == 200 and again.json["changed"] is False
    assert post(client, f"{base}/assign", {"owner": "ana"}).json["incident"]["owner"] == "ana"
    assert post(client, f"{base}/comment", {"text": "looking at the disk"}).status_code == 200
    done = post(client, f"{base}/resolve", {"note": "disk cleaned"})
    assert done.json["incident"]["status"] == "resolved"
    assert [(a, b) for a, b, _ in audit_of(rt, "incident", incident)][1:] == [
        ("api:ops-ci", "incident.acknowledge"),
        ("api:ops-ci", "incident.assign"),
        ("api:ops-ci", "incident.comment"),
        ("api:ops-ci", "incident.resolve"),
    ]
    threads = [text for target, kind, text in queued(rt, incident) if kind == "thread"]
    assert "Acknowledged by api:ops-ci." in threads
    assert "Assigned to ana by api:ops-ci." in threads
    assert "api:ops-ci: looking at the disk" in threads
    assert "Resolved by api:ops-ci. disk cleaned" in threads
    jira = [(kind, text) for target, kind, text in queued(rt, incident) if target == "jira"]
    assert ("comment", "api:ops-ci: looking at the disk") in jira


BAD_IDS = ["999999", "\uff11", "²", "0", str(2**63), "-1", "1x"]


def test_an_unknown_or_malformed_id_is_404_and_stores_nothing(client, rt) -> None:
    bodies = {"assign": {"owner": "ana"}, "comment": {"text": "x"}}
    paths = [f"/api/incidents/{{}}/{action}" for action in
             ("acknowledge", "resolve", "assign", "comment")]  # fmt: skip
    paths += ["/api/silences/{}/expire", "/api/outbox/{}/retry"]
    before = row_counts(rt)
    for path in paths:
        for raw in BAD_IDS:
            r = post(client, path.format(raw), bodies.get(path.split("/")[-1]))
            assert_refused(r, before, rt)
            assert r.status_code == 404 and r.json["error"] == "not_found", (path, raw)


BAD_BODIES = [
        ("assign", {}, "'owner' is a required property"),
        ("assign", {"owner": "   "}, "owner: must not be blank"),
        ("assign", {"owner": "a" * (OWNER_LIMIT + 1)}, "owner: "),
        ("assign", {"owner": 5}, "owner: 5 is not of type 'string'"),
        ("assign", {"owner": "ana", "why": "x"}, "Additional properties"),
        ("assign", [], "is not of type 'object'"),
        ("comment", {"text": "x" * (NOTE_LIMIT + 1)}, "text: "),
        ("comment", {"text": "a\x00b"}, "NUL or a lone surrogate"),
        ("comment", {"text": "a\ud800b"}, "NUL or a lone surrogate"),
        ("resolve", {"note": "n" * (NOTE_LIMIT + 1)}, "note: "),
        ("acknowledge", {"note": "x"}, "Additional properties"),
]  # fmt: skip


def test_a_bad_body_is_a_precise_400_and_stores_nothing(client, rt, signer, clock) -> None:
    incident = open_incident(client, signer, clock)
    before = row_counts(rt)
    for action, body, detail in BAD_BODIES:
        r = post(client, f"/api/incidents/{incident}/{action}", body)
        assert_refused(r, before, rt)
        assert r.json["error"] == "invalid_body" and detail in r.json["detail"], r.json
    for raw in (b"{", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000, b"null", b""):
        r = client.post(f"/api/incidents/{incident}/comment", data=raw, headers=OPS,
                        content_type="application/json")  # fmt: skip
        assert_refused(r, before, rt)
        assert r.json["error"] == "bad_json", raw[:10]


def test_text_at_its_limits_is_accepted(client, rt, signer, clock) -> None:
    incident = open_incident(client, signer, clock)
    base = f"/api/incidents/{incident}"
    assert post(client, f"{base}/assign", {"owner": "a" * OWNER_LIMIT}).status_code == 200
    assert post(client, f"{base}/comment", {"text": "c" * NOTE_LIMIT}).status_code == 200
    assert post(client, f"{base}/resolve", {"note": "n" * NOTE_LIMIT}).status_code == 200


# -- silences ---------------------------------------------------------------------------------


def test_a_silence_has_an_author_and_a_comment_and_applies_at_once(
    client, rt, signer, clock
) -> None:
    made = post(client, "/api/silences", {
        "matcher": {"alarm_name": "Disk-*", "account": "prod-web"},
        "duration": "2h", "author": "ana", "comment": "disk migration",
    })  # fmt: skip
    assert made.status_code == 201, made.json
    silence = made.json
    assert (silence["created_by"], silence["reason"]) == ("ana", "disk migration")
    assert silence["ends_at"] == (clock.now + timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    [(actor, action, detail)] = audit_of(rt, "silence", silence["id"])
    assert (actor, action, detail["author"]) == ("api:ops-ci", "silence.created", "ana")
    reply = notify(client, signer, clock, alarm_message(name="Disk-Full", account=PROD))
    assert reply.json["alerts"][0]["action"] == "silenced"
    listed = client.get("/api/silences", headers=bearer("reader")).json["silences"]
    assert [s["id"] for s in listed] == [silence["id"]]
    ended = post(client, f"/api/silences/{silence['id']}/expire")
    assert ended.json == {"changed": True, "message": f"Silence {silence['id']} ended."}
    assert post(client, f"/api/silences/{silence['id']}/expire").json["changed"] is False
    assert client.get("/api/silences", headers=OPS).json["silences"] == []
    clock.advance(seconds=1)
    reply = notify(client, signer, clock, alarm_message(name="Disk-Full", account=PROD))
    assert reply.json["alerts"][0]["action"] == "open"
    assert audit_of(rt, "silence", silence["id"])[-1][:2] == ("api:ops-ci", "silence.ended")


def test_a_silence_may_start_later_and_end_at_a_time(client, clock) -> None:
    starts = (clock.now + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    ends = "2030-01-01T01:00:00+01:00"
    made = post(client, "/api/silences", {
        "matcher": {"source": "aws.guardduty", "severity": ["low", "info"]},
        "starts_at": starts, "ends_at": ends, "author": "bo", "comment": "noisy",
    })  # fmt: skip
    assert made.status_code == 201, made.json
    assert (made.json["starts_at"], made.json["ends_at"]) == (starts, "2030-01-01T00:00:00Z")


GOOD = {"matcher": {"alarm_name": "X"}, "duration": "1h", "author": "ana", "comment": "c"}


BAD_SILENCES = [
        ({"matcher": {}}, "matcher: {} should be non-empty"),
        ({"matcher": {"colour": "red"}}, "Additional properties"),
        ({"matcher": {"account": "nosuch"}}, "'nosuch' is not a configured account"),
        ({"matcher": {"severity": "urgent"}}, "matcher.severity"),
        ({"author": ""}, "author: "),
        ({"author": "a" * (AUTHOR_LIMIT + 1)}, "author: "),
        ({"comment": " "}, "comment: must not be blank"),
        ({"ends_at": "2030-01-01T00:00:00Z"}, "exactly one of ends_at or duration"),
        ({"duration": "1d1d"}, "duration: "),
        ({"duration": "0s"}, "must end in the future"),
        ({"duration": "1x"}, "duration: "),
        ({"starts_at": "2030-01-01"}, "starts_at: not an RFC 3339 time"),
        ({"starts_at": "0001-01-01T00:00:00+14:00"}, "starts_at: not an RFC 3339 time"),
        ({"starts_at": "2030-01-01T00:00:00Z", "duration": None, "ends_at": "2029-01-01T00:00:00Z"},
         "ends_at must be later than starts_at"),
]  # fmt: skip


def test_a_bad_silence_is_a_precise_400_and_stores_nothing(client, rt) -> None:
    before = row_counts(rt)
    for change, detail in BAD_SILENCES:
        body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
        r = post(client, "/api/silences", body)
        assert_refused(r, before, rt)
        assert detail in r.json["detail"], (change, r.json)
    assert post(client, "/api/silences", {**GOOD, "author": "a" * AUTHOR_LIMIT}).status_code == 201


# -- runbook runs -----------------------------------------------------------------------------


def test_a_prod_run_waits_for_another_approver_like_from_slack(client, rt, signer, clock) -> None:
    incident = open_incident(client, signer, clock, account=PROD)
    body = {"runbook": "restart-instance", "incident_id": incident,
            "params": {"InstanceId": "i-0123456789abcdef0"}}  # fmt: skip
    r = post(client, "/api/runs", body)
    assert r.status_code == 201, r.json
    run = r.json
    assert (run["state"], run["approval"], run["requester"]) == (
        "awaiting_approval", "other", "api:ops-ci"
    )  # fmt: skip
    assert audit_actions(rt, run["id"])[0] == ("api:ops-ci", "run.requested")
    with pytest.raises(service.RunError), transaction(rt.sessions) as s:  # not by the requester
        service.approve(s, run["id"], approver="api:ops-ci", now=clock.now)
    with transaction(rt.sessions) as s:
        service.approve(s, run["id"], approver="Ana (U0ANA)", now=clock.now)
    assert load_run(rt, run["id"]).state == "approved"
    shown = client.get(f"/api/runs/{run['id']}", headers=bearer("reader"))
    assert shown.status_code == 200 and shown.json["id"] == run["id"]


def test_a_run_needing_no_approval_is_approved_at_once(client, rt, signer, clock) -> None:
    incident = open_incident(client, signer, clock, account=NONPROD)
    body = {"runbook": "collect-diagnostics", "incident_id": incident,
            "params": {"InstanceId": "i-0123456789abcdef0"}}  # fmt: skip
    r = post(client, "/api/runs", body)
    assert r.status_code == 201 and r.json["state"] == "approved", r.json
    assert load_run(rt, r.json["id"]).requester == "api:ops-ci"


def test_a_dry_run_previews_and_stores_nothing(client, rt, signer, clock) -> None:
    incident = open_incident(client, signer, clock, account=PROD)
    before = row_counts(rt)
    body = {"runbook": "restart-instance", "incident_id": incident, "dry_run": True,
            "params": {"InstanceId": "i-0123456789abcdef0"}}  # fmt: skip
    r = post(client, "/api/runs", body)
    assert r.status_code == 200 and r.json["dry_run"] is True
    assert "restart-instance on i-0123456789abcdef0" in r.json["preview"]
    assert row_counts(rt) == before


BAD_RUNS = [
        ({"runbook": "nope"}, "There is no runbook 'nope'"),
        ({"runbook": "restart-instance", "incident_id": 424242}, "There is no incident 424242"),
        ({"runbook": "restart-instance", "params": {"InstanceId": "not-an-instance"}},
         "InstanceId"),
        ({"runbook": "restart-instance", "params": {"InstanceId": 5}}, "is not of type 'string'"),
        ({"runbook": "restart-instance", "incident_id": 2**63}, "incident_id: "),
        ({"runbook": ""}, "runbook: "),
]  # fmt: skip


def test_a_refused_run_is_a_400_and_stores_nothing(client, rt) -> None:
    before = row_counts(rt)
    for body, detail in BAD_RUNS:
        r = post(client, "/api/runs", body)
        assert_refused(r, before, rt)
        assert detail in r.json["detail"], (body, r.json)


# -- dead outbox rows -------------------------------------------------------------------------


def dead_row(rt, clock, incident_id: int, key: str | None = None) -> int:
    row = {
        "target": "jira", "kind": "comment", "incident_id": incident_id,
        "payload": {"text": "x"}, "coalesce_key": key, "state": "dead", "attempts": 150,
        "due_at": clock.now, "locked_until": None, "last_error": "HTTP 500 from Jira",
        "created_at": clock.now, "updated_at": clock.now,
    }  # fmt: skip
    with transaction(rt.sessions) as s:
        store.insert_outbox(s, [row])
        return max(r.id for r in s.execute(select(OutboxRow)).scalars())


def test_dead_rows_are_listed_and_retried_once(client, rt, signer, clock) -> None:
    incident = open_incident(client, signer, clock)
    row_id = dead_row(rt, clock, incident)
    listed = client.get("/api/outbox/dead", headers=bearer("reader")).json["rows"]
    assert [(r["id"], r["state"], r["last_error"]) for r in listed] == [
        (row_id, "dead", "HTTP 500 from Jira")
    ]
    assert "payload" not in listed[0]
    r = post(client, f"/api/outbox/{row_id}/retry")
    assert r.status_code == 200 and r.json == {"replayed": [row_id]}
    with rt.sessions() as s:
        row = s.get(OutboxRow, row_id)
        assert row is not None and (row.state, row.attempts) == ("pending", 0)
    assert audit_of(rt, "outbox", row_id) == [
        ("api:ops-ci", "outbox.retried", {"replayed": [row_id]})
    ]
    again = post(client, f"/api/outbox/{row_id}/retry")
    assert again.status_code == 409 and again.json["error"] == "conflict"
    assert client.get("/api/outbox/dead", headers=OPS).json["rows"] == []


def test_the_dead_list_limit_has_bounds(client) -> None:
    for limit, status in (("0", 400), ("1", 200), (str(OUTBOX_MAX_LIMIT), 200),
                          (str(OUTBOX_MAX_LIMIT + 1), 400), ("\uff11", 400)):  # fmt: skip
        r = client.get(f"/api/outbox/dead?limit={limit}", headers=OPS)
        assert r.status_code == status, limit


def test_the_dead_list_stops_at_its_limit(client, rt, signer, clock) -> None:
    incident = open_incident(client, signer, clock)
    ids = [dead_row(rt, clock, incident) for _ in range(3)]
    rows = client.get("/api/outbox/dead?limit=2", headers=OPS).json["rows"]
    assert [r["id"] for r in rows] == ids[:2]
