"""Cost alerts: Cost Anomaly Detection (SNS and EventBridge) and AWS Budgets notifications.

The payloads are the documented ones (tests/fixtures/events/SOURCES.md names each page).
"""

from __future__ import annotations

import copy
import importlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from handlers import Inbound, budgets, cost, parse, sentry
from handlers.cost import DEFAULT_THRESHOLDS, Threshold, impact_severity, thresholds_from_config
from opsbot.config import ConfigError, parse_policy
from opsbot.core.alert import Alert, AlertStatus, Severity, make_fingerprint
from opsbot.intake.sources_config import parse_sources

FIXTURES = Path(__file__).parents[1] / "fixtures" / "events"
SNS_ANOMALY = "costanomaly-sns-immediate-alert-awsdocs.json"
EB_ANOMALY = "eventbridge-ce-anomaly-detected-constructed.json"
BUDGET_ACTUAL = "budgets-actual-killswitch-public.txt"
BUDGET_FORECAST = "budgets-forecasted-constructed.txt"
RECEIVED = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
ANOMALY_ID = "12345678-abcd-ef12-3456-987654321a12"


def load(name: str) -> dict[str, Any]:
    value = json.loads((FIXTURES / name).read_text())
    assert isinstance(value, dict)
    return value


def one(message: object, **sources: Any) -> Alert:
    text = message if isinstance(message, str) else json.dumps(message)
    alerts = parse(Inbound(text=text, message_id="m-1", received_at=RECEIVED, sources=sources))
    assert len(alerts) == 1
    return alerts[0]


def with_impact(name: str, **impact: Any) -> dict[str, Any]:
    message = copy.deepcopy(load(name))
    body = message.get("detail", message)
    body["impact"] = impact
    return message


# --- Cost Anomaly Detection ---------------------------------------------------------------


def test_sns_anomaly_becomes_a_cost_alert_with_its_root_causes() -> None:
    alert = one(load(SNS_ANOMALY))

    assert (alert.source, alert.status, alert.severity) == ("aws.ce", AlertStatus.FIRING, "high")
    assert alert.fingerprint == make_fingerprint("aws.ce", "123456789012", "anomaly", ANOMALY_ID)
    assert alert.account_id == "123456789012"  # the root cause names no real account
    assert alert.title == (
        "Cost anomaly: $1,001.00 (334%) above expected in ServiceName (account 123456789012)"
    )
    assert "Total impact: $1,001.00 (333.67% above the expected $300.00)" in alert.summary
    assert "- service AnomalousServiceName, account AnomalousLinkedAccount" in alert.summary
    assert "usage type AnomalousUsageType: $601.00" in alert.summary
    assert alert.console_url.startswith("https://console.aws.amazon.com/cost-management/")
    assert alert.labels["impact_usd"] == "1001.00"


def test_eventbridge_anomaly_is_in_the_account_of_its_largest_root_cause() -> None:
    alert = one(load(EB_ANOMALY))

    assert (alert.source, alert.detail_type) == ("aws.ce", "Anomaly Detected")
    assert (alert.account_id, alert.region) == ("444455556666", "eu-west-1")
    assert alert.labels["monitor"] == "services-monitor"
    summary = alert.summary.splitlines()
    causes = [line for line in summary if line.startswith("- ")]
    assert causes[0].startswith("- service Amazon Elastic Compute Cloud - Compute, account 4444")
    assert causes[1].endswith("usage type BoxUsage:r5.large: $400.00")


def test_the_sns_and_eventbridge_forms_of_one_anomaly_share_the_identity() -> None:
    assert one(load(SNS_ANOMALY)).fingerprint == one(load(EB_ANOMALY)).fingerprint


@pytest.mark.parametrize(
    ("dollars", "severity"),
    [
        (99.99, Severity.LOW),
        (100, Severity.MEDIUM),
        (999.99, Severity.MEDIUM),
        (1000, Severity.HIGH),
        (9999.99, Severity.HIGH),
        (10_000, Severity.CRITICAL),
    ],
)
def test_default_thresholds_at_and_past_each_level(dollars: float, severity: Severity) -> None:
    alert = one(with_impact(SNS_ANOMALY, totalImpact=dollars))

    assert alert.severity == severity


