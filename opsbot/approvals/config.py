"""The ``approvals:`` section of the YAML file as an ``ApprovalPolicy`` (checked on load).

```yaml
approvals:
  channel: "#ops-approvals"     # the approvers' channel (else runbooks.approvals_channel,
                                # else OPSBOT_SLACK_CHANNEL)
  expires_after: 30m            # runbook requests; CodePipeline's own expiry is kept
  environments: {prod: other, nonprod: one, dev: none, sandbox: none}
  people: {"jane@example.com": U0JANE}   # AWS principal name -> Slack user id
```
"""

from __future__ import annotations

from typing import Any

from opsbot.core.approvals import DEFAULT_TTL, ApprovalPolicy
from opsbot.core.durations import parse_duration
from opsbot.core.policy import Policy


def approval_policy(policy: Policy) -> ApprovalPolicy:
    """Return the approval policy of the YAML file (values were checked when it was loaded)."""
    data: dict[str, Any] = dict(policy.extra.get("approvals") or {})
    runbooks: dict[str, Any] = dict(policy.extra.get("runbooks") or {})
    channel = data.get("channel") or runbooks.get("approvals_channel")
    ttl = parse_duration(str(data["expires_after"])) if "expires_after" in data else DEFAULT_TTL
    levels = {str(k): str(v) for k, v in (data.get("environments") or {}).items()}
    people = {str(k): str(v) for k, v in (data.get("people") or {}).items()}
    return ApprovalPolicy(
        channel=str(channel) if channel else None, ttl=ttl, levels=levels, people=people
    )
