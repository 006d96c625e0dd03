"""Seed data for the dashboard tests, made the way opsbot makes it.

Incidents come in as signed SNS notifications through the app (CloudWatch
alarms in three accounts, a GuardDuty finding over EventBridge, one alarm
that resolves); an operator acknowledges one and silences an instance; a
runbook run is requested; a patch window is configured; one Jira call is
dead-lettered (its outbox row marked as the outbox marks a row it gives up on).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from opsbot.db.models import Incident, OutboxRow
from opsbot.db.session import transaction
from opsbot.incidents import actions
from opsbot.runbooks import service
from opsbot.runbooks.catalogue import catalogue_of
from tests.support.sns import alarm_message, notify

PROD = "111122223333"
NONPROD = "222233334444"
SANDBOX = "444455556666"
TOKEN = "ui-test-token-0123456789abcdef"
READER_TOKEN = "ui-reader-token-0123456789abcdef"
EVENTS_ONLY_TOKEN = "ui-events-token-0123456789abcdef"
READER_SHA = hashlib.sha256(READER_TOKEN.encode()).hexdigest()
EVENTS_SHA = hashlib.sha256(EVENTS_ONLY_TOKEN.encode()).hexdigest()
HOSTILE = '<script>alert("x")</script>'
FIXTURES = Path(__file__).parents[1] / "fixtures" / "events"

CONFIG = f"""
accounts:
  "{PROD}": {{name: prod-web, environment: prod, role_arn: "arn:aws:iam::{PROD}:role/opsbot"}}
  "{NONPROD}": {{name: stage-web, environment: nonprod,
                 role_arn: "arn:aws:iam::{NONPROD}:role/opsbot"}}
  "{SANDBOX}": {{name: lab, environment: sandbox}}
silences:
  - {{match: {{alarm_name: "Test-*"}}, until: "2030-01-01T00:00:00Z", reason: "lab alarms"}}
patch_windows:
  - name: web-monthly
    cron: "0 2 * * 0"
    timezone: Europe/Paris
    duration: 3h
    notice: 1h
    account: "{NONPROD}"
    region: us-east-1
    targets: {{PatchGroup: web}}
    operation: Install
api_tokens:
  dashboard:
    scopes: [read]
    sha256: "{READER_SHA}"
  intake:
    scopes: [events]
    sha256: "{EVENTS_SHA}"
"""


@dataclass
class Seeded:
    """What the seed made: incident ids by name, and the rest."""

    incidents: dict[str, int] = field(default_factory=dict)
    run_id: int = 0
    silence_id: int = 0
    dead_id: int = 0


def alarm(client: Any, signer: Any, clock: Any, name: str, account: str, **kw: Any) -> int:
    clock.advance(seconds=30)
    reply = notify(client, signer, clock, alarm_message(name=name, account=account, **kw))
    assert reply.status_code == 200, reply.data
    return int(reply.json["alerts"][0]["incident_id"])


def guardduty(client: Any, signer: Any, clock: Any) -> int:
    clock.advance(seconds=30)
    event = json.loads((FIXTURES / "eventbridge-guardduty-finding-constructed.json").read_text())
    event["account"] = event["detail"]["accountId"] = PROD
    reply = notify(client, signer, clock, json.dumps(event))
    assert reply.status_code == 200, reply.data
    return int(reply.json["alerts"][0]["incident_id"])


def seed(rt: Any, client: Any, signer: Any, clock: Any, extra_alarms: int = 0) -> Seeded:
    """Fill the database the way opsbot would (see the module docstring)."""
    out = Seeded()
    out.incidents["cpu"] = alarm(client, signer, clock, "High-CPU", PROD)
    out.incidents["disk"] = alarm(client, signer, clock, "Disk-Full", NONPROD)
    out.incidents["lab"] = alarm(client, signer, clock, "Lab-Latency", SANDBOX)
    out.incidents["hostile"] = alarm(client, signer, clock, HOSTILE, NONPROD)
    out.incidents["guardduty"] = guardduty(client, signer, clock)
    out.incidents["flap"] = alarm(client, signer, clock, "Queue-Depth", PROD)
    for i in range(extra_alarms):
        out.incidents[f"extra{i}"] = alarm(client, signer, clock, f"Extra-{i:02d}", NONPROD)
    clock.advance(seconds=30)
    notify(
        client,
        signer,
        clock,
        alarm_message(name="Queue-Depth", account=PROD, state="OK", old="ALARM", when=clock.now),
    )
    with transaction(rt.sessions) as session:
        actions.acknowledge(session, out.incidents["cpu"], actor="U0ANA", now=clock.now)
        out.silence_id = actions.create_silence(
            session,
            {"resource": "i-0123456789abcdef0", "account": NONPROD},
            ends_at=clock.now + timedelta(hours=2),
            reason="maintenance",
            actor="U0ANA",
            now=clock.now,
        )
        req = service.RunRequest(
            runbook="restart-instance", requester="U0ANA", incident_id=out.incidents["disk"]
        )
        run = service.request_run(session, catalogue_of(rt), rt.policy, req, now=clock.now)
        out.run_id = run.id
    out.dead_id = dead_letter(rt, out.incidents["disk"], clock.now)
    return out


def dead_letter(rt: Any, incident_id: int, now: Any) -> int:
    """Give up on one call to Jira for the incident, as the outbox does after its last attempt."""
    with transaction(rt.sessions) as session:
        row = OutboxRow(
            target="jira",
            kind="create",
            incident_id=incident_id,
            payload={},
            state="dead",
            attempts=150,
            due_at=now,
            last_error="Jira answered 400: Field 'components' is required.",
            created_at=now - timedelta(hours=24),
            updated_at=now,
        )
        session.add(row)
        session.flush()
        return row.id


def incident_titles(rt: Any) -> dict[int, str]:
    with rt.sessions() as session:
        return dict(session.execute(select(Incident.id, Incident.title)).all())