CONFIGURED = {
    "thresholds": {
        "critical": {"dollars": 5000, "percent": 200},
        "high": {"dollars": 500},
        "medium": {"percent": 50},
    }
}


@pytest.mark.parametrize(
    ("impact", "severity"),
    [
        ({"totalImpact": 6000, "totalImpactPercentage": 250}, Severity.CRITICAL),
        ({"totalImpact": 6000, "totalImpactPercentage": 150}, Severity.HIGH),  # both, not one
        ({"totalImpact": 5000, "totalImpactPercentage": 200}, Severity.CRITICAL),  # at: reached
        ({"totalImpact": 499.99, "totalImpactPercentage": 60}, Severity.MEDIUM),
        ({"totalImpact": 499.99, "totalImpactPercentage": 49.99}, Severity.LOW),
        ({"totalImpact": 6000}, Severity.CRITICAL),  # no percent: judged on dollars alone
        ({"totalImpact": 300, "totalExpectedSpend": 200}, Severity.MEDIUM),  # 150 % computed
        ({"totalImpact": "6000", "totalImpactPercentage": "x"}, Severity.CRITICAL),
        ({}, Severity.LOW),
    ],
)
def test_configured_thresholds_need_every_measure_they_set(
    impact: dict[str, Any], severity: Severity
) -> None:
    thresholds = thresholds_from_config(CONFIGURED)

    assert one(with_impact(SNS_ANOMALY, **impact), cost=thresholds).severity == severity


def test_thresholds_config_is_ordered_by_severity_whatever_the_yaml_order() -> None:
    levels = thresholds_from_config(
        {"thresholds": {"medium": {"dollars": 1}, "critical": {"dollars": 9}}}
    )

    assert [t.severity for t in levels] == [Severity.CRITICAL, Severity.MEDIUM]
    assert impact_severity(levels, 5, None) == Severity.MEDIUM
    assert thresholds_from_config(None) == DEFAULT_THRESHOLDS
    assert thresholds_from_config({}) == DEFAULT_THRESHOLDS


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1], "cost: must be a mapping"),
        ({"threshold": {}}, "cost.threshold: unknown key; did you mean 'thresholds'?"),
        ({"thresholds": []}, "cost.thresholds: must map a severity"),
        ({"thresholds": {"urgent": {"dollars": 1}}}, "cost.thresholds.urgent: unknown key"),
        ({"thresholds": {"high": {}}}, "cost.thresholds.high: must be a mapping with dollars"),
        ({"thresholds": {"high": {"dolars": 1}}}, "did you mean 'dollars'?"),
        ({"thresholds": {"high": {"dollars": -1}}}, "cost.thresholds.high.dollars: must be a"),
        ({"thresholds": {"high": {"percent": True}}}, "cost.thresholds.high.percent: must be"),
        ({"thresholds": {"high": {"dollars": "10"}}}, "cost.thresholds.high.dollars: must be"),
        ({"thresholds": {"high": {"dollars": float("inf")}}}, "high.dollars: must be a number"),
    ],
)
def test_thresholds_config_errors_name_the_key(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=None) as raised:
        thresholds_from_config(value)

    assert message in str(raised.value)


def test_threshold_with_only_an_unknown_measure_is_not_reached() -> None:
    level = Threshold(Severity.HIGH, percent=10)

    assert not level.reached(1_000_000, None)
    assert level.reached(None, 10)


def test_anomaly_without_an_id_is_kept_as_a_generic_alert() -> None:
    message = load(SNS_ANOMALY)
    message["anomalyId"] = ""

    alert = one(message)

    assert alert.source == "generic"


def test_many_root_causes_are_listed_up_to_ten_largest_first() -> None:
    message = load(SNS_ANOMALY)
    message["rootCauses"] = [
        {"service": f"S{i}", "impact": {"contribution": i}} for i in range(1, 131)
    ]

    alert = one(message)

    causes = [line for line in alert.summary.splitlines() if line.startswith("- ")]
    assert len(causes) == 10 and causes[0] == "- service S100: $100.00"  # the first 100 read
    assert alert.summary.endswith("… and 90 more")


# --- AWS Budgets --------------------------------------------------------------------------


