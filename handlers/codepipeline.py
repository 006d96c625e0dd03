"""CodePipeline pipeline executions, as EventBridge delivers them.

Reads "CodePipeline Pipeline Execution State Change" events
(``detail.pipeline``, ``state``, ``execution-id``, ``version``) —
https://docs.aws.amazon.com/codepipeline/latest/userguide/detect-state-changes-cloudwatch-events.html.

Identity: the pipeline name in its account and region (every failed
execution of a pipeline is the same incident until it succeeds).

Severity: high for FAILED.

Resolve: SUCCEEDED resolves the pipeline's incident. STARTED, STOPPING,
STOPPED, SUPERSEDED, RESUMED, CANCELED and stage/action events are recorded
without an incident.

Manual approvals, in two forms:

- the approval action's SNS notification ("JSON data format for manual
  approval notifications",
  https://docs.aws.amazon.com/codepipeline/latest/userguide/approvals-json-format.html):
  ``region``, ``consoleLink`` and ``approval`` with ``pipelineName``,
  ``stageName``, ``actionName``, ``token``, ``expires``,
  ``externalEntityLink``, ``approvalReviewLink``, ``customData``. It names no
  account: the account is the one of the SNS topic that delivered it.
- "CodePipeline Action Execution State Change" for an action whose
  ``detail.type.category`` is ``Approval`` (no token: the approvals job asks
  ``GetPipelineState`` for it).

Identity: (pipeline, stage, action) in the account and region, with
``approval`` in front: one pending approval per action at a time (a newer
execution supersedes the older). Severity: medium. An approval notification
or a STARTED approval action is firing (label ``approval: pending``); the
approval action's SUCCEEDED, FAILED, ABANDONED or CANCELED resolves it
(``approval: ended``): decided, here or in the console. ``opsbot.approvals``
turns the firing alerts into approval requests.
"""

from __future__ import annotations

from typing import Any

from handlers.awsevents import Envelope, envelope, ignored_alert, make_alert, text
from handlers.base import Inbound, account_id, parse_arn, parse_time, region_code
from opsbot.core.alert import Alert, AlertStatus, Severity

EXECUTION = "CodePipeline Pipeline Execution State Change"
ACTION = "CodePipeline Action Execution State Change"
SOURCE = "aws.codepipeline"
STATE_TO_STATUS = {"FAILED": AlertStatus.FIRING, "SUCCEEDED": AlertStatus.RESOLVED}
APPROVAL_STATE_TO_STATUS = {
    "STARTED": AlertStatus.FIRING,
    "SUCCEEDED": AlertStatus.RESOLVED,
    "FAILED": AlertStatus.RESOLVED,
    "ABANDONED": AlertStatus.RESOLVED,
    "CANCELED": AlertStatus.RESOLVED,
}
NAME_LIMIT = 100  # pipeline, stage and action names: 1-100 of [A-Za-z0-9.@_-]


def parse(event: dict[str, Any], inbound: Inbound) -> list[Alert]:
    """Return the alert for a pipeline execution state change."""
    env = envelope(event, inbound)
    pipeline = text(env.detail, "pipeline", limit=200)
    if not pipeline:
        raise ValueError("CodePipeline event without a pipeline")
    state = text(env.detail, "state", limit=40).upper()
    if env.detail_type == ACTION and text(env.detail, "type", "category") == "Approval":
        return approval_event(env, pipeline, state)
    if env.detail_type != EXECUTION or state not in STATE_TO_STATUS:
        return [ignored_alert(env, f"{env.detail_type} {state or 'event'}")]
    execution = text(env.detail, "execution-id", limit=100)
    region = env.region
    return [
        make_alert(
            env,
            identity=(pipeline,),
            status=STATE_TO_STATUS[state],
            severity=Severity.HIGH,
            title=f"CodePipeline {pipeline} {state.lower()}",
            summary=f"execution {execution}" if execution else "",
            resource=pipeline,
            labels={"pipeline": pipeline, "execution_id": execution, "state": state},
            console_url=pipeline_url(region, pipeline),
        )
    ]


def approval_event(env: Envelope, pipeline: str, state: str) -> list[Alert]:
    """Return the approval alert of an Approval action's state change."""
    status = APPROVAL_STATE_TO_STATUS.get(state)
    stage = text(env.detail, "stage", limit=NAME_LIMIT)
    action = text(env.detail, "action", limit=NAME_LIMIT)
    if status is None or not (stage and action):
        return [ignored_alert(env, f"approval action {state or 'event'}")]
    execution = text(env.detail, "execution-id", limit=100)
    return [
        approval_alert(
            env,
            (pipeline, stage, action),
            status,
            execution=execution,
            state=state,
            console_url=pipeline_url(env.region, pipeline),
        )
    ]


def parse_notification(document: dict[str, Any], inbound: Inbound) -> list[Alert]:
    """Return the approval alert of a manual approval's SNS notification."""
    approval = document.get("approval")
    if not isinstance(approval, dict):
        raise ValueError("approval notification without an approval object")
    pipeline, stage, action = (
        text(approval, key, limit=NAME_LIMIT) for key in ("pipelineName", "stageName", "actionName")
    )
    names = (pipeline, stage, action)
    if not all(names):
        raise ValueError("approval notification without pipeline, stage or action")
    topic = parse_arn(inbound.topic_arn)
    region = region_code(text(document, "region", limit=40)) or topic.region
    env = Envelope(
        source=SOURCE,
        detail_type="CodePipeline Manual Approval Notification",
        account=account_id(topic.account),
        region=region,
        occurred_at=inbound.received_at,
        resources=(),
        detail=approval,
        raw=document,
    )
    expires = parse_time(text(approval, "expires", limit=40))
    return [
        approval_alert(
            env,
            names,
            AlertStatus.FIRING,
            token=text(approval, "token", limit=100),
            expires=expires.isoformat() if expires else "",
            state="NOTIFIED",
            console_url=text(document, "consoleLink", limit=2000),
        )
    ]


def approval_alert(
    env: Envelope,
    names: tuple[str, str, str],
    status: AlertStatus,
    *,
    state: str,
    console_url: str,
    execution: str = "",
    token: str = "",
    expires: str = "",
) -> Alert:
    """Return the alert of a manual approval at (pipeline, stage, action)."""
    pipeline, stage, action = names
    pending = status is AlertStatus.FIRING
    return make_alert(
        env,
        identity=("approval", *names),
        status=status,
        severity=Severity.MEDIUM,
        title=f"CodePipeline {pipeline}: approval {'needed' if pending else 'ended'} "
        f"at {stage}/{action}",
        summary=f"state {state}" + (f", execution {execution}" if execution else ""),
        resource=pipeline,
        labels={
            "approval": "pending" if pending else "ended",
            "pipeline": pipeline,
            "stage": stage,
            "action": action,
            "execution_id": execution,
            "token": token,
            "expires": expires,
            "state": state,
        },
        console_url=console_url,
    )


def pipeline_url(region: str, pipeline: str) -> str:
    """Return the console page of a pipeline, or "" without a region."""
    if not region:
        return ""
    return (
        f"https://{region}.console.aws.amazon.com/codesuite/codepipeline/"
        f"pipelines/{pipeline}/view?region={region}"
    )
