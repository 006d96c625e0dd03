"""EC2 instance state changes, as EventBridge delivers them.

Reads "EC2 Instance State-change Notification" events (``detail.instance-id``,
``detail.state``) —
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-instance-state-changes.html.

Which instances are watched: the event carries no tags, so the rule is the
account map plus a list. An instance is watched when its account's environment
(from the account map; an unmapped account counts as prod) is in
``watch_environments`` (default: prod), or its id is in ``watch_instances``.
Both come from the YAML key ``ec2:`` (``ec2_watch_from_config``; it comes with
each message as ``Inbound.sources["ec2"]``). To watch by tag, filter the
EventBridge rule on the instances you care about or list them. Events of
unwatched instances are recorded without an incident.

Identity: the instance id in its account and region.

Severity: terminated high, stopped medium (stopping and shutting-down are
transitions and are recorded without an incident).

Resolve: running resolves (the instance is back); pending is recorded.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from handlers.awsevents import envelope, ignored_alert, make_alert, text
from handlers.base import Inbound
from opsbot.core.accounts import AccountMap
from opsbot.core.alert import Alert, AlertStatus, Severity

STATE_RULES = {
    "terminated": (AlertStatus.FIRING, Severity.HIGH),
    "stopped": (AlertStatus.FIRING, Severity.MEDIUM),
    "running": (AlertStatus.RESOLVED, Severity.MEDIUM),
}


@dataclass(frozen=True)
class Ec2Watch:
    """Which instances are watched: by account environment, or by instance id."""

    environments: frozenset[str] = frozenset({"prod"})
    instances: frozenset[str] = frozenset()
    accounts: AccountMap = field(default_factory=AccountMap)

    def watches(self, account: str, instance: str) -> bool:
        """Whether state changes of this instance open incidents."""
        if instance in self.instances:
            return True
        return self.accounts.environment_of(account) in self.environments


DEFAULT_EC2_WATCH = Ec2Watch()


def ec2_watch_from_config(value: object, accounts: AccountMap) -> Ec2Watch:
    """Return the rule of the YAML ``ec2:`` value; raise ValueError naming the bad field."""
    if value is None:
        return Ec2Watch(accounts=accounts)
    if not isinstance(value, Mapping):
        raise ValueError("ec2: must be a mapping with watch_environments and watch_instances")
    known = ("watch_environments", "watch_instances")
    unknown = sorted(set(map(str, value)) - set(known))
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"ec2.{unknown[0]}: unknown key; {hint}expected one of {', '.join(known)}")
    lists = {}
    for key, default in (("watch_environments", ["prod"]), ("watch_instances", [])):
        items = value.get(key, default)
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError(f"ec2.{key}: must be a list of strings")
        lists[key] = frozenset(items)
    return Ec2Watch(lists["watch_environments"], lists["watch_instances"], accounts)


def parse(event: dict[str, Any], inbound: Inbound) -> list[Alert]:
    """Return the alert for an instance state change, if the instance is watched."""
    env = envelope(event, inbound)
    instance = text(env.detail, "instance-id", limit=100)
    state = text(env.detail, "state", limit=40).lower()
    if not instance:
        raise ValueError("EC2 state change without an instance id")
    if state not in STATE_RULES:
        return [ignored_alert(env, f"instance {state or 'in unknown state'}")]
    watch: Ec2Watch = inbound.sources.get("ec2", DEFAULT_EC2_WATCH)
    if not watch.watches(env.account, instance):
        return [ignored_alert(env, f"instance {instance} is not watched")]
    status, severity = STATE_RULES[state]
    region = env.region
    return [
        make_alert(
            env,
            identity=(instance,),
            status=status,
            severity=severity,
            title=f"EC2 instance {instance} {state}",
            summary=f"{instance} entered the {state} state",
            resource=instance,
            labels={"instance_id": instance, "state": state},
            console_url=f"https://{region}.console.aws.amazon.com/ec2/home?region={region}"
            f"#InstanceDetails:instanceId={instance}"
            if region
            else "",
        )
    ]
