"""AWS Cost Anomaly Detection: IMMEDIATE alerts over SNS, and the EventBridge "Anomaly Detected".

Reads the anomaly as the SNS message of an IMMEDIATE subscription carries it
(``accountId``, ``anomalyId``, ``anomalyStartDate``, ``anomalyEndDate``,
``dimensionalValue``, ``impact.totalImpact``, ``impact.totalImpactPercentage``,
``rootCauses[]``, ``monitorArn``, ``anomalyDetailsLink``) —
https://docs.aws.amazon.com/cost-management/latest/userguide/manage-ad.html — and
as the ``detail`` of the EventBridge event (source ``aws.ce``, detail-type
"Anomaly Detected", the same fields plus ``monitorName``, ``dimensionValue``) —
https://docs.aws.amazon.com/cost-management/latest/userguide/cad-eventbridge.html.

Identity: the anomaly id in the monitor's account, so the SNS and the
EventBridge form of one anomaly, and its later updates, are one incident.

Account: the incident is in the account the spend is in — the linked account
of the root cause with the largest contribution — else the monitor's account.

Severity: from the impact thresholds of the YAML key ``cost.thresholds``
(``thresholds_from_config``; they come with each message as
``Inbound.sources["cost"]``): the first level whose ``dollars`` (total impact)
and ``percent`` (total impact percentage) are both reached; a measure the
message lacks is not judged. Below every level: low. The environment's priority
matrix turns the severity into the priority (prod: critical P1, high P2, …).

Resolve: never — an anomaly is an occurrence; people resolve the incident.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handlers.awsevents import Envelope, envelope, field, text
from handlers.base import Inbound, account_id, bound, parse_arn, region_code
from opsbot.core.alert import SEVERITY_RANK, Alert, AlertStatus, Severity, make_fingerprint

SOURCE = "aws.ce"
DETAIL_TYPE = "Anomaly Detected"
TITLE_LIMIT = 200
SUMMARY_LIMIT = 4000
ROOT_CAUSES_SHOWN = 10
CONSOLE_PREFIX = "https://"
NUMBER_RE = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,15})?")
THRESHOLD_KEYS = ("dollars", "percent")
LEVELS = ("critical", "high", "medium", "low")


@dataclass(frozen=True)
class Threshold:
    """The impact at which an alert gets ``severity``: dollars and/or percent, both reached."""

    severity: Severity
    dollars: float | None = None
    percent: float | None = None

    def reached(self, dollars: float | None, percent: float | None) -> bool:
        """Return whether every measure this level sets, and the message has, is reached."""
        judged = [
            (limit, value)
            for limit, value in ((self.dollars, dollars), (self.percent, percent))
            if limit is not None and value is not None
        ]
        return bool(judged) and all(value >= limit for limit, value in judged)


DEFAULT_THRESHOLDS: tuple[Threshold, ...] = (
    Threshold(Severity.CRITICAL, dollars=10_000),
    Threshold(Severity.HIGH, dollars=1_000),
    Threshold(Severity.MEDIUM, dollars=100),
)


def thresholds_from_config(value: object) -> tuple[Threshold, ...]:
    """Return the levels of the YAML ``cost:`` value; raise ValueError naming the bad key."""
    if value is None:
        return DEFAULT_THRESHOLDS
    if not isinstance(value, Mapping):
        raise ValueError("cost: must be a mapping with thresholds")
    check_keys(value, ("thresholds",), "cost")
    levels = value.get("thresholds")
    if levels is None:
        return DEFAULT_THRESHOLDS
    if not isinstance(levels, Mapping):
        raise ValueError("cost.thresholds: must map a severity (critical, high, …) to a level")
    check_keys(levels, LEVELS, "cost.thresholds")
    found = [_threshold(str(name), spec) for name, spec in levels.items()]
    return tuple(sorted(found, key=lambda t: SEVERITY_RANK[t.severity]))


def _threshold(name: str, spec: object) -> Threshold:
    where = f"cost.thresholds.{name}"
    if not isinstance(spec, Mapping) or not spec:
        raise ValueError(f"{where}: must be a mapping with dollars and/or percent")
    check_keys(spec, THRESHOLD_KEYS, where)
    limits: dict[str, float | None] = {}
    for key in THRESHOLD_KEYS:
        limit = spec.get(key)
        bad = isinstance(limit, bool) or not isinstance(limit, int | float)
        if limit is not None and (bad or not math.isfinite(limit) or limit < 0):
            raise ValueError(f"{where}.{key}: must be a number of at least 0, got {limit!r}")
        limits[key] = None if limit is None else float(limit)
    return Threshold(Severity(name), limits["dollars"], limits["percent"])


def check_keys(value: Mapping[Any, Any], known: Sequence[str], where: str) -> None:
    """Raise ValueError naming the first key of a YAML mapping that is not ``known``."""
    unknown = sorted(str(k) for k in value if str(k) not in known)
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(
            f"{where}.{unknown[0]}: unknown key; {hint}expected one of {', '.join(known)}"
        )


def impact_severity(
    thresholds: Sequence[Threshold], dollars: float | None, percent: float | None
) -> Severity:
    """Return the severity of the first (most severe) level the impact reaches, else low."""
    for level in sorted(thresholds, key=lambda t: SEVERITY_RANK[t.severity]):
        if level.reached(dollars, percent):
            return level.severity
    return Severity.LOW


def number(value: object) -> float | None:
    """Return a finite JSON number (or a plain decimal string) as a float, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        result = float(value) if abs(value) < 1e18 else math.inf
        return result if math.isfinite(result) else None
    if isinstance(value, str) and NUMBER_RE.fullmatch(value.strip()):
        return float(value.strip())
    return None


