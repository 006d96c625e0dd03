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
"""

from __future__ import annotations

from typing import Any

from handlers.awsevents import envelope, ignored_alert, make_alert, text
from handlers.base import Inbound
from opsbot.core.alert import Alert, AlertStatus, Severity

EXECUTION = "CodePipeline Pipeline Execution State Change"
STATE_TO_STATUS = {"FAILED": AlertStatus.FIRING, "SUCCEEDED": AlertStatus.RESOLVED}


def parse(event: dict[str, Any], inbound: Inbound) -> list[Alert]:
    """Return the alert for a pipeline execution state change."""
    env = envelope(event, inbound)
    pipeline = text(env.detail, "pipeline", limit=200)
    if not pipeline:
        raise ValueError("CodePipeline event without a pipeline")
    state = text(env.detail, "state", limit=40).upper()
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
            console_url=f"https://{region}.console.aws.amazon.com/codesuite/codepipeline/"
            f"pipelines/{pipeline}/view?region={region}"
            if region
            else "",
        )
    ]
