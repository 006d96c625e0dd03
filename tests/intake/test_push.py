"""POST /sns end to end: verified SNS deliveries become incidents, bad ones change nothing."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import responses
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from opsbot.db.models import AlertRow, AuditEntry, Delivery, Incident, OutboxRow
from opsbot.db.session import make_engine
from opsbot.runtime import Runtime
from opsbot.sns.sign import LocalSigner
from tests.support.sns import TOPIC, alarm_message, notify, post_sns

RULES = """
accounts:
  "111122223333": {name: prod-cim, environment: prod, team: cim}
  "444455556666": {name: sandbox, environment: sandbox}
rules:
  - match: {alarm_name: "High-*", environment: prod}
    priority: P1
    slack_channel: "#cim-alerts"
reopen_window: 2h
flapping: {changes: 3, window: 30m}
"""


@pytest.fixture(autouse=True)
def _rules(config_path: Path) -> None:
    config_path.write_text(RULES)


def count(rt: Runtime, model: type) -> int:
    with rt.sessions() as s:
        return s.execute(select(func.count()).select_from(model)).scalar_one()


def incidents(rt: Runtime) -> list[Incident]:
    with rt.sessions() as s:
        return list(s.execute(select(Incident).order_by(Incident.id)).scalars())


def test_alarm_opens_one_incident_with_the_rule_priority(client, rt, signer, clock) -> None:
    r = notify(client, signer, clock, alarm_message())
    assert r.status_code == 200, r.json
    assert r.json["status"] == "recorded"
    assert [a["action"] for a in r.json["alerts"]] == ["open"]
    [inc] = incidents(rt)
    assert (inc.status, inc.priority, inc.environment, inc.account_name) == (
        "open",
        "P1",
        "prod",
        "prod-cim",
    )
    assert inc.region == "us-east-1" and inc.count == 1
    assert inc.slack_channel == "#cim-alerts"
    with rt.sessions() as s:
        kinds = sorted(s.execute(select(OutboxRow.target, OutboxRow.kind)).all())
        audit = s.execute(select(AuditEntry.action)).scalars().all()
    assert kinds == [("jira", "create"), ("slack", "post")]
    assert audit == ["incident.opened"]


def test_same_message_id_twice_changes_nothing(client, rt, signer, clock) -> None:
    message_id = str(uuid.uuid4())
    first = notify(client, signer, clock, alarm_message(), message_id=message_id)
    again = notify(client, signer, clock, alarm_message(), message_id=message_id)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json["status"] == "duplicate"
    assert (count(rt, Delivery), count(rt, AlertRow), count(rt, OutboxRow)) == (1, 1, 2)
    assert incidents(rt)[0].count == 1


def test_new_delivery_of_same_alarm_counts_and_coalesces(client, rt, signer, clock) -> None:
    for _ in range(5):
        clock.advance(seconds=1)
        assert notify(client, signer, clock, alarm_message()).status_code == 200
    [inc] = incidents(rt)
    assert inc.count == 5
    with rt.sessions() as s:
        pending_updates = s.execute(
            select(func.count()).where(OutboxRow.kind == "update", OutboxRow.state == "pending")
        ).scalar_one()
        digests = s.execute(select(func.count()).where(OutboxRow.kind == "digest")).scalar_one()
    assert (pending_updates, digests) == (1, 1)


def test_ok_resolves_then_alarm_in_window_reopens_same_incident(client, rt, signer, clock) -> None:
    notify(client, signer, clock, alarm_message(when=clock.now))
    clock.advance(minutes=5)
    r = notify(client, signer, clock, alarm_message(state="OK", old="ALARM", when=clock.now))
    assert r.json["alerts"][0]["action"] == "resolve"
    [inc] = incidents(rt)
    assert inc.status == "resolved" and inc.resolved_at == clock.now
    clock.advance(minutes=60)
    r = notify(client, signer, clock, alarm_message(when=clock.now))
    assert r.json["alerts"][0]["action"] == "reopen"
    [inc] = incidents(rt)
    assert inc.status == "open" and inc.resolved_at is None and inc.count == 2


def test_alarm_after_the_window_opens_a_new_incident(client, rt, signer, clock) -> None:
    notify(client, signer, clock, alarm_message(when=clock.now))
    clock.advance(minutes=1)
    notify(client, signer, clock, alarm_message(state="OK", old="ALARM", when=clock.now))
    clock.advance(hours=3)
    r = notify(client, signer, clock, alarm_message(when=clock.now))
    assert r.json["alerts"][0]["action"] == "open"
    assert [i.status for i in incidents(rt)] == ["resolved", "open"]


def test_flapping_holds_resolves_and_the_job_settles_it(client, rt, signer, clock) -> None:
    from opsbot.incidents.jobs import settle_flapping
    from opsbot.jobs import run_singleton

    notify(client, signer, clock, alarm_message(when=clock.now))
    states = ["OK", "ALARM", "OK", "ALARM", "OK"]
    for state in states:
        clock.advance(minutes=1)
        old = "OK" if state == "ALARM" else "ALARM"
        notify(client, signer, clock, alarm_message(state=state, old=old, when=clock.now))
    [inc] = incidents(rt)
    assert inc.flapping and inc.status == "open" and inc.last_alert_status == "resolved"
    clock.advance(minutes=10)
    assert run_singleton(rt, "settle_flapping", settle_flapping(rt)) == 0
    clock.advance(minutes=30)
    assert run_singleton(rt, "settle_flapping", settle_flapping(rt)) == 1
    [inc] = incidents(rt)
    assert inc.status == "resolved" and not inc.flapping
    with rt.sessions() as s:
        actions = s.execute(select(AuditEntry.action).order_by(AuditEntry.id)).scalars().all()
    assert "incident.flapping" in actions and actions[-1] == "incident.resolved"


def test_same_alarm_name_in_two_accounts_is_two_incidents(client, rt, signer, clock) -> None:
    notify(client, signer, clock, alarm_message(account="111122223333"))
    notify(client, signer, clock, alarm_message(account="444455556666"))
    found = incidents(rt)
    assert len(found) == 2
    assert {i.environment for i in found} == {"prod", "sandbox"}
    sandbox = next(i for i in found if i.environment == "sandbox")
    assert sandbox.priority != "P1"  # the rule is for prod only
    with rt.sessions() as s:
        jira = s.execute(
            select(func.count()).where(
                OutboxRow.incident_id == sandbox.id, OutboxRow.target == "jira"
            )
        ).scalar_one()
    assert jira == 0  # sandbox incidents are not ticketed by default


def test_silence_from_config_stores_the_alert_but_opens_nothing(
    client, rt, signer, clock, config_path, settings, make_app
) -> None:
    config_path.write_text(
        RULES + 'silences:\n  - {match: {alarm_name: "High-*"}, until: "2030-01-01T00:00:00Z", '
        'reason: "lab"}\n'
    )
    app = make_app(settings)
    r = notify(app.test_client(), signer, clock, alarm_message())
    assert r.json["alerts"][0]["action"] == "silenced"
    assert count(rt, Incident) == 0
    with rt.sessions() as s:
        row = s.execute(select(AlertRow)).scalar_one()
    assert row.decision == "silenced" and row.silence_id == "config-0"


def test_eventbridge_and_text_messages_are_never_dropped(client, rt, signer, clock) -> None:
    event = json.loads(
        (Path(__file__).parents[1] / "fixtures" / "events" / _codepipeline()).read_text()
    )
    assert notify(client, signer, clock, json.dumps(event)).status_code == 200
    assert notify(client, signer, clock, "disk full on db-01").status_code == 200
    sources = sorted(i.source for i in incidents(rt))
    assert len(sources) == 2 and "aws.codepipeline" in sources


def _codepipeline() -> str:
    folder = Path(__file__).parents[1] / "fixtures" / "events"
    return next(p.name for p in sorted(folder.glob("*.json")) if "codepipeline" in p.name)


# --- refusals: a precise 4xx, a log line, a metric, and nothing stored ---


def assert_nothing_stored(rt: Runtime) -> None:
    assert (count(rt, Delivery), count(rt, AlertRow), count(rt, Incident)) == (0, 0, 0)


def refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json and response.json["error"] == code
    assert response.json["detail"]


def test_forged_signature_is_refused(client, rt, signer, clock, caplog) -> None:
    forger = LocalSigner(
        key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        cert_pem=signer.cert_pem,
    )
    envelope = forger.notification(alarm_message(), topic_arn=TOPIC, timestamp=clock.now)
    refused(post_sns(client, envelope), 403, "bad_signature")
    assert_nothing_stored(rt)
    assert "bad_signature" in caplog.text
    assert (
        rt.metrics.value(
            "opsbot_deliveries_total", channel="push", outcome="rejected_bad_signature"
        )
        == 1
    )


def test_tampered_message_is_refused(client, rt, signer, clock) -> None:
    envelope = signer.notification(alarm_message(), topic_arn=TOPIC, timestamp=clock.now)
    envelope["Message"] = envelope["Message"].replace("High-CPU", "Low-CPU")
    refused(post_sns(client, envelope), 403, "bad_signature")
    assert_nothing_stored(rt)


@pytest.mark.parametrize(
    ("cert_url", "code"),
    [
        (
            "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-opsbot-local.pem",
            "bad_cert_url",
        ),
        (
            "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-x.pem",
            "bad_cert_url",
        ),
        ("https://evil.example/sns.us-east-1.amazonaws.com/x.pem", "bad_cert_url"),
    ],
)
def test_bad_certificate_urls_are_refused(client, rt, signer, clock, cert_url, code) -> None:
    envelope = signer.notification(alarm_message(), topic_arn=TOPIC, timestamp=clock.now)
    envelope = signer.sign({**envelope, "SigningCertURL": cert_url})
    envelope["SigningCertURL"] = cert_url
    refused(post_sns(client, envelope), 403, code)
    assert_nothing_stored(rt)


def test_stale_notification_is_refused_as_a_replay(client, rt, signer, clock) -> None:
    envelope = signer.notification(alarm_message(), topic_arn=TOPIC, timestamp=clock.now)
    clock.advance(hours=1, seconds=1)
    refused(post_sns(client, envelope), 400, "stale_message")
    assert_nothing_stored(rt)


def test_foreign_topic_is_refused_when_an_allow_list_is_set(
    signer, clock, settings, make_app
) -> None:
    app = make_app(settings.model_copy(update={"sns_topic_arns": [TOPIC]}))
    client = app.test_client()
    other = "arn:aws:sns:us-east-1:999999999999:not-ours"
    refused(notify(client, signer, clock, alarm_message(), topic=other), 403, "topic_not_allowed")
    assert notify(client, signer, clock, alarm_message()).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "malformed_json"),
        (b"[1, 2, 3]", 400, "malformed_json"),
        (b'{"Type": "Notification"}', 400, "missing_field"),
        (b'{"Type": "Gossip"}', 400, "unknown_message_type"),
        (b"\xff\xfe\x00garbage", 400, "malformed_json"),
        (b"x" * (512 * 1024 + 1), 413, "body_too_large"),
        (b"x" * (2 * 1024 * 1024), 413, "body_too_large"),
    ],
)
def test_malformed_and_oversized_bodies_are_refused(client, rt, body, status, code) -> None:
    r = client.post("/sns", data=body, headers={"Content-Type": "text/plain; charset=UTF-8"})
    refused(r, status, code)
    assert_nothing_stored(rt)


def test_database_down_answers_503_so_sns_retries(client, rt, signer, clock) -> None:
    engine = make_engine("postgresql://nobody@127.0.0.1:1/none")
    rt.sessions = sessionmaker(engine)
    r = notify(client, signer, clock, alarm_message())
    engine.dispose()
    assert r.status_code == 503 and r.json["error"] == "database_unavailable"


# --- subscription handshake ---


@responses.activate
def test_subscription_confirmation_is_confirmed_once_and_audited(client, rt, signer, clock) -> None:
    envelope = signer.subscription_confirmation(topic_arn=TOPIC, timestamp=clock.now)
    responses.get(envelope["SubscribeURL"], body="<ConfirmSubscriptionResponse/>", status=200)
    r = post_sns(client, envelope)
    assert r.status_code == 200 and r.json["status"] == "confirmed"
    again = post_sns(client, envelope)
    assert again.json["status"] == "duplicate"
    assert len(responses.calls) == 1
    with rt.sessions() as s:
        delivery = s.execute(select(Delivery)).scalar_one()
        audit = s.execute(select(AuditEntry.action)).scalars().all()
    assert delivery.outcome == "confirmed" and audit == ["sns.subscription_confirmed"]


@responses.activate
def test_failed_confirmation_answers_502_and_is_retried(client, rt, signer, clock) -> None:
    envelope = signer.subscription_confirmation(topic_arn=TOPIC, timestamp=clock.now)
    responses.get(envelope["SubscribeURL"], status=500)
    refused(post_sns(client, envelope), 502, "confirmation_failed")
    responses.replace(responses.GET, envelope["SubscribeURL"], status=200)
    assert post_sns(client, envelope).json["status"] == "confirmed"
    with rt.sessions() as s:
        assert s.execute(select(Delivery.outcome)).scalar_one() == "confirmed"


def test_subscribe_url_on_a_foreign_host_is_not_visited(client, rt, signer, clock) -> None:
    envelope = signer.subscription_confirmation(topic_arn=TOPIC, timestamp=clock.now)
    envelope = signer.sign(
        {**envelope, "SubscribeURL": "https://evil.example/?Action=ConfirmSubscription"}
    )
    refused(post_sns(client, envelope), 403, "bad_subscribe_url")
    assert_nothing_stored(rt)


FOREIGN_TOPIC = "arn:aws:sns:us-east-1:999999999999:not-ours"


@responses.activate
def test_foreign_topic_is_not_confirmed_with_an_empty_allow_list(
    client, rt, signer, clock, caplog
) -> None:
    envelope = signer.subscription_confirmation(topic_arn=FOREIGN_TOPIC, timestamp=clock.now)
    responses.get(envelope["SubscribeURL"], status=200)
    r = post_sns(client, envelope)
    refused(r, 403, "topic_not_allowed")
    assert "999999999999" in r.json["detail"] and "account map" in r.json["detail"]
    assert len(responses.calls) == 0
    assert "SNS subscription not confirmed" in caplog.text and FOREIGN_TOPIC in caplog.text
    metric = rt.metrics.value("opsbot_sns_subscriptions_refused_total", reason="topic_not_allowed")
    assert metric == 1
    assert_nothing_stored(rt)


@responses.activate
def test_topic_of_a_mapped_account_is_confirmed_with_an_empty_allow_list(
    client, rt, signer, clock
) -> None:
    sandbox = "arn:aws:sns:eu-west-1:444455556666:sandbox-alarms"
    envelope = signer.subscription_confirmation(topic_arn=sandbox, timestamp=clock.now)
    responses.get(envelope["SubscribeURL"], status=200)
    assert post_sns(client, envelope).json["status"] == "confirmed"
    assert len(responses.calls) == 1


@responses.activate
def test_account_name_in_the_topic_arn_is_not_an_owner(client, rt, signer, clock) -> None:
    named = "arn:aws:sns:eu-west-1:sandbox:alarms"
    envelope = signer.subscription_confirmation(topic_arn=named, timestamp=clock.now)
    responses.get(envelope["SubscribeURL"], status=200)
    response = post_sns(client, envelope)
    assert response.status_code in (400, 403) and len(responses.calls) == 0


@responses.activate
def test_allow_list_decides_confirmation_even_for_mapped_accounts(
    signer, clock, settings, make_app
) -> None:
    other = "arn:aws:sns:us-east-1:444455556666:sandbox-alarms"
    client = make_app(settings.model_copy(update={"sns_topic_arns": [TOPIC]})).test_client()
    for topic, status in ((other, 403), (TOPIC, 200)):
        envelope = signer.subscription_confirmation(topic_arn=topic, timestamp=clock.now)
        responses.get(envelope["SubscribeURL"], status=200)
        assert post_sns(client, envelope).status_code == status
    assert len(responses.calls) == 1


def test_unsubscribe_confirmation_is_recorded_and_audited(client, rt, signer, clock) -> None:
    envelope = signer.subscription_confirmation(topic_arn=TOPIC, timestamp=clock.now)
    envelope = signer.sign({**envelope, "Type": "UnsubscribeConfirmation"})
    r = post_sns(client, envelope)
    assert r.status_code == 200
    with rt.sessions() as s:
        assert s.execute(select(Delivery.outcome)).scalar_one() == "unsubscribed"
        assert s.execute(select(AuditEntry.action)).scalar_one() == "sns.unsubscribed"


def test_real_aws_signed_notification_is_accepted_at_its_timestamp(
    client, rt, clock, settings
) -> None:
    """One of the five real AWS-signed messages, through the HTTP endpoint."""
    from datetime import datetime

    fixtures = Path(__file__).parents[1] / "fixtures" / "sns-signed"
    settings.effective_cert_dir.mkdir(parents=True, exist_ok=True)
    for pem in fixtures.glob("*.pem"):
        (settings.effective_cert_dir / pem.name).write_bytes(pem.read_bytes())
    envelope = json.loads(next(fixtures.glob("*notification-with-subject.json")).read_text())
    clock.now = datetime.fromisoformat(envelope["Timestamp"].replace("Z", "+00:00"))
    r = post_sns(client, envelope)
    assert r.status_code == 200, r.json
    [inc] = incidents(rt)
    assert inc.title == "My message subject"
