"""Handlers: every sample payload, identity, region, status and severity rules, bad input."""

from __future__ import annotations

import ast
import importlib
import json
import logging
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore
import pytest

import handlers
from handlers import (
    Inbound,
    acm,
    cloudtrail,
    cloudwatch,
    cloudwatch_events,
    codepipeline,
    config_rules,
    ec2,
    ecs,
    eventbridge,
    generic,
    guardduty,
    health,
    inspector,
    parse,
    rds,
    securityhub,
    ssm,
)
from handlers.regions import REGION_NAMES, alarm_console_url
from opsbot.core.alert import Alert, AlertStatus, Severity, make_fingerprint

FIXTURES = Path(__file__).parents[1] / "fixtures" / "events"
FIXTURE_NAMES = sorted(p.name for p in FIXTURES.glob("*.json"))
HANDLERS_DIR = Path(handlers.__file__).parent
TOPIC = "arn:aws:sns:ap-southeast-2:999988887777:ops-alerts"
FINGERPRINT_RE = re.compile(r"^[0-9a-f]{32}$")
RECEIVED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HANDLER_MODULES = (
    cloudwatch,
    eventbridge,
    generic,
    guardduty,
    securityhub,
    inspector,
    health,
    config_rules,
    cloudtrail,
    ecs,
    codepipeline,
    ec2,
    rds,
    acm,
    ssm,
    cloudwatch_events,
)


def load(name: str) -> dict[str, Any]:
    value = json.loads((FIXTURES / name).read_text())
    assert isinstance(value, dict)
    return value


def alarm(**fields: Any) -> dict[str, Any]:
    """Return a small metric-alarm notification; keyword arguments replace or add fields."""
    message: dict[str, Any] = {
        "AlarmName": "Disk-Full",
        "AlarmDescription": "Root volume almost full",
        "AWSAccountId": "111122223333",
        "NewStateValue": "ALARM",
        "OldStateValue": "OK",
        "NewStateReason": "Threshold Crossed: 1 datapoint (97.0) was greater than 90.0.",
        "StateChangeTime": "2021-08-16T19:28:08.011+0000",
        "Region": "EU (Ireland)",
        "AlarmArn": "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:Disk-Full",
        "Trigger": {
            "MetricName": "disk_used_percent",
            "Namespace": "CWAgent",
            "Dimensions": [{"value": "i-0abc", "name": "InstanceId"}],
        },
    }
    message.update(fields)
    return {key: value for key, value in message.items() if value is not None}


def event(**fields: Any) -> dict[str, Any]:
    """Return a small EventBridge event; keyword arguments replace fields ("detail_type")."""
    message: dict[str, Any] = {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": fields.pop("detail_type", "Widget Broke"),
        "source": "com.example.widgets",
        "account": "111122223333",
        "time": "2024-05-01T08:30:00Z",
        "region": "eu-west-1",
        "resources": ["arn:aws:widgets:eu-west-1:111122223333:widget/w-1"],
        "detail": {"state": "BROKEN"},
    }
    message.update(fields)
    return message


def parse_one(message: object, **envelope: Any) -> Alert:
    text = message if isinstance(message, str) else json.dumps(message)
    alerts = parse(Inbound(text=text, **envelope))
    assert len(alerts) == 1
    return alerts[0]


def assert_valid(alert: Alert) -> None:
    assert FINGERPRINT_RE.match(alert.fingerprint)
    assert isinstance(alert.status, AlertStatus)
    assert isinstance(alert.severity, Severity)
    assert alert.title.strip()
    for text in (alert.title, alert.summary, alert.resource, *alert.labels.values()):
        text.encode("utf-8")  # raises on lone surrogates


# --- every sample payload -------------------------------------------------------------


def expected_source(name: str) -> str:
    if name.startswith("cloudwatch-"):
        return "aws.cloudwatch"
    if name.startswith("eventbridge-"):
        return str(load(name)["source"])
    if name.startswith("costanomaly-"):
        return "aws.ce"
    assert name.startswith("generic-"), f"{name}: unknown fixture prefix"
    return "sns"


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_fixture_parses_with_its_handler(name: str) -> None:
    alerts = parse(Inbound(text=(FIXTURES / name).read_text(), topic_arn=TOPIC))

    assert len(alerts) >= 1
    for alert in alerts:
        assert_valid(alert)
        assert alert.source == expected_source(name)
        assert bool(alert.alarm_name) == ("cloudwatch-" in name)
        assert bool(alert.detail_type) == name.startswith("eventbridge-")