def budget(name: str) -> Alert:
    text = (FIXTURES / name).read_text()
    return one(text)


def test_actual_budget_notification_names_budget_threshold_and_amount() -> None:
    alert = budget(BUDGET_ACTUAL)

    assert (alert.source, alert.account_id, alert.status) == (
        "aws.budgets",
        "265627204426",
        AlertStatus.FIRING,
    )
    assert alert.fingerprint == make_fingerprint(
        "aws.budgets", "265627204426", "budget", "killswitch"
    )
    assert alert.title == "Budget killswitch: actual $1.70, alert threshold > $0.75, budgeted $5.00"
    assert alert.severity == Severity.LOW  # $3.30 under the budgeted amount
    assert "Alert Threshold: > $0.75" in alert.summary
    assert alert.labels["alert_type"] == "ACTUAL"


def test_forecasted_overrun_is_one_level_below_the_same_actual_overrun() -> None:
    forecast = budget(BUDGET_FORECAST)
    actual_text = (FIXTURES / BUDGET_FORECAST).read_text().replace("FORECASTED", "ACTUAL")

    assert forecast.labels["overrun_usd"] == "12500.00"
    assert forecast.severity == Severity.HIGH
    assert one(actual_text).severity == Severity.CRITICAL
    assert one(actual_text).fingerprint == forecast.fingerprint  # one budget, one incident


def test_budget_overrun_percent_meets_the_configured_thresholds() -> None:
    thresholds = thresholds_from_config({"thresholds": {"high": {"percent": 30}}})
    text = (FIXTURES / BUDGET_FORECAST).read_text().replace("FORECASTED", "ACTUAL")

    alert = one(text, cost=thresholds)

    assert alert.labels["overrun_percent"] == "31.25"
    assert alert.severity == Severity.HIGH


def test_budget_in_another_unit_is_judged_on_percent_only() -> None:
    text = (FIXTURES / BUDGET_ACTUAL).read_text()
    text = text.replace("Budgeted Amount: $5.00", "Budgeted Amount: 100.00 GB")
    text = text.replace("ACTUAL Amount: $1.70", "ACTUAL Amount: 250.00 GB")

    alert = one(text, cost=thresholds_from_config({"thresholds": {"high": {"percent": 100}}}))

    assert "overrun_usd" not in alert.labels
    assert alert.severity == Severity.HIGH  # 150 % over


def test_text_that_only_looks_like_a_budget_is_generic() -> None:
    assert one("AWS Budget Notification\nno fields here").source == "generic"
    assert one("Budget Name: x\nAWS Budget Notification").source == "generic"


def test_budget_fields_past_the_scan_limit_are_not_read() -> None:
    head = "AWS Budget Notification May 1, 2026\nAWS Account 111122223333\n"
    line = "Budget Name: a"
    within = head + "\n" * (budgets.SCAN_LIMIT - len(head) - len(line)) + line
    past = head + "\n" * (budgets.SCAN_LIMIT - len(head) - len(line) + 1) + line

    assert len(within) == budgets.SCAN_LIMIT
    assert one(within).labels["budget_name"] == "a"
    assert one(past).source == "generic"


# --- module docstrings --------------------------------------------------------------------


@pytest.mark.parametrize("module", [cost, budgets, sentry], ids=lambda m: m.__name__)
def test_new_handler_docstrings_name_the_event_link_and_rules(module: Any) -> None:
    doc = importlib.import_module(module.__name__).__doc__ or ""

    assert "https://docs." in doc
    for rule in ("Identity:", "Severity:", "Resolve:"):
        assert rule in doc


def test_threshold_errors_are_reported_at_their_line_in_the_yaml() -> None:
    text = "cost:\n  thresholds:\n    high: {dollars: 1000}\n    medium: {percent: -5}\n"

    with pytest.raises(ConfigError) as raised:
        parse_sources(parse_policy(text, "opsbot.yaml"))

    assert str(raised.value).startswith("opsbot.yaml:4: cost.thresholds.medium.percent: must be")
    assert parse_sources(parse_policy(text.replace("-5", "5"), "x"))["cost"] == (
        Threshold(Severity.HIGH, dollars=1000),
        Threshold(Severity.MEDIUM, percent=5),
    )
