"""Per-source EventBridge handlers: identity, severity, resolve rules and edge cases."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from handlers import Inbound, cloudtrail, ec2, parse
from handlers.cloudwatch_events import parse as parse_alarm_event
from opsbot.core.accounts import Account, AccountMap
from opsbot.core.alert import Alert, AlertStatus, Severity, make_fingerprint
from tests.support.sns import alarm_message

FIXTURES = Path(__file__).parents[1] / "fixtures" / "events"


def load(name: str) -> dict[str, Any]:
    value = json.loads((FIXTURES / name).read_text())
    assert isinstance(value, dict)
    return value


def one(message: object, sources: dict[str, Any] | None = None) -> Alert:
    alerts = parse(Inbound(text=json.dumps(message), message_id="m-1", sources=sources or {}))
    assert len(alerts) == 1
    return alerts[0]


def with_detail(name: str, **changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(load(name))
    event["detail"].update(changes)
    return event


GUARDDUTY = "eventbridge-guardduty-finding-constructed.json"
SECURITYHUB = "eventbridge-securityhub-findings-imported-constructed.json"
INSPECTOR = "eventbridge-inspector2-finding-constructed.json"
HEALTH = "eventbridge-health-event-issue-constructed.json"
CONFIG_BAD = "eventbridge-config-rules-compliance-change-noncompliant-constructed.json"
CONFIG_OK = "eventbridge-config-rules-compliance-change-compliant-constructed.json"
INGRESS = "eventbridge-cloudtrail-authorize-ingress-world-constructed.json"
ROOT = "eventbridge-cloudtrail-console-signin-root-constructed.json"
TASK = "eventbridge-ecs-task-state-change-stopped-constructed.json"
DEPLOY = "eventbridge-ecs-deployment-state-change-failed-awsdocs.json"
PIPE_FAILED = "eventbridge-codepipeline-pipeline-execution-state-change-failed-awsdocs.json"
PIPE_OK = "eventbridge-codepipeline-pipeline-execution-state-change-succeeded-constructed.json"
EC2_PENDING = "eventbridge-ec2-instance-state-change-pending-awsdocs.json"
EC2_GONE = "eventbridge-ec2-instance-state-change-terminated-constructed.json"
RDS_FAILOVER = "eventbridge-rds-db-instance-event-failover-constructed.json"
RDS_FAILURE = "eventbridge-rds-db-cluster-event-failure-constructed.json"
ACM = "eventbridge-acm-certificate-approaching-expiration-awsdocs.json"
SSM_COMMAND = "eventbridge-ssm-command-status-change-failed-constructed.json"
SSM_AUTOMATION = "eventbridge-ssm-automation-status-change-timedout-constructed.json"
SSM_PATCH = "eventbridge-ssm-patch-compliance-noncompliant-constructed.json"
ALARM = "eventbridge-cloudwatch-alarm-state-change-single-metric-awsdocs.json"


# --- what each documented sample becomes --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "severity", "title_part"),
    [
        (GUARDDUTY, AlertStatus.FIRING, Severity.MEDIUM, "GuardDuty: Test Finding"),
        (SECURITYHUB, AlertStatus.FIRING, Severity.MEDIUM, "S3.1 S3 Block Public Access"),
        (INSPECTOR, AlertStatus.FIRING, Severity.HIGH, "in glibc 2.26 on i-0c2a343f1948d5205"),
        (HEALTH, AlertStatus.FIRING, Severity.HIGH, "AWS Health issue: EC2 AWS_EC2_OPERATIONAL"),
        (CONFIG_BAD, AlertStatus.FIRING, Severity.MEDIUM, "is NON_COMPLIANT with restricted-ssh"),
        (CONFIG_OK, AlertStatus.RESOLVED, Severity.MEDIUM, "is COMPLIANT with restricted-ssh"),
        (INGRESS, AlertStatus.FIRING, Severity.HIGH, "AuthorizeSecurityGroupIngress (world_open)"),
        (ROOT, AlertStatus.FIRING, Severity.CRITICAL, "ConsoleLogin (root)"),
        (TASK, AlertStatus.FIRING, Severity.HIGH, "service:sample-fargate in FargateCluster"),
        (DEPLOY, AlertStatus.FIRING, Severity.HIGH, "ECS deployment failed"),
        (PIPE_FAILED, AlertStatus.FIRING, Severity.HIGH, "CodePipeline myPipeline failed"),
        (PIPE_OK, AlertStatus.RESOLVED, Severity.HIGH, "CodePipeline myPipeline succeeded"),
        (EC2_GONE, AlertStatus.FIRING, Severity.HIGH, "i-1234567890abcdef0 terminated"),
        (RDS_FAILOVER, AlertStatus.RESOLVED, Severity.HIGH, "RDS failover on mysql-instance"),
        (RDS_FAILURE, AlertStatus.FIRING, Severity.CRITICAL, "RDS failure on aurora-prod"),
        (ACM, AlertStatus.FIRING, Severity.LOW, "Certificate example.com expires in 31 days"),
        (SSM_COMMAND, AlertStatus.FIRING, Severity.MEDIUM, "AWS-RunPowerShellScript Failed"),
        (SSM_AUTOMATION, AlertStatus.FIRING, Severity.MEDIUM, "runcommand1 TimedOut"),
        (SSM_PATCH, AlertStatus.FIRING, Severity.CRITICAL, "i-01234567890abcdef is non_compliant"),
        (ALARM, AlertStatus.FIRING, Severity.HIGH, "ALARM: ServerCpuTooHigh on i-1234"),
    ],
)
def test_documented_sample_becomes_the_expected_alert(
    name: str, status: AlertStatus, severity: Severity, title_part: str
) -> None:
    alert = one(load(name))

    assert (alert.status, alert.severity) == (status, severity)
    assert title_part in alert.title
    assert alert.source == load(name)["source"]


@pytest.mark.parametrize("name", [EC2_PENDING])
def test_sample_needing_no_incident_is_recorded_as_ignored(name: str) -> None:
    alert = one(load(name))

    assert (alert.status, alert.severity) == (AlertStatus.RESOLVED, Severity.INFO)
    assert alert.labels["ignored"]


# --- identities ---------------------------------------------------------------------------


def test_eventbridge_alarm_has_the_identity_of_its_sns_form() -> None:
    event = load(ALARM)
    sns = json.loads(alarm_message("ServerCpuTooHigh", account="123456789012"))
    via_sns = one(sns)
    via_eventbridge = one(event)

    assert via_eventbridge.fingerprint == via_sns.fingerprint
    assert via_eventbridge.fingerprint == make_fingerprint(
        "aws.cloudwatch", "123456789012", "us-east-1", "ServerCpuTooHigh"
    )
    assert via_eventbridge.alarm_name == via_sns.alarm_name == "ServerCpuTooHigh"


@pytest.mark.parametrize(
    ("state", "previous", "status", "severity"),
    [
        ("OK", "ALARM", AlertStatus.RESOLVED, Severity.HIGH),
        ("INSUFFICIENT_DATA", "ALARM", AlertStatus.FIRING, Severity.HIGH),
        ("INSUFFICIENT_DATA", "OK", AlertStatus.FIRING, Severity.LOW),
    ],
)
def test_eventbridge_alarm_states_follow_the_sns_rules(
    state: str, previous: str, status: AlertStatus, severity: Severity
) -> None:
    event = load(ALARM)
    event["detail"]["state"]["value"] = state
    event["detail"]["previousState"]["value"] = previous

    alert = parse_alarm_event(event, Inbound(text=""))[0]
    assert (alert.status, alert.severity) == (status, severity)


def test_eventbridge_alarm_severity_token_in_the_description() -> None:
    event = load(ALARM)
    event["detail"]["configuration"]["description"] = "[critical] CPU"

    assert one(event).severity == Severity.CRITICAL


def test_guardduty_updates_of_a_finding_share_one_identity() -> None:
    first = one(load(GUARDDUTY))
    later = one(with_detail(GUARDDUTY, severity=8.0, updatedAt="2017-11-01T00:00:00Z"))

    assert first.fingerprint == later.fingerprint
    assert later.severity == Severity.HIGH


@pytest.mark.parametrize(
    ("value", "severity"),
    [
        (9.5, Severity.CRITICAL),
        (7, Severity.HIGH),
        (8.9, Severity.HIGH),
        (4.0, Severity.MEDIUM),
        (3.9, Severity.LOW),
        (0.5, Severity.INFO),
        ("7.2", Severity.HIGH),
        ("severe", Severity.INFO),
        (None, Severity.INFO),
        (True, Severity.INFO),
    ],
)
def test_guardduty_severity_bands(value: object, severity: Severity) -> None:
    assert one(with_detail(GUARDDUTY, severity=value)).severity == severity


def test_guardduty_archived_finding_resolves() -> None:
    event = load(GUARDDUTY)
    event["detail"]["service"]["archived"] = True

    assert one(event).status == AlertStatus.RESOLVED


@pytest.mark.parametrize(
    ("workflow", "record", "status"),
    [
        ("NEW", "ACTIVE", AlertStatus.FIRING),
        ("NOTIFIED", "ACTIVE", AlertStatus.FIRING),
        ("RESOLVED", "ACTIVE", AlertStatus.RESOLVED),
        ("SUPPRESSED", "ACTIVE", AlertStatus.RESOLVED),
        ("NEW", "ARCHIVED", AlertStatus.RESOLVED),
        ("SOMETHING_NEW", "ACTIVE", AlertStatus.FIRING),
    ],
)
def test_securityhub_workflow_and_record_state(
    workflow: str, record: str, status: AlertStatus
) -> None:
    event = load(SECURITYHUB)
    event["detail"]["findings"][0]["Workflow"]["Status"] = workflow
    event["detail"]["findings"][0]["RecordState"] = record

    assert one(event).status == status


def test_securityhub_one_alert_per_finding_and_unknown_label_is_medium() -> None:
    event = load(SECURITYHUB)
    second = copy.deepcopy(event["detail"]["findings"][0])
    second["Id"] = "another"
    second["Severity"] = {"Label": "APOCALYPTIC"}
    event["detail"]["findings"].append(second)
    alerts = parse(Inbound(text=json.dumps(event)))

    assert len(alerts) == 2
    assert alerts[0].fingerprint != alerts[1].fingerprint
    assert alerts[1].severity == Severity.MEDIUM


@pytest.mark.parametrize(
    ("status", "expected"),
    [("CLOSED", AlertStatus.RESOLVED), ("ACTIVE", AlertStatus.FIRING)],
)
def test_inspector_closed_resolves(status: str, expected: AlertStatus) -> None:
    assert one(with_detail(INSPECTOR, status=status)).status == expected


def test_health_closed_resolves_and_scheduled_is_medium() -> None:
    alert = one(load("eventbridge-health-event-scheduled-closed-constructed.json"))

    assert (alert.status, alert.severity) == (AlertStatus.RESOLVED, Severity.MEDIUM)
    assert alert.resource == "i-abcd1111"
    assert alert.labels["affected_entities"] == "i-abcd1111"


def test_config_identity_is_account_region_rule_and_resource() -> None:
    bad, good = one(load(CONFIG_BAD)), one(load(CONFIG_OK))
    other = one(with_detail(CONFIG_BAD, resourceId="sg-other"))

    assert bad.fingerprint == good.fingerprint
    assert bad.fingerprint == make_fingerprint(
        "aws.config",
        "123456789012",
        "us-east-2",
        "restricted-ssh",
        "AWS::EC2::SecurityGroup",
        "sg-0123456789abcdef0",
    )
    assert other.fingerprint != bad.fingerprint


def test_config_unknown_compliance_fires_low() -> None:
    event = load(CONFIG_BAD)
    event["detail"]["newEvaluationResult"]["complianceType"] = "SORT_OF"

    assert (one(event).status, one(event).severity) == (AlertStatus.FIRING, Severity.LOW)


# --- CloudTrail ---------------------------------------------------------------------------


def test_cloudtrail_summary_names_principal_and_source_ip() -> None:
    alert = one(load(INGRESS))

    assert alert.summary.startswith(
        "AuthorizeSecurityGroupIngress by arn:aws:iam::123456789012:user/Alice from 203.0.113.12"
    )
    assert alert.resource == "sg-0123456789abcdef0"
    assert alert.labels["source_ip"] == "203.0.113.12"


def test_cloudtrail_ingress_from_a_private_range_is_not_watched() -> None:
    event = load(INGRESS)
    ranges = event["detail"]["requestParameters"]["ipPermissions"]["items"][0]["ipRanges"]
    ranges["items"][0]["cidrIp"] = "10.0.0.0/8"
    alert = one(event)

    assert (alert.status, alert.severity) == (AlertStatus.RESOLVED, Severity.INFO)


def test_cloudtrail_failed_call_is_not_a_change() -> None:
    assert one(with_detail(INGRESS, errorCode="AccessDenied")).status == AlertStatus.RESOLVED


def test_cloudtrail_console_sign_in_without_mfa_by_a_user() -> None:
    event = load(ROOT)
    event["detail"]["userIdentity"] = {"type": "IAMUser", "arn": "arn:aws:iam::1:user/bob"}
    alert = one(event)

    assert (alert.status, alert.severity) == (AlertStatus.FIRING, Severity.HIGH)
    event["detail"]["additionalEventData"]["MFAUsed"] = "Yes"
    assert one(event).status == AlertStatus.RESOLVED


@pytest.mark.parametrize(
    ("name", "params", "watched"),
    [
        ("PutBucketAcl", {"bucketName": "b", "x-amz-acl": ["public-read"]}, True),
        ("PutBucketAcl", {"bucketName": "b", "x-amz-acl": ["private"]}, False),
        (
            "PutBucketPolicy",
            {"bucketName": "b", "bucketPolicy": {"Statement": [{"Principal": "*"}]}},
            False,
        ),
        ("PutBucketPolicy", {"bucketName": "b", "policy": '{"Principal":"*"}'}, True),
        (
            "PutBucketPublicAccessBlock",
            {"PublicAccessBlockConfiguration": {"BlockPublicAcls": False}},
            True,
        ),
        ("StopLogging", {"name": "trail"}, True),
        ("ScheduleKeyDeletion", {"keyId": "k"}, True),
        ("DescribeInstances", {}, False),
    ],
)
def test_cloudtrail_default_watch_list(name: str, params: dict[str, Any], watched: bool) -> None:
    event = load(INGRESS)
    event["detail"].update(eventName=name, requestParameters=params)

    assert (one(event).status == AlertStatus.FIRING) is watched


def test_cloudtrail_configured_watch_list_replaces_the_default() -> None:
    watches = cloudtrail.watch_list_from_config(
        {"defaults": False, "watch": [{"event": "DescribeInstances", "severity": "low"}]}
    )
    event = load(INGRESS)
    event["detail"]["eventName"] = "DescribeInstances"
    alert = one(event, {"cloudtrail": watches})
    ingress = one(load(INGRESS), {"cloudtrail": watches})

    assert (alert.status, alert.severity) == (AlertStatus.FIRING, Severity.LOW)
    assert ingress.status == AlertStatus.RESOLVED


def test_cloudtrail_config_defaults_keep_the_default_list() -> None:
    watches = cloudtrail.watch_list_from_config({"watch": [{"event": "RunInstances"}]})

    assert watches[: len(cloudtrail.DEFAULT_WATCH)] == cloudtrail.DEFAULT_WATCH
    assert watches[-1] == cloudtrail.Watch("RunInstances")
    assert cloudtrail.watch_list_from_config(None) == cloudtrail.DEFAULT_WATCH


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "cloudtrail: must be a mapping"),
        ({"watch": {}}, "cloudtrail.watch: must be a list"),
        ({"defaults": "yes"}, "cloudtrail.defaults: must be true or false"),
        ({"extra": 1}, "cloudtrail.extra: unknown key; expected one of defaults, watch"),
        ({"wach": []}, "cloudtrail.wach: unknown key; did you mean 'watch'?"),
        ({"watch": ["DeleteTrail"]}, "cloudtrail.watch[0]: must be a mapping"),
        ({"watch": [{"event": ""}]}, "cloudtrail.watch[0].event:"),
        ({"watch": [{"event": "X", "when": "sometimes"}]}, "cloudtrail.watch[0].when: 'sometimes'"),
        ({"watch": [{"event": "X", "severity": "huge"}]}, "cloudtrail.watch[0].severity: 'huge'"),
        (
            {"watch": [{"event": "X"}, {"event": "Y", "oops": 1}]},
            "cloudtrail.watch[1].oops: unknown",
        ),
    ],
)
def test_cloudtrail_config_errors_are_precise(value: object, message: str) -> None:
    with pytest.raises(ValueError) as error:
        cloudtrail.watch_list_from_config(value)

    assert str(error.value).startswith(message)


# --- ECS, CodePipeline, EC2, RDS, ACM, SSM -------------------------------------------------


def test_ecs_task_failures_group_per_service() -> None:
    first = one(load(TASK))
    event = load(TASK)
    event["detail"]["taskArn"] = event["detail"]["taskArn"].replace("c13b", "ffff")
    second = one(event)

    assert first.fingerprint == second.fingerprint
    assert "exited 1" in first.summary


@pytest.mark.parametrize(
    ("changes", "watched"),
    [
        ({"lastStatus": "RUNNING"}, False),
        (
            {"containers": [{"name": "app", "exitCode": 0}], "stoppedReason": "Scaling activity"},
            False,
        ),
        (
            {
                "containers": [{"name": "app", "exitCode": 0}],
                "stoppedReason": "CannotPullContainerError: x",
            },
            True,
        ),
        (
            {"containers": [{"name": "app"}], "stopCode": "TaskFailedToStart", "stoppedReason": ""},
            True,
        ),
        ({"containers": "garbage", "stoppedReason": "Task stopped by user"}, False),
    ],
)
def test_ecs_task_fires_only_for_failures(changes: dict[str, Any], watched: bool) -> None:
    assert (one(with_detail(TASK, **changes)).status == AlertStatus.FIRING) is watched


def test_ecs_deployment_completed_resolves_and_rollback_is_medium() -> None:
    failed = one(load(DEPLOY))
    completed = one(with_detail(DEPLOY, eventName="SERVICE_DEPLOYMENT_COMPLETED"))
    rolled = one(with_detail(DEPLOY, reason="ECS deployment circuit breaker: rolling back"))

    assert completed.fingerprint == failed.fingerprint
    assert completed.status == AlertStatus.RESOLVED
    assert rolled.severity == Severity.MEDIUM


def test_codepipeline_success_has_the_failure_identity() -> None:
    assert one(load(PIPE_OK)).fingerprint == one(load(PIPE_FAILED)).fingerprint
    assert one(with_detail(PIPE_FAILED, state="STARTED")).labels["ignored"]


def test_ec2_watch_rule_by_environment_and_instance() -> None:
    accounts = AccountMap((Account("123456789012", "sandbox", "sandbox"),))
    unwatched = one(load(EC2_GONE), {"ec2": ec2.ec2_watch_from_config(None, accounts)})
    listed_rule = ec2.ec2_watch_from_config({"watch_instances": ["i-1234567890abcdef0"]}, accounts)
    listed = one(load(EC2_GONE), {"ec2": listed_rule})

    assert (unwatched.status, unwatched.severity) == (AlertStatus.RESOLVED, Severity.INFO)
    assert "not watched" in unwatched.title
    assert listed.status == AlertStatus.FIRING


def test_ec2_running_resolves_a_watched_instance() -> None:
    running = one(with_detail(EC2_GONE, state="running"))

    assert running.status == AlertStatus.RESOLVED
    assert running.fingerprint == one(load(EC2_GONE)).fingerprint


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("prod", "ec2: must be a mapping"),
        ({"watch_environments": "prod"}, "ec2.watch_environments: must be a list"),
        ({"watch": []}, "ec2.watch: unknown key; expected one of watch_environments"),
        (
            {"watch_instance": []},
            "ec2.watch_instance: unknown key; did you mean 'watch_instances'\\?",
        ),
    ],
)
def test_ec2_config_errors_are_precise(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ec2.ec2_watch_from_config(value, AccountMap())


def test_rds_ignores_categories_nobody_acts_on() -> None:
    alert = one(with_detail(RDS_FAILURE, EventCategories=["backup"]))

    assert alert.labels["ignored"]


@pytest.mark.parametrize(
    ("days", "severity"),
    [(3, Severity.CRITICAL), (14, Severity.HIGH), (30, Severity.MEDIUM), ("soon", Severity.MEDIUM)],
)
def test_acm_severity_grows_as_expiry_nears(days: object, severity: Severity) -> None:
    assert one(with_detail(ACM, DaysToExpiry=days)).severity == severity


def test_ssm_automation_started_by_opsbot_is_not_alerted() -> None:
    alert = one(
        with_detail(SSM_AUTOMATION, ExecutedBy="arn:aws:sts::1:assumed-role/opsbot/session")
    )

    assert alert.labels["ignored"] == "automation started by opsbot"


def test_ssm_success_resolves_and_compliant_patch_resolves() -> None:
    success = one(with_detail(SSM_AUTOMATION, Status="Success"))
    compliant = one(with_detail(SSM_PATCH, **{"compliance-status": "compliant"}))

    assert success.fingerprint == one(load(SSM_AUTOMATION)).fingerprint
    assert success.status == compliant.status == AlertStatus.RESOLVED


# --- edge cases every handler shares -------------------------------------------------------

ALL = sorted(p.name for p in FIXTURES.glob("eventbridge-*.json") if "custom" not in p.name)


@pytest.mark.parametrize("name", ALL)
def test_empty_detail_never_raises(name: str, caplog: pytest.LogCaptureFixture) -> None:
    event = load(name)
    event["detail"] = {}
    alerts = parse(Inbound(text=json.dumps(event), message_id="m-2"))

    assert len(alerts) >= 1
    assert all(a.title for a in alerts)


@pytest.mark.parametrize("name", ALL)
def test_huge_detail_yields_bounded_alerts(name: str) -> None:
    event = load(name)
    event["detail"].update({f"k{i}": "x" * 1000 for i in range(3000)})
    for key in ("description", "Message", "stoppedReason", "reason"):
        if key in event["detail"]:
            event["detail"][key] = "y" * 200_000
    for alert in parse(Inbound(text=json.dumps(event))):
        assert len(alert.title) <= 200
        assert len(alert.summary) <= 4000


@pytest.mark.parametrize("name", ALL)
def test_wrong_types_fall_back_to_a_generic_alert_with_a_warning(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    event = load(name)
    event["detail"] = ["not", "an", "object"]
    caplog.set_level(logging.WARNING, logger="handlers")
    alerts = parse(Inbound(text=json.dumps(event), message_id="m-3"))

    assert len(alerts) == 1
    assert alerts[0].status == AlertStatus.FIRING
    assert "did not parse" in caplog.text
