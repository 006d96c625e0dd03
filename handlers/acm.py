"""ACM certificates approaching expiration, as EventBridge delivers them.

Reads "ACM Certificate Approaching Expiration" (``detail.DaysToExpiry``,
``detail.CommonName``) and "ACM Certificate Expired" events —
https://docs.aws.amazon.com/acm/latest/userguide/supported-events.html.
ACM sends one approaching-expiration event per certificate per day, from 45
days before expiry.

Identity: the certificate ARN (the event's first resource) in its account and
region.

Severity: expired critical; 7 days or fewer critical, 14 or fewer high, 30 or
fewer medium, more low; a missing or non-numeric DaysToExpiry is medium.

Resolve: never from ACM — renewal produces no event; the daily events stop and
the incident is resolved by people (or routed without a ticket).
"""

from __future__ import annotations

from typing import Any

from handlers.awsevents import envelope, field, make_alert, text
from handlers.base import Inbound
from opsbot.core.alert import Alert, AlertStatus, Severity

APPROACHING = "ACM Certificate Approaching Expiration"
EXPIRED = "ACM Certificate Expired"
DAY_BANDS = ((7, Severity.CRITICAL), (14, Severity.HIGH), (30, Severity.MEDIUM))


def parse(event: dict[str, Any], inbound: Inbound) -> list[Alert]:
    """Return the alert for a certificate nearing (or past) expiry."""
    env = envelope(event, inbound)
    if env.detail_type not in (APPROACHING, EXPIRED):
        raise ValueError(f"not a certificate expiry event: {env.detail_type[:60]!r}")
    certificate = env.resources[0] if env.resources else text(env.detail, "CommonName")
    if not certificate:
        raise ValueError("ACM event without a certificate")
    name = text(env.detail, "CommonName", limit=200) or certificate
    days = field(env.detail, "DaysToExpiry")
    expired = env.detail_type == EXPIRED
    when = "has expired" if expired else f"expires in {days} days"
    return [
        make_alert(
            env,
            identity=(certificate,),
            status=AlertStatus.FIRING,
            severity=Severity.CRITICAL if expired else days_severity(days),
            title=f"Certificate {name} {when}",
            summary=f"ACM certificate {certificate} for {name} {when}",
            resource=certificate,
            labels={"common_name": name, "days_to_expiry": "" if expired else str(days)},
        )
    ]


def days_severity(days: object) -> Severity:
    """Return the severity for the days left before expiry."""
    if isinstance(days, bool) or not isinstance(days, int | float):
        return Severity.MEDIUM
    return next((s for limit, s in DAY_BANDS if days <= limit), Severity.LOW)