def test_fixtures_and_sources_table_list_the_same_files() -> None:
    table = (FIXTURES / "SOURCES.md").read_text()
    listed = sorted(set(re.findall(r"^\| ([\w.-]+\.json) \|", table, re.MULTILINE)))

    assert len(FIXTURE_NAMES) >= 15
    assert listed == FIXTURE_NAMES


@pytest.mark.parametrize(
    ("name", "alarm_type", "resource"),
    [
        ("cloudwatch-sns-metric-alarm-rheoceros.json", "metric", "routing_table.receive.hook"),
        ("cloudwatch-sns-metric-math-awslambdago.json", "metric_math", "TestInstance"),
        ("cloudwatch-sns-anomaly-detection-constructed.json", "anomaly_detection", "web-asg"),
        (
            "cloudwatch-sns-composite-alarm-rheoceros.json",
            "composite",
            "if-sim-app_427809481713_us-east-1-test_node_monitor",
        ),
    ],
)
def test_alarm_type_and_resource_follow_the_alarm_kind(
    name: str, alarm_type: str, resource: str
) -> None:
    alert = parse_one(load(name))

    assert alert.labels["alarm_type"] == alarm_type
    assert alert.resource == resource


def test_metric_alarm_alert_carries_the_alarm_facts() -> None:
    alert = parse_one(load("cloudwatch-sns-metric-alarm-firing-constructed.json"))

    assert alert.fingerprint == make_fingerprint(
        "aws.cloudwatch", "111122223333", "eu-west-1", "High-CPU"
    )
    assert (alert.account_id, alert.region, alert.alarm_name) == (
        "111122223333",
        "eu-west-1",
        "High-CPU",
    )
    assert alert.resource == "i-0abc1234def567890"
    assert alert.title == "ALARM: High-CPU on i-0abc1234def567890 (account 111122223333, eu-west-1)"
    assert alert.summary.startswith("Threshold Crossed: 2 out of the last 2 datapoints")
    assert alert.occurred_at == datetime(2021, 8, 16, 19, 28, 8, 11000, tzinfo=UTC)
    assert alert.console_url == (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home"
        "?region=eu-west-1#alarmsV2:alarm/High-CPU"
    )
    assert dict(alert.labels) == {
        "alarm_name": "High-CPU",
        "alarm_type": "metric",
        "namespace": "AWS/EC2",
        "metric_name": "CPUUtilization",
        "state": "ALARM",
        "old_state": "OK",
        "dim.InstanceId": "i-0abc1234def567890",
    }
    assert alert.raw["AlarmArn"] == "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:High-CPU"


def test_composite_alarm_labels_name_its_rule_and_triggering_children() -> None:
    alert = parse_one(load("cloudwatch-sns-composite-alarm-rheoceros.json"))

    assert alert.labels["alarm_rule"].startswith("ALARM(arn:aws:cloudwatch:us-east-1:")
    assert alert.labels["triggering_alarms"] == (
        "if-sim-app_427809481713_us-east-1-metric_emitting_node_failure"
    )
    assert "namespace" not in alert.labels


@pytest.mark.parametrize(
    "dimensions",
    [
        [{"name": "InstanceId", "value": "i-0abc"}, {"name": "Path", "value": "/"}],
        [{"value": "i-0abc", "name": "InstanceId"}, {"value": "/", "name": "Path"}],
        [{"Name": "InstanceId", "Value": "i-0abc"}, {"Name": "Path", "Value": "/"}],
        {"InstanceId": "i-0abc", "Path": "/"},
    ],
)
def test_dimensions_are_read_in_every_shape(dimensions: object) -> None:
    trigger = {"MetricName": "disk_used_percent", "Namespace": "CWAgent", "Dimensions": dimensions}
    alert = parse_one(alarm(Trigger=trigger))

    assert alert.resource == "i-0abc"
    assert alert.labels["dim.InstanceId"] == "i-0abc"
    assert alert.labels["dim.Path"] == "/"


def test_resource_is_the_alarm_name_without_dimensions() -> None:
    alert = parse_one(alarm(Trigger={"MetricName": "Errors", "Namespace": "App", "Dimensions": []}))

    assert alert.resource == "Disk-Full"
    assert alert.title == "ALARM: Disk-Full (account 111122223333, eu-west-1)"