def money(value: float | None) -> str:
    """Return "$1,234.56", or "?" when unknown."""
    return "?" if value is None else f"${value:,.2f}"


@dataclass(frozen=True)
class RootCause:
    """One root cause of an anomaly, ranked by its dollar contribution."""

    account: str
    account_name: str
    region: str
    service: str
    usage_type: str
    contribution: float | None

    def describe(self) -> str:
        parts = [
            f"service {self.service}" if self.service else "",
            f"account {self.account}" + (f" ({self.account_name})" if self.account_name else "")
            if self.account
            else "",
            f"region {self.region}" if self.region else "",
            f"usage type {self.usage_type}" if self.usage_type else "",
        ]
        shown = ", ".join(p for p in parts if p) or "(not named)"
        return f"- {shown}: {money(self.contribution)}"


def root_causes(value: object) -> list[RootCause]:
    """Return the root causes, largest contribution first (unknown contributions last)."""
    items = value if isinstance(value, list) else []
    causes = [
        RootCause(
            account=text(item, "linkedAccount", limit=40),
            account_name=text(item, "linkedAccountName", limit=100),
            region=text(item, "region", limit=40),
            service=text(item, "service", limit=200),
            usage_type=text(item, "usageType", limit=200),
            contribution=number(field(item, "impact", "contribution")),
        )
        for item in items[:100]
        if isinstance(item, dict)
    ]
    return sorted(causes, key=lambda c: -(c.contribution if c.contribution is not None else -1))


def parse_sns(document: dict[str, Any], inbound: Inbound) -> list[Alert]:
    """Return the alert for the SNS message of an IMMEDIATE anomaly subscription."""
    return [anomaly_alert(document, inbound, raw=document, detail_type="")]


def parse_event(event: dict[str, Any], inbound: Inbound) -> list[Alert]:
    """Return the alert for an EventBridge "Anomaly Detected" event."""
    env = envelope(event, inbound)
    detail = dict(env.detail)
    detail.setdefault("accountId", env.account)
    return [anomaly_alert(detail, inbound, raw=event, detail_type=env.detail_type, env=env)]


