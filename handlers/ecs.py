"""Amazon ECS task and deployment state changes, as EventBridge delivers them.

Reads "ECS Task State Change" (``detail.lastStatus``, ``stoppedReason``,
``stopCode``, ``containers[].exitCode``, ``group``, ``clusterArn``) —
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_task_events.html —
and "ECS Deployment State Change" (``detail.eventName``, ``reason``,
``deploymentId``) —
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_service_deployment_events.html.

Identity: a failed task — cluster + task group ("service:web", so failures
are grouped per service; a standalone task's group is its family); a
deployment — ("deployment", the service ARN).

Severity: a failed task high; a failed deployment high, one rolled back
medium (the service is back on the old revision).

Resolve: SERVICE_DEPLOYMENT_COMPLETED resolves the deployment incident. A task
that stopped cleanly (every exit code 0 and no error reason), or any task
state other than STOPPED, is recorded without an incident; task incidents
are resolved by people.
"""

from __future__ import annotations

from typing import Any

from handlers.awsevents import Envelope, envelope, field, ignored_alert, make_alert, text
from handlers.base import Inbound, short_resource
from opsbot.core.alert import Alert, AlertStatus, Severity

TASK = "ECS Task State Change"
DEPLOYMENT = "ECS Deployment State Change"
ERROR_WORDS = ("error", "fail", "cannotpull", "outofmemory", "unable", "timeout", "timed out")
ERROR_STOP_CODES = frozenset({"TaskFailedToStart", "EssentialContainerExited"})


def parse(event: dict[str, Any], inbound: Inbound) -> list[Alert]:
    """Return the alert for an ECS task or deployment state change."""
    env = envelope(event, inbound)
    if env.detail_type == TASK:
        return [task_alert(env)]
    if env.detail_type == DEPLOYMENT:
        return [deployment_alert(env)]
    raise ValueError(f"not an ECS state change: {env.detail_type[:60]!r}")


def task_alert(env: Envelope) -> Alert:
    """Return the alert for a task that stopped with a failure, else the ignored alert."""
    detail = env.detail
    status = text(detail, "lastStatus", limit=40)
    reason = text(detail, "stoppedReason", limit=500)
    failed = failed_exit_codes(detail)
    if status != "STOPPED":
        return ignored_alert(env, f"task {status or 'in unknown state'}")
    if not failed and not error_reason(reason, text(detail, "stopCode", limit=60)):
        return ignored_alert(env, "task stopped cleanly")
    cluster = short_resource(text(detail, "clusterArn", limit=300)).removeprefix("cluster/")
    group = text(detail, "group", limit=300) or "task"
    codes = ", ".join(f"{name} exited {code}" for name, code in failed)
    return make_alert(
        env,
        identity=(cluster, group),
        status=AlertStatus.FIRING,
        severity=Severity.HIGH,
        title=f"ECS task stopped: {group} in {cluster}",
        summary="; ".join(filter(None, (reason, codes))),
        resource=f"{cluster}/{group}",
        labels={"cluster": cluster, "group": group, "stop_code": text(detail, "stopCode")},
    )


def failed_exit_codes(detail: Any) -> list[tuple[str, str]]:
    """Return (container, exit code) for every container that exited non-zero."""
    containers = field(detail, "containers")
    if not isinstance(containers, list):
        return []
    failed = []
    for container in containers[:50]:
        code = field(container, "exitCode")
        if isinstance(code, int) and not isinstance(code, bool) and code != 0:
            failed.append((text(container, "name", limit=100), str(code)))
    return failed


def error_reason(reason: str, stop_code: str) -> bool:
    """Whether the stop reason or code says the task failed rather than was stopped."""
    lowered = reason.lower()
    return stop_code == "TaskFailedToStart" or any(word in lowered for word in ERROR_WORDS)


def deployment_alert(env: Envelope) -> Alert:
    """Return the alert for a deployment: failed or rolled back fires, completed resolves."""
    detail = env.detail
    name = text(detail, "eventName", limit=80)
    reason = text(detail, "reason", limit=1000)
    service = env.resources[0] if env.resources else text(detail, "deploymentId", limit=200)
    if name == "SERVICE_DEPLOYMENT_COMPLETED":
        status, severity = AlertStatus.RESOLVED, Severity.HIGH
    elif name == "SERVICE_DEPLOYMENT_FAILED":
        rolled_back = "roll" in reason.lower()
        status = AlertStatus.FIRING
        severity = Severity.MEDIUM if rolled_back else Severity.HIGH
    else:
        return ignored_alert(env, f"deployment {name or 'event'}")
    return make_alert(
        env,
        identity=("deployment", service),
        status=status,
        severity=severity,
        title=f"ECS deployment {name.removeprefix('SERVICE_DEPLOYMENT_').lower()}: "
        f"{short_resource(service)}",
        summary=reason,
        resource=service,
        labels={"event_name": name, "deployment_id": text(detail, "deploymentId", limit=200)},
    )