def test_title_stays_short_for_long_names() -> None:
    trigger = {
        "MetricName": "m",
        "Namespace": "n",
        "Dimensions": [{"name": "d", "value": "v" * 900}],
    }
    alert = parse_one(alarm(AlarmName="A" * 255, Trigger=trigger))

    assert len(alert.title) <= 200
    assert alert.title.startswith("ALARM: AAAA")


# --- region ------------------------------------------------------------------------------


def test_region_comes_from_the_alarm_arn_first() -> None:
    arn = "arn:aws:cloudwatch:us-west-2:111122223333:alarm:Disk-Full"
    alert = parse_one(alarm(AlarmArn=arn, Region="EU (Ireland)"), topic_arn=TOPIC)

    assert alert.region == "us-west-2"


@pytest.mark.parametrize(
    ("display_name", "code"),
    [
        ("US East (N. Virginia)", "us-east-1"),
        ("EU (Ireland)", "eu-west-1"),
        ("Europe (Ireland)", "eu-west-1"),
        ("EU (Frankfurt)", "eu-central-1"),
        ("Europe (Spain)", "eu-south-2"),
        ("  europe   (stockholm) ", "eu-north-1"),
        ("Asia Pacific (Tokyo)", "ap-northeast-1"),
        ("South America (São Paulo)", "sa-east-1"),
        ("AWS GovCloud (US-West)", "us-gov-west-1"),
        ("AWS GovCloud (US-East)", "us-gov-east-1"),
        ("China (Beijing)", "cn-north-1"),
        ("China (Ningxia)", "cn-northwest-1"),
        ("US - N. Virginia", "us-east-1"),
        ("EU - Ireland", "eu-west-1"),
        ("ca-central-1", "ca-central-1"),
    ],
)
def test_region_comes_from_the_display_name_without_an_arn(display_name: str, code: str) -> None:
    alert = parse_one(alarm(AlarmArn=None, Region=display_name), topic_arn=TOPIC)

    assert alert.region == code


def test_region_comes_from_the_topic_when_the_name_is_unknown() -> None:
    alert = parse_one(alarm(AlarmArn=None, Region="Atlantis (Central)"), topic_arn=TOPIC)

    assert alert.region == "ap-southeast-2"


def test_placeholder_arn_and_region_leave_the_region_empty_without_a_topic() -> None:
    alert = parse_one(load("cloudwatch-sns-metric-alarm-awslambdago.json"))

    assert alert.region == ""
    assert alert.console_url == ""
    assert alert.account_id == "123456789012"


def test_account_falls_back_to_the_alarm_arn_when_not_an_account_id() -> None:
    arn = "arn:aws:cloudwatch:eu-west-1:444455556666:alarm:Disk-Full"
    alert = parse_one(alarm(AWSAccountId="EXAMPLE", AlarmArn=arn))

    assert alert.account_id == "444455556666"


def botocore_regions() -> dict[str, str]:
    endpoints = Path(botocore.__file__).parent / "data" / "endpoints.json"
    partitions = json.loads(endpoints.read_text())["partitions"]
    wanted = {"aws", "aws-cn", "aws-us-gov"}
    return {
        code: region["description"]
        for partition in partitions
        if partition["partition"] in wanted
        for code, region in partition["regions"].items()
    }


def test_region_names_cover_every_commercial_govcloud_and_china_region() -> None:
    regions = botocore_regions()

    assert len(regions) >= 38
    for code, description in regions.items():
        assert REGION_NAMES.get(description) == code, f"{code} ({description}) missing"


def test_every_europe_name_also_has_its_eu_spelling() -> None:
    europe = {name: code for name, code in REGION_NAMES.items() if name.startswith("Europe (")}

    assert len(europe) >= 8
    for name, code in europe.items():
        assert REGION_NAMES[name.replace("Europe (", "EU (", 1)] == code


@pytest.mark.parametrize(
    ("region", "url"),
    [
        (
            "eu-west-1",
            "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
            "#alarmsV2:alarm/Disk%20%2F%2090%25%20full",
        ),
        (
            "cn-north-1",
            "https://console.amazonaws.cn/cloudwatch/home?region=cn-north-1"
            "#alarmsV2:alarm/Disk%20%2F%2090%25%20full",
        ),
        (
            "us-gov-west-1",
            "https://console.amazonaws-us-gov.com/cloudwatch/home?region=us-gov-west-1"
            "#alarmsV2:alarm/Disk%20%2F%2090%25%20full",
        ),
    ],
)
def test_console_url_quotes_the_name_in_the_regions_partition(region: str, url: str) -> None:
    assert alarm_console_url(region, "Disk / 90% full") == url


