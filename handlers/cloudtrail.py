"""API calls recorded by CloudTrail, as EventBridge delivers them.

Reads "AWS API Call via CloudTrail" and "AWS Console Sign In via CloudTrail"
events: ``detail.eventSource``, ``eventName``, ``userIdentity``,
``sourceIPAddress``, ``requestParameters``, ``additionalEventData``,
``errorCode`` —
https://docs.aws.amazon.com/eventbridge/latest/ref/events-structure-cloudtrail.html,
https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html.

Only calls on the watch list become incidents. The list comes from the YAML
key ``cloudtrail:`` (``watch_list_from_config``; it comes with each message as
``Inbound.sources["cloudtrail"]``) and defaults to ``DEFAULT_WATCH``: a
security group opened to the world, IAM policy and user changes, root sign-in,
console sign-in without MFA, CloudTrail stopped or deleted, a KMS key disabled
or scheduled for deletion, an S3 bucket made public. Any other call is
recorded without an incident; a call that failed (``errorCode`` set) is not a
change and is recorded the same way.

Identity: event name + principal ARN (or type) in the account and region, so
one principal repeating one risky call is one incident.

Severity: the watch entry's severity (defaults: high; root sign-in, CloudTrail
stopped and KMS deletion critical).

Resolve: never — a call is an occurrence; people resolve the incident.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handlers.awsevents import Envelope, envelope, field, ignored_alert, make_alert, text
from handlers.base import Inbound
from opsbot.core.alert import Alert, AlertStatus, Severity

WORLD = frozenset({"0.0.0.0/0", "::/0"})
PUBLIC_GROUPS = ("AllUsers", "AuthenticatedUsers")


def world_open(detail: Any) -> bool:
    """Whether an ingress request opens a port to 0.0.0.0/0 or ::/0."""
    return any(v in WORLD for v in strings(field(detail, "requestParameters")))


def root_user(detail: Any) -> bool:
    """Whether the call was made by the account's root user."""
    return text(detail, "userIdentity", "type", limit=40) == "Root"


def without_mfa(detail: Any) -> bool:
    """Whether a console sign-in succeeded without MFA."""
    success = text(detail, "responseElements", "ConsoleLogin", limit=20) == "Success"
    return success and text(detail, "additionalEventData", "MFAUsed", limit=10) == "No"


def made_public(detail: Any) -> bool:
    """Whether a bucket ACL, policy or public-access-block change makes the bucket public."""
    params = field(detail, "requestParameters")
    values = list(strings(params))
    if any(group in v for v in values for group in PUBLIC_GROUPS):
        return True
    if any(v in ("public-read", "public-read-write") for v in values):
        return True
    if '"Principal":"*"' in "".join(values).replace(" ", "") or '"AWS":"*"' in "".join(values):
        return True
    block = field(params, "PublicAccessBlockConfiguration")
    return isinstance(block, dict) and any(v is False for v in block.values())


def always(detail: Any) -> bool:
    """Match every call of the watched name."""
    return True


CONDITIONS: dict[str, Callable[[Any], bool]] = {
    "always": always,
    "world_open": world_open,
    "root": root_user,
    "no_mfa": without_mfa,
    "public": made_public,
}


@dataclass(frozen=True)
class Watch:
    """One watched API call: its name, an optional condition, and the severity it gets."""

    event_name: str
    condition: str = "always"
    severity: Severity = Severity.HIGH
    event_source: str = ""


def watch(name: str, condition: str = "always", severity: Severity = Severity.HIGH) -> Watch:
    return Watch(name, condition, severity)


IAM_CHANGES = (
    "CreateUser", "DeleteUser", "CreateAccessKey", "CreateLoginProfile", "UpdateLoginProfile",
    "AttachUserPolicy", "AttachRolePolicy", "AttachGroupPolicy", "PutUserPolicy",
    "PutRolePolicy", "PutGroupPolicy", "CreatePolicy", "CreatePolicyVersion",
    "SetDefaultPolicyVersion", "DeletePolicy", "AddUserToGroup", "UpdateAssumeRolePolicy",
)  # fmt: skip
DEFAULT_WATCH: tuple[Watch, ...] = (
    watch("AuthorizeSecurityGroupIngress", "world_open"),
    *(watch(name) for name in IAM_CHANGES),
    watch("ConsoleLogin", "root", Severity.CRITICAL),
    watch("ConsoleLogin", "no_mfa"),
    watch("StopLogging", severity=Severity.CRITICAL),
    watch("DeleteTrail", severity=Severity.CRITICAL),
    watch("DisableKey"),
    watch("ScheduleKeyDeletion", severity=Severity.CRITICAL),
    watch("PutBucketAcl", "public"),
    watch("PutBucketPolicy", "public"),
    watch("PutBucketPublicAccessBlock", "public"),
    watch("DeleteBucketPublicAccessBlock"),
)