def anomaly_alert(
    doc: Mapping[str, Any],
    inbound: Inbound,
    *,
    raw: Mapping[str, Any],
    detail_type: str,
    env: Envelope | None = None,
) -> Alert:
    """Return the alert for one anomaly (``doc`` holds the anomaly's fields)."""
    anomaly_id = text(doc, "anomalyId", limit=200)
    if not anomaly_id:
        raise ValueError("cost anomaly without an anomalyId")
    monitor_arn = text(doc, "monitorArn", limit=1000)
    monitor_account = account_id(text(doc, "accountId", limit=40)) or parse_arn(monitor_arn).account
    dollars = number(field(doc, "impact", "totalImpact"))
    if dollars is None:
        dollars = number(field(doc, "impact", "maxImpact"))
    percent = _percent(doc, dollars)
    causes = root_causes(field(doc, "rootCauses"))
    top = causes[0] if causes else None
    concerned = account_id(top.account) if top else ""
    dimension = text(doc, "dimensionValue", limit=200) or text(doc, "dimensionalValue", limit=200)
    what = dimension or (top.service if top else "") or "spend"
    account = concerned or monitor_account
    thresholds = inbound.sources.get("cost", DEFAULT_THRESHOLDS)
    shown_percent = f" ({percent:,.0f}%)" if percent is not None else ""
    link = text(doc, "anomalyDetailsLink", limit=2000)
    return Alert(
        fingerprint=make_fingerprint(SOURCE, monitor_account, "anomaly", anomaly_id),
        status=AlertStatus.FIRING,
        severity=impact_severity(thresholds, dollars, percent),
        source=SOURCE,
        title=bound(
            f"Cost anomaly: {money(dollars)}{shown_percent} above expected in {what}"
            + (f" (account {account})" if account else ""),
            TITLE_LIMIT,
        ),
        summary=bound(_summary(doc, dollars, percent, causes, monitor_arn), SUMMARY_LIMIT),
        account_id=account,
        region=region_code(top.region) if top else "",
        resource=bound(what, 512),
        detail_type=detail_type,
        labels={
            k: v
            for k, v in {
                "anomaly_id": anomaly_id,
                "monitor": text(doc, "monitorName", limit=200) or parse_arn(monitor_arn).resource,
                "dimension": dimension,
                "impact_usd": f"{dollars:.2f}" if dollars is not None else "",
                "impact_percent": f"{percent:.2f}" if percent is not None else "",
                "monitor_account": monitor_account,
            }.items()
            if v
        },
        console_url=link if link.startswith(CONSOLE_PREFIX) else "",
        occurred_at=env.occurred_at if env is not None else inbound.received_at,
        raw=raw,
    )


def _percent(doc: Mapping[str, Any], dollars: float | None) -> float | None:
    given = number(field(doc, "impact", "totalImpactPercentage"))
    if given is not None:
        return given
    expected = number(field(doc, "impact", "totalExpectedSpend"))
    if dollars is None or expected is None or expected <= 0:
        return None
    return dollars / expected * 100


def _summary(
    doc: Mapping[str, Any],
    dollars: float | None,
    percent: float | None,
    causes: Sequence[RootCause],
    monitor_arn: str,
) -> str:
    actual = number(field(doc, "impact", "totalActualSpend"))
    expected = number(field(doc, "impact", "totalExpectedSpend"))
    lines = [
        f"Total impact: {money(dollars)}"
        + (
            f" ({percent:,.2f}% above the expected {money(expected)})"
            if percent is not None
            else ""
        )
        + (f"; actual spend {money(actual)}" if actual is not None else ""),
        f"Anomaly: {text(doc, 'anomalyId', limit=200)}, "
        f"{text(doc, 'anomalyStartDate', limit=40) or '?'} to "
        f"{text(doc, 'anomalyEndDate', limit=40) or 'ongoing'}",
    ]
    monitor = text(doc, "monitorName", limit=200)
    if monitor or monitor_arn:
        lines.append(f"Monitor: {' '.join(p for p in (monitor, monitor_arn) if p)}")
    lines.append("Root causes:" if causes else "Root causes: none named")
    lines += [cause.describe() for cause in causes[:ROOT_CAUSES_SHOWN]]
    if len(causes) > ROOT_CAUSES_SHOWN:
        lines.append(f"… and {len(causes) - ROOT_CAUSES_SHOWN} more")
    return "\n".join(lines)