# --- identity and status ------------------------------------------------------------------


def test_same_alarm_name_in_two_accounts_is_two_identities() -> None:
    first = parse_one(alarm(AWSAccountId="111122223333"))
    second = parse_one(
        alarm(
            AWSAccountId="444455556666",
            AlarmArn="arn:aws:cloudwatch:eu-west-1:444455556666:alarm:Disk-Full",
        )
    )

    assert first.fingerprint != second.fingerprint


def test_same_alarm_name_in_two_regions_is_two_identities() -> None:
    first = parse_one(alarm(AlarmArn=None, Region="EU (Ireland)"))
    second = parse_one(alarm(AlarmArn=None, Region="EU (London)"))

    assert (first.region, second.region) == ("eu-west-1", "eu-west-2")
    assert first.fingerprint != second.fingerprint


def test_identity_is_exactly_source_account_region_and_alarm_name() -> None:
    alert = parse_one(alarm(AlarmDescription="changed", NewStateReason="other"))

    assert alert.fingerprint == make_fingerprint(
        "aws.cloudwatch", "111122223333", "eu-west-1", "Disk-Full"
    )


def test_alarm_and_ok_of_one_alarm_share_the_identity() -> None:
    firing = parse_one(load("cloudwatch-sns-metric-alarm-firing-constructed.json"))
    resolved = parse_one(load("cloudwatch-sns-metric-alarm-ok-constructed.json"))

    assert firing.fingerprint == resolved.fingerprint
    assert (firing.status, resolved.status) == (AlertStatus.FIRING, AlertStatus.RESOLVED)


def test_insufficient_data_after_alarm_keeps_firing_at_the_same_severity() -> None:
    before = parse_one(alarm(AlarmDescription="[critical] disk"))
    after = parse_one(
        alarm(
            AlarmDescription="[critical] disk",
            NewStateValue="INSUFFICIENT_DATA",
            OldStateValue="ALARM",
        )
    )

    assert (after.status, after.severity) == (AlertStatus.FIRING, Severity.CRITICAL)
    assert after.fingerprint == before.fingerprint


@pytest.mark.parametrize("old_state", ["OK", "INSUFFICIENT_DATA", None])
def test_insufficient_data_otherwise_fires_low_for_the_missing_metric(
    old_state: str | None,
) -> None:
    alert = parse_one(
        alarm(
            AlarmDescription="[critical] disk",
            NewStateValue="INSUFFICIENT_DATA",
            OldStateValue=old_state,
        )
    )

    assert (alert.status, alert.severity) == (AlertStatus.FIRING, Severity.LOW)


def test_occurred_at_falls_back_to_the_sns_timestamp() -> None:
    alert = parse_one(alarm(StateChangeTime="yesterday"), received_at=RECEIVED)

    assert alert.occurred_at == RECEIVED


# --- severity tokens ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "description", "severity"),
    [
        ("[critical] Disk-Full", "", Severity.CRITICAL),
        ("Disk-Full", "[critical] root volume", Severity.CRITICAL),
        ("Disk-Full sev:high", "", Severity.HIGH),
        ("Disk-Full", "severity=medium", Severity.MEDIUM),
        ("Disk-Full", "Severity: Low", Severity.LOW),
        ("Disk-Full [info]", "", Severity.INFO),
        ("P1-Disk-Full", "", Severity.CRITICAL),
        ("Disk-Full-P2", "", Severity.HIGH),
        ("Disk-Full", "page as P3", Severity.MEDIUM),
        ("Disk-Full", "P4.", Severity.LOW),
        ("SEV1 Disk-Full", "", Severity.CRITICAL),
        ("[low] Disk-Full", "[critical] the name wins", Severity.LOW),
        ("Disk-Full", "", Severity.HIGH),
        ("Disk-Full", "CPU too high, memory low", Severity.HIGH),
        ("gpu-p3.2xlarge-util", "", Severity.HIGH),
        ("api-P99-latency", "", Severity.HIGH),
        ("P5-Disk-Full", "", Severity.HIGH),
    ],
)
def test_severity_comes_from_an_explicit_token(
    name: str, description: str, severity: Severity
) -> None:
    alert = parse_one(alarm(AlarmName=name, AlarmDescription=description))

    assert alert.severity == severity


