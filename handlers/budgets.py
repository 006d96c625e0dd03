"""AWS Budgets notifications: the plain-text message a budget's alert publishes to SNS.

Reads the letter AWS Budgets sends (it has no JSON form and no EventBridge
event): a first line "AWS Budget Notification <date>", a line "AWS Account
<id>", and the lines ``Budget Name``, ``Budget Type``, ``Budgeted Amount``,
``Alert Type`` (ACTUAL or FORECASTED), ``Alert Threshold`` ("> $36.00") and
``ACTUAL Amount`` / ``FORECASTED Amount``. The letter's layout is not documented: it
is read as real notifications show it (tests/fixtures/events/SOURCES.md); the
notification types and thresholds are those of
https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_budgets_Notification.html.

Identity: the budget name in its account, so the 80 % and the 100 % alert of a
budget, actual or forecasted, are one incident whose priority rises.

Severity: the overrun — the (actual or forecasted) amount less the budgeted
amount, in dollars and as a percentage of the budgeted amount — against the
impact thresholds of ``cost.thresholds`` (see ``handlers.cost``); a forecast is
one level lower than the same actual spend. Below every level (or under
budget): low.

Resolve: never — AWS Budgets sends no recovery; people resolve the incident.
"""

from __future__ import annotations

import re
from typing import Any

from handlers.base import Inbound, account_id, bound, one_line
from handlers.cost import DEFAULT_THRESHOLDS, impact_severity, number
from opsbot.core.alert import Alert, AlertStatus, Severity, make_fingerprint

SOURCE = "aws.budgets"
CONSOLE_URL = "https://console.aws.amazon.com/billing/home#/budgets"
SCAN_LIMIT = 16_000  # a real letter is under 2 KB; the rest of a bigger message is not read
HEADER_RE = re.compile(r"\A\s*AWS Budget Notification\b")
FIELD_RE = re.compile(r"^[ \t]*([A-Za-z][A-Za-z ]{2,40}?)[ \t]*:[ \t]*(.*?)[ \t]*$", re.MULTILINE)
ACCOUNT_RE = re.compile(r"^[ \t]*AWS Account[ \t]+([0-9]{12})[ \t]*$", re.MULTILINE)
AMOUNT_RE = re.compile(r"\A(\$?)[ \t]*([0-9][0-9,]{0,20}(?:\.[0-9]{1,10})?)\s*(.*)\Z")
ALERT_TYPES = ("ACTUAL", "FORECASTED")
LOWER = {Severity.CRITICAL: Severity.HIGH, Severity.HIGH: Severity.MEDIUM}
LOWER |= {Severity.MEDIUM: Severity.LOW, Severity.LOW: Severity.INFO, Severity.INFO: Severity.INFO}


def looks_like(text: str) -> bool:
    """Return whether a plain-text message is an AWS Budgets notification."""
    head = text[:SCAN_LIMIT]
    return bool(HEADER_RE.match(head)) and "Budget Name:" in head


def fields_of(text: str) -> dict[str, str]:
    """Return the "Name: value" lines of the letter (first occurrence wins), values one-lined."""
    found: dict[str, str] = {}
    for match in FIELD_RE.finditer(text[:SCAN_LIMIT]):
        found.setdefault(match.group(1).strip().lower(), one_line(match.group(2), 300))
    return found


def amount(value: str) -> tuple[float | None, bool]:
    """Return the number in "$1,234.56" (or "100.00 GB") and whether it is in dollars."""
    match = AMOUNT_RE.match(value.strip())
    if match is None:
        return None, False
    figure = number(match.group(2).replace(",", ""))
    return figure, match.group(1) == "$" or match.group(3).strip().upper() == "USD"


def parse(document: dict[str, Any], inbound: Inbound) -> list[Alert]:
    """Return the alert for one budget notification; raise ValueError without a budget name."""
    text = inbound.text
    fields = fields_of(text)
    name = fields.get("budget name", "")
    if not name:
        raise ValueError("budget notification without a Budget Name line")
    kind = fields.get("alert type", "").upper()
    kind = kind if kind in ALERT_TYPES else "ACTUAL"
    spent_text = fields.get(f"{kind.lower()} amount", "")
    budget_text = fields.get("budgeted amount", "")
    threshold_text = fields.get("alert threshold", "")
    spent, spent_usd = amount(spent_text)
    budgeted, budget_usd = amount(budget_text)
    overrun = spent - budgeted if spent is not None and budgeted is not None else None
    dollars = overrun if spent_usd and budget_usd else None
    percent = overrun / budgeted * 100 if overrun is not None and budgeted else None
    severity = impact_severity(inbound.sources.get("cost", DEFAULT_THRESHOLDS), dollars, percent)
    if kind == "FORECASTED":
        severity = LOWER[severity]
    match = ACCOUNT_RE.search(text[:SCAN_LIMIT])
    account = account_id(match.group(1)) if match else ""
    title = f"Budget {name}: {kind.lower()} {spent_text or '?'}"
    title += f", alert threshold {threshold_text}" if threshold_text else ""
    title += f", budgeted {budget_text}" if budget_text else ""
    labels = {
        "budget_name": name,
        "budget_type": fields.get("budget type", ""),
        "alert_type": kind,
        "alert_threshold": threshold_text,
        "amount": spent_text,
        "budgeted": budget_text,
        "overrun_usd": f"{dollars:.2f}" if dollars is not None else "",
        "overrun_percent": f"{percent:.2f}" if percent is not None else "",
    }
    return [
        Alert(
            fingerprint=make_fingerprint(SOURCE, account, "budget", name),
            status=AlertStatus.FIRING,
            severity=severity,
            source=SOURCE,
            title=bound(title, 200),
            summary=bound(_summary(fields, kind), 2000),
            account_id=account,
            resource=bound(name, 512),
            labels={k: v for k, v in labels.items() if v},
            console_url=CONSOLE_URL,
            occurred_at=inbound.received_at,
            raw={"text": text[:SCAN_LIMIT], "subject": inbound.subject or ""},
        )
    ]


def _summary(fields: dict[str, str], kind: str) -> str:
    names = ("budget name", "budget type", "budgeted amount", "alert type", "alert threshold")
    lines = [f"{n.title()}: {fields[n]}" for n in (*names, f"{kind.lower()} amount") if n in fields]
    return "\n".join(lines)