def watch_list_from_config(value: object) -> tuple[Watch, ...]:
    """Return the watch list of the YAML ``cloudtrail:`` value; raise ValueError naming the fault.

    ``cloudtrail: {defaults: true, watch: [{event: Name, when: always|world_open|root|
    no_mfa|public, severity: high, source: iam.amazonaws.com}]}``; ``defaults``
    (true unless false) keeps ``DEFAULT_WATCH`` before the listed entries.
    """
    if value is None:
        return DEFAULT_WATCH
    if not isinstance(value, Mapping):
        raise ValueError("cloudtrail: must be a mapping with 'watch' and 'defaults'")
    _reject_unknown(value, "cloudtrail", ("defaults", "watch"))
    defaults = value.get("defaults", True)
    if not isinstance(defaults, bool):
        raise ValueError("cloudtrail.defaults: must be true or false")
    entries = value.get("watch", [])
    if not isinstance(entries, list):
        raise ValueError("cloudtrail.watch: must be a list")
    listed = tuple(watch_entry(entry, f"cloudtrail.watch[{i}]") for i, entry in enumerate(entries))
    return (DEFAULT_WATCH if defaults else ()) + listed


def _reject_unknown(value: Mapping, where: str, known: tuple[str, ...]) -> None:
    unknown = sorted(set(map(str, value)) - set(known))
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(
            f"{where}.{unknown[0]}: unknown key; {hint}expected one of {', '.join(known)}"
        )


def watch_entry(entry: object, where: str) -> Watch:
    """Return one watch entry; raise ValueError naming ``where`` and the bad field."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: must be a mapping with 'event'")
    _reject_unknown(entry, where, ("event", "when", "severity", "source"))
    name = entry.get("event")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}.event: must be a CloudTrail event name such as 'DeleteTrail'")
    when = entry.get("when", "always")
    if when not in CONDITIONS:
        raise ValueError(f"{where}.when: {when!r} is not one of {', '.join(CONDITIONS)}")
    severity = entry.get("severity", "high")
    if severity not in {s.value for s in Severity}:
        raise ValueError(f"{where}.severity: {severity!r} is not one of {', '.join(Severity)}")
    source = entry.get("source", "")
    if not isinstance(source, str):
        raise ValueError(f"{where}.source: must be an event source such as 'iam.amazonaws.com'")
    return Watch(name.strip(), str(when), Severity(severity), source.strip())


def parse(event: dict[str, Any], inbound: Inbound) -> list[Alert]:
    """Return the alert for a watched API call, or the ignored alert for any other call."""
    env = envelope(event, inbound)
    detail = env.detail
    name = text(detail, "eventName", limit=120)
    if not name:
        raise ValueError("CloudTrail event without eventName")
    if text(detail, "errorCode", limit=100):
        return [ignored_alert(env, f"{name} failed: not a change")]
    matched = match(detail, name, inbound.sources.get("cloudtrail", DEFAULT_WATCH))
    if matched is None:
        return [ignored_alert(env, f"{name} is not on the CloudTrail watch list")]
    return [watched_alert(env, name, matched)]


def match(detail: Any, name: str, watches: Sequence[Watch]) -> Watch | None:
    """Return the first watch entry matching the call, or None."""
    source = text(detail, "eventSource", limit=120)
    for entry in watches:
        if entry.event_name != name or (entry.event_source and entry.event_source != source):
            continue
        if CONDITIONS[entry.condition](detail):
            return entry
    return None


def watched_alert(env: Envelope, name: str, entry: Watch) -> Alert:
    """Return the firing alert for a watched call, naming the principal and source IP."""
    detail = env.detail
    principal = principal_of(detail)
    ip = text(detail, "sourceIPAddress", limit=100)
    agent = text(detail, "userAgent", limit=200)
    summary = f"{name} by {principal or 'unknown principal'} from {ip or 'unknown IP'}"
    if agent:
        summary += f" ({agent})"
    params = text(detail, "requestParameters", limit=1000)
    return make_alert(
        env,
        identity=(name, principal),
        account=text(detail, "recipientAccountId", limit=20) or env.account,
        region=text(detail, "awsRegion", limit=40) or env.region,
        status=AlertStatus.FIRING,
        severity=entry.severity,
        title=f"CloudTrail: {name} ({entry.condition}) by {principal or 'unknown'}",
        summary=summary + (f"; request {params}" if params else ""),
        resource=resource_of(detail),
        labels={
            "event_name": name,
            "event_source": text(detail, "eventSource", limit=120),
            "principal": principal,
            "source_ip": ip,
            "watch": entry.condition,
        },
    )


def principal_of(detail: Any) -> str:
    """Return who made the call: the identity ARN, else its type and user name."""
    return text(detail, "userIdentity", "arn", limit=300) or " ".join(
        filter(
            None,
            (
                text(detail, "userIdentity", "type", limit=40),
                text(detail, "userIdentity", "userName", limit=100),
            ),
        )
    )


def resource_of(detail: Any) -> str:
    """Return the call's target: a group id, bucket, key, trail, user or policy, if named."""
    for key in ("groupId", "bucketName", "keyId", "name", "userName", "policyArn", "roleName"):
        value = text(detail, "requestParameters", key, limit=300)
        if value:
            return value
    return ""


def strings(value: object, depth: int = 0) -> list[str]:
    """Return every string inside a JSON value (bounded depth), for condition checks."""
    if isinstance(value, str):
        return [value]
    if depth > 12:
        return []
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v, depth + 1)]
    if isinstance(value, list):
        return [s for v in value[:500] for s in strings(v, depth + 1)]
    return []