def test_resolved_alert_keeps_the_token_severity() -> None:
    alert = parse_one(alarm(AlarmName="P2-Disk-Full", NewStateValue="OK", OldStateValue="ALARM"))

    assert (alert.status, alert.severity) == (AlertStatus.RESOLVED, Severity.HIGH)


# --- EventBridge --------------------------------------------------------------------------


def test_eventbridge_alert_for_an_unknown_detail_type() -> None:
    message = load("eventbridge-ecs-deployment-state-change-failed-awsdocs.json")
    message["detail-type"] = "ECS Service Action"
    alert = parse_one(message)
    service = "arn:aws:ecs:us-west-2:111122223333:service/default/servicetest"

    assert alert.fingerprint == make_fingerprint(
        "aws.ecs", "111122223333", "us-west-2", "ECS Service Action", service
    )
    assert (alert.status, alert.severity) == (AlertStatus.FIRING, Severity.LOW)
    assert alert.title == "ECS Service Action (aws.ecs): service/default/servicetest"
    assert alert.summary.startswith("eventType=ERROR, eventName=SERVICE_DEPLOYMENT_FAILED, ")
    assert (alert.resource, alert.detail_type) == (service, "ECS Service Action")
    assert dict(alert.labels) == {"source": "aws.ecs", "detail_type": "ECS Service Action"}
    assert alert.occurred_at == datetime(2020, 5, 23, 12, 31, 14, tzinfo=UTC)
    assert alert.raw["id"] == "ddca6449-b258-46c0-8653-e0e3aEXAMPLE"


def test_eventbridge_identity_ignores_resource_order() -> None:
    resources = ["arn:aws:widgets:eu-west-1:1:widget/b", "arn:aws:widgets:eu-west-1:1:widget/a"]
    forward = parse_one(event(resources=resources))
    backward = parse_one(event(resources=list(reversed(resources))))
    other = parse_one(event(resources=resources[:1]))

    assert forward.fingerprint == backward.fingerprint
    assert forward.fingerprint != other.fingerprint


def test_eventbridge_identity_without_resources_is_the_detail_type() -> None:
    alert = parse_one(event(resources=[], detail={"orderId": "o-1"}))
    again = parse_one(event(resources=[], detail={"orderId": "o-2"}, id="another"))

    assert alert.fingerprint == make_fingerprint(
        "com.example.widgets", "111122223333", "eu-west-1", "Widget Broke"
    )
    assert again.fingerprint == alert.fingerprint
    assert alert.title == "Widget Broke (com.example.widgets)"
    assert alert.resource == ""


def test_huge_detail_yields_a_bounded_one_line_summary() -> None:
    detail: dict[str, Any] = {f"key{i}": "x" * 1000 for i in range(5000)}
    detail["nested"] = {"deep": [list(range(1000))] * 50}
    alert = parse_one(event(detail=detail))

    assert len(alert.summary) <= 500
    assert alert.summary.startswith("key0=xxx")
    assert "\n" not in alert.summary


def test_huge_non_object_detail_yields_a_bounded_summary() -> None:
    alert = parse_one(event(detail=["line\n" * 100_000]))

    assert len(alert.summary) <= 500
    assert "\n" not in alert.summary


