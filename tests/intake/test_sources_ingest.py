"""Per-source handlers through the real intake: identities meet, resolves resolve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from opsbot.db.models import Incident
from opsbot.runtime import Runtime
from opsbot.sns.sign import LocalSigner
from tests.support.clock import Clock
from tests.support.sns import alarm_message, notify

FIXTURES = Path(__file__).parents[1] / "fixtures" / "events"


def load(name: str) -> dict[str, Any]:
    value = json.loads((FIXTURES / name).read_text())
    assert isinstance(value, dict)
    return value


def incidents(rt: Runtime) -> list[Incident]:
    with rt.sessions() as s:
        return list(s.scalars(select(Incident).order_by(Incident.id)))


def push(client: FlaskClient, signer: LocalSigner, clock: Clock, message: object) -> Any:
    clock.advance(seconds=30)
    text = message if isinstance(message, str) else json.dumps(message)
    response = notify(client, signer, clock, text)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json


def test_one_alarm_through_sns_and_eventbridge_is_one_incident(
    client: FlaskClient, rt: Runtime, signer: LocalSigner, clock: Clock
) -> None:
    push(client, signer, clock, alarm_message("ServerCpuTooHigh", account="123456789012"))
    answer = push(
        client,
        signer,
        clock,
        load("eventbridge-cloudwatch-alarm-state-change-single-metric-awsdocs.json"),
    )

    assert answer["alerts"][0]["action"] == "repeat"
    assert len(incidents(rt)) == 1


def test_a_guardduty_finding_updated_three_times_is_one_incident_at_the_latest_severity(
    client: FlaskClient, rt: Runtime, signer: LocalSigner, clock: Clock
) -> None:
    finding = load("eventbridge-guardduty-finding-constructed.json")
    for severity, count in ((5.0, 1), (8.0, 2), (2.0, 3)):
        finding["detail"]["severity"] = severity
        finding["detail"]["service"]["count"] = count
        push(client, signer, clock, finding)

    (incident,) = incidents(rt)
    assert (incident.count, incident.severity) == (3, "low")


def test_a_config_rule_going_compliant_resolves_its_incident(
    client: FlaskClient, rt: Runtime, signer: LocalSigner, clock: Clock
) -> None:
    push(
        client,
        signer,
        clock,
        load("eventbridge-config-rules-compliance-change-noncompliant-constructed.json"),
    )
    assert [i.status for i in incidents(rt)] == ["open"]
    push(
        client,
        signer,
        clock,
        load("eventbridge-config-rules-compliance-change-compliant-constructed.json"),
    )

    assert [i.status for i in incidents(rt)] == ["resolved"]


def test_a_codepipeline_success_resolves_the_failure(
    client: FlaskClient, rt: Runtime, signer: LocalSigner, clock: Clock
) -> None:
    push(
        client,
        signer,
        clock,
        load("eventbridge-codepipeline-pipeline-execution-state-change-failed-awsdocs.json"),
    )
    push(
        client,
        signer,
        clock,
        load("eventbridge-codepipeline-pipeline-execution-state-change-succeeded-constructed.json"),
    )

    assert [i.status for i in incidents(rt)] == ["resolved"]


def test_events_needing_no_incident_are_recorded_without_one(
    client: FlaskClient, rt: Runtime, signer: LocalSigner, clock: Clock
) -> None:
    answer = push(
        client, signer, clock, load("eventbridge-ec2-instance-state-change-pending-awsdocs.json")
    )

    assert answer["alerts"][0]["action"] == "ignore"
    assert incidents(rt) == []


def test_the_cloudtrail_watch_list_comes_from_the_yaml(
    settings: Any, make_app: Any, config_path: Path, signer: LocalSigner, clock: Clock
) -> None:
    config_path.write_text(
        "cloudtrail:\n  defaults: false\n  watch:\n    - {event: RunInstances, severity: low}\n"
    )
    app = make_app(settings)
    event = load("eventbridge-cloudtrail-authorize-ingress-world-constructed.json")
    ingress = push(app.test_client(), signer, clock, event)
    event["detail"]["eventName"] = "RunInstances"
    run = push(app.test_client(), signer, clock, event)

    assert ingress["alerts"][0]["action"] == "ignore"
    assert run["alerts"][0]["action"] == "open"


def test_opsbot_check_names_a_bad_watch_list_field(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from opsbot.cli import main

    config = tmp_path / "opsbot.yaml"
    config.write_text("cloudtrail:\n  watch:\n    - {event: DeleteTrail, when: sometimes}\n")
    result = CliRunner().invoke(main, ["check"], env={"OPSBOT_CONFIG": str(config)})

    assert result.exit_code != 0
    assert "cloudtrail.watch[0].when: 'sometimes' is not one of" in result.output