def test_source_handlers_registry_takes_its_source(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def widgets(message: dict[str, Any], inbound: Inbound) -> list[Alert]:
        seen.append(message["id"])
        return [generic.parse(inbound)[0]]

    monkeypatch.setitem(eventbridge.SOURCE_HANDLERS, "com.example.widgets", widgets)
    alert = parse_one(event(), topic_arn=TOPIC)

    assert seen == ["7bf73129-1428-4cd3-a780-95db273d1602"]
    assert alert.source == "sns"


# --- recognition and fallbacks ------------------------------------------------------------


def test_double_encoded_json_is_decoded_once() -> None:
    message = load("cloudwatch-sns-metric-alarm-firing-constructed.json")
    plain = parse_one(json.dumps(message))
    double = parse_one(json.dumps(json.dumps(message)))
    triple = parse_one(json.dumps(json.dumps(json.dumps(message))), topic_arn=TOPIC)

    assert double.fingerprint == plain.fingerprint
    assert double.source == "aws.cloudwatch"
    assert triple.source == "sns"
    assert triple.summary.startswith('"{')


def test_double_encoded_eventbridge_event_is_recognised() -> None:
    alert = parse_one(json.dumps(json.dumps(event())))

    assert alert.detail_type == "Widget Broke"


@pytest.mark.parametrize(
    "message",
    [
        alarm(NewStateValue="BROKEN"),
        alarm(AlarmName=""),
        alarm(AlarmName=["not", "text"]),
        event(detail_type=""),
        event(source={"not": "text"}),
    ],
)
def test_recognised_shape_that_fails_becomes_generic_with_a_warning(
    message: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="handlers")
    alert = parse_one(message, topic_arn=TOPIC, message_id="m-1")

    assert_valid(alert)
    assert alert.source == "sns"
    assert alert.raw == message
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "'m-1'" in warnings[0].getMessage()


def test_failing_source_handler_falls_back_to_generic(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(message: dict[str, Any], inbound: Inbound) -> list[Alert]:
        raise KeyError("detail.findings")

    monkeypatch.setitem(eventbridge.SOURCE_HANDLERS, "com.example.widgets", broken)
    caplog.set_level(logging.WARNING, logger="handlers")
    alert = parse_one(event(), topic_arn=TOPIC)

    assert alert.source == "sns"
    assert "KeyError" in caplog.text


def test_handler_returning_nothing_still_yields_the_generic_alert(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(eventbridge.SOURCE_HANDLERS, "com.example.widgets", lambda m, i: [])

    assert parse_one(event(), topic_arn=TOPIC).source == "sns"


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        "null",
        "[1,2]",
        "42",
        "1e999999",
        "9" * 10_000,
        '"unterminated',
        "{",
        '{"AlarmName": "x"',
        DEEP,
        "x" * 1_000_000,
        ("line of text\n" * 80_000),
        "\udcff\udc80 invalid bytes kept by surrogateescape",
        "\ud800",
        '"\\ud800 lone surrogate escape"',
        '{"title": "\\udc00 lone low surrogate"}',
    ],
    ids=lambda text: repr(text[:24]),
)
def test_garbage_never_raises_and_yields_one_generic_alert(text: str) -> None:
    alerts = parse(Inbound(text=text, topic_arn=TOPIC))

    assert len(alerts) == 1
    alert = alerts[0]
    assert_valid(alert)
    assert alert.source == "sns"
    assert len(alert.title) <= 200
    assert len(alert.summary) <= 4000
    assert alert.severity == Severity.MEDIUM


def test_garbage_envelope_fields_never_raise() -> None:
    inbound = Inbound(
        text=b"\xff\xfe not utf-8",  # type: ignore[arg-type]
        subject="\udcff subject",
        topic_arn="\ud800",
        message_id=None,  # type: ignore[arg-type]
    )
    alerts = parse(inbound)

    assert len(alerts) == 1
    assert_valid(alerts[0])
    assert alerts[0].title == "\ufffd subject"


def test_lone_surrogate_escape_in_an_alarm_is_replaced() -> None:
    alert = parse_one('{"AlarmName": "Disk\\ud800", "NewStateValue": "ALARM"}')
    paired = parse_one('{"AlarmName": "Disk\\ud83d\\ude00", "NewStateValue": "ALARM"}')

    assert_valid(alert)
    assert alert.alarm_name == "Disk\ufffd"
    assert paired.alarm_name == "Disk\U0001f600"


def test_a_failing_generic_handler_still_yields_one_alert(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(inbound: Inbound, document: object = None) -> list[Alert]:
        raise RuntimeError("bug")

    monkeypatch.setattr(generic, "parse", broken)
    alerts = parse(Inbound(text="anything", message_id="m-9", received_at=RECEIVED))

    assert [(a.title, a.source, a.occurred_at) for a in alerts] == [
        ("Unparseable message", "generic", RECEIVED)
    ]
    assert "'m-9'" in caplog.text


# --- generic ------------------------------------------------------------------------------


def test_plain_text_alert_uses_subject_and_text() -> None:
    text = "Backup of db-1 failed\nexit code 3"
    alert = parse_one(text, subject="Backup failed", topic_arn=TOPIC, received_at=RECEIVED)

    assert alert.fingerprint == make_fingerprint("generic", TOPIC, "Backup failed")
    assert (alert.status, alert.severity) == (AlertStatus.FIRING, Severity.MEDIUM)
    assert (alert.title, alert.summary) == ("Backup failed", text)
    assert (alert.account_id, alert.region) == ("999988887777", "ap-southeast-2")
    assert alert.labels == {"topic": "ops-alerts"}
    assert alert.raw == {"text": text}
    assert alert.occurred_at == RECEIVED


def test_plain_text_without_subject_uses_its_first_line() -> None:
    alert = parse_one("\n\n  Backup of db-1 failed  \nexit code 3")

    assert alert.title == "Backup of db-1 failed"
    assert alert.source == "generic"
    assert alert.fingerprint == make_fingerprint("generic", "", "Backup of db-1 failed")


@pytest.mark.parametrize(
    ("subject", "text"),
    [
        ("RESOLVED: Backup of db-1 failed", "all good"),
        (None, "RESOLVED Backup of db-1 failed\nall good"),
        (None, "OK: Backup of db-1 failed"),
        ("Backup of db-1 failed", "resolved - retried"),
    ],
)
def test_resolved_marker_resolves_the_same_identity(subject: str | None, text: str) -> None:
    firing = parse_one("Backup of db-1 failed", topic_arn=TOPIC)
    resolved = parse_one(text, subject=subject, topic_arn=TOPIC)

    assert resolved.status == AlertStatus.RESOLVED
    assert firing.status == AlertStatus.FIRING
    assert resolved.fingerprint == firing.fingerprint


def test_alarm_marker_is_not_part_of_the_generic_identity() -> None:
    firing = parse_one("ALARM: Backup of db-1 failed")

    assert firing.status == AlertStatus.FIRING
    assert firing.fingerprint == parse_one("Backup of db-1 failed").fingerprint


def test_same_text_on_two_topics_is_two_identities() -> None:
    first = parse_one("Backup failed", topic_arn=TOPIC)
    second = parse_one("Backup failed", topic_arn=TOPIC.replace("ops-alerts", "db-alerts"))

    assert first.fingerprint != second.fingerprint


def test_unknown_json_object_keeps_the_object_and_a_title_field() -> None:
    message = load("generic-s3-test-event-constructed.json")
    alert = parse_one(message)

    assert alert.title == "s3:TestEvent"
    assert alert.raw == message


def test_unknown_json_object_without_title_fields_uses_its_compact_form() -> None:
    alert = parse_one({"a": 1, "b": [2, 3]})

    assert alert.title == '{"a":1,"b":[2,3]}'


def test_long_text_is_bounded() -> None:
    text = "word " * 300_000
    alert = parse_one(text)

    assert len(alert.title) == 200
    assert len(alert.summary) == 4000
    assert alert.summary.endswith("…")


# --- purity and documentation -------------------------------------------------------------

ALLOWED_PREFIXES = ("opsbot.core", "handlers")


def forbidden_imports(source: str) -> list[str]:
    """Return the modules a handler source imports outside stdlib, opsbot.core and handlers."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [name for name in names if not allowed_import(name)]
    return found


def allowed_import(name: str) -> bool:
    if name.split(".")[0] in sys.stdlib_module_names:
        return True
    return any(name == prefix or name.startswith(prefix + ".") for prefix in ALLOWED_PREFIXES)


def test_forbidden_imports_catches_outside_modules() -> None:
    source = "import flask\nfrom sqlalchemy import orm\nimport opsbot.db\nfrom opsbot import app\n"

    assert forbidden_imports(source) == ["flask", "sqlalchemy", "opsbot.db", "opsbot"]
    assert forbidden_imports("import json\nfrom opsbot.core.alert import Alert\n") == []


def test_handlers_import_only_stdlib_core_and_handlers() -> None:
    modules = sorted(HANDLERS_DIR.rglob("*.py"))

    assert len(modules) >= 6
    for module in modules:
        assert forbidden_imports(module.read_text()) == [], module.name


@pytest.mark.parametrize("module", HANDLER_MODULES, ids=lambda m: m.__name__)
def test_handler_module_docstring_names_event_link_and_rules(module: Any) -> None:
    doc = importlib.import_module(module.__name__).__doc__ or ""

    assert "https://docs.aws.amazon.com/" in doc
    for rule in ("Identity:", "Severity:", "Resolve:"):
        assert rule in doc
