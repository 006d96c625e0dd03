"""A stand-in for AWS CodePipeline's manual approvals that boto3 talks to over HTTP.

moto implements no PutApprovalResult. Wire protocol (AWS JSON 1.1, from
botocore's CodePipeline service model: ``targetPrefix`` CodePipeline_20150709):
``POST /`` with ``X-Amz-Target: CodePipeline_20150709.<Operation>`` and
``Content-Type: application/x-amz-json-1.1``; errors are HTTP 400 with
``{"__type": "<Code>", "message": ...}``; timestamps are epoch seconds.
Request shapes (required members, lengths, patterns, enums) are checked
against that model; a bad request gets ``ValidationException``.

Behaviour, from the CodePipeline API reference:

- GetPipelineState (``name``): ``stageStates[]`` with ``latestExecution``
  (``pipelineExecutionId``, ``status``) and ``actionStates[]`` whose
  ``latestExecution`` carries ``status`` (InProgress until decided, then
  Succeeded / Failed) and, for a pending approval, its ``token``; an unknown
  pipeline is ``PipelineNotFoundException``.
- GetPipelineExecution: ``pipelineExecution.trigger`` (``triggerType``,
  ``triggerDetail``); ``PipelineExecutionNotFoundException``.
- PutApprovalResult: unknown pipeline, stage or action →
  ``PipelineNotFoundException`` / ``StageNotFoundException`` /
  ``ActionNotFoundException``; a token that is not the action's current one,
  or that expired, → ``InvalidApprovalTokenException``; an approval already
  decided → ``ApprovalAlreadyCompletedException``; success answers
  ``approvedAt`` and the action Succeeded (Approved) or Failed (Rejected).

``decide_in_console`` decides an approval as the console would; ``expire``
makes its token invalid as the seven-day timeout does.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import botocore.session
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.fakes.ssm_api import _check

MODEL = botocore.session.get_session().get_service_model("codepipeline")
PREFIX = f"{MODEL.metadata['targetPrefix']}."


class Fault(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class ApprovalAction:
    token: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = "InProgress"
    summary: str = ""
    expired: bool = False
    decided_by: str = ""


@dataclass
class Pipeline:
    stages: dict[str, dict[str, ApprovalAction]]
    execution_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started_by: str = "arn:aws:iam::111122223333:user/jane"


class FakeCodePipeline:
    """The state of the stand-in: pipelines with approval actions, and the calls made."""

    def __init__(self) -> None:
        self.pipelines: dict[str, Pipeline] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.throttle: dict[str, int] = {}
        self.lock = threading.Lock()
        self.url = ""

    def add_approval(self, pipeline: str, stage: str, action: str, **kwargs: Any) -> ApprovalAction:
        approval = ApprovalAction()
        found = self.pipelines.setdefault(pipeline, Pipeline(stages={}, **kwargs))
        found.stages.setdefault(stage, {})[action] = approval
        return approval

    def decide_in_console(self, pipeline: str, stage: str, action: str, status: str) -> None:
        approval = self.pipelines[pipeline].stages[stage][action]
        approval.status, approval.decided_by = status, "console"

    def calls(self, operation: str) -> list[dict[str, Any]]:
        return [body for op, body in self.requests if op == operation]

    def handle(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.requests.append((operation, body))
            if self.throttle.get(operation, 0) > 0:
                self.throttle[operation] -= 1
                raise Fault("ThrottlingException", "Rate exceeded")
            validate(operation, body)
            handler = {
                "GetPipelineState": self.get_pipeline_state,
                "GetPipelineExecution": self.get_pipeline_execution,
                "PutApprovalResult": self.put_approval_result,
            }.get(operation)
            if handler is None:
                raise Fault("UnknownOperationException", operation)
            return handler(body)

    def _pipeline(self, name: str) -> Pipeline:
        if name not in self.pipelines:
            raise Fault("PipelineNotFoundException", f"Pipeline {name} not found")
        return self.pipelines[name]

    def get_pipeline_state(self, body: dict[str, Any]) -> dict[str, Any]:
        pipeline = self._pipeline(body["name"])
        stages = []
        for stage, actions in pipeline.stages.items():
            states = []
            for name, approval in actions.items():
                latest: dict[str, Any] = {
                    "status": approval.status,
                    "lastStatusChange": time.time(),
                }
                if approval.status == "InProgress" and not approval.expired:
                    latest["token"] = approval.token
                if approval.summary:
                    latest["summary"] = approval.summary
                states.append({"actionName": name, "latestExecution": latest})
            running = {"pipelineExecutionId": pipeline.execution_id, "status": "InProgress"}
            stages.append({"stageName": stage, "latestExecution": running, "actionStates": states})
        return {"pipelineName": body["name"], "pipelineVersion": 1, "stageStates": stages}

    def get_pipeline_execution(self, body: dict[str, Any]) -> dict[str, Any]:
        pipeline = self._pipeline(body["pipelineName"])
        if body["pipelineExecutionId"] != pipeline.execution_id:
            raise Fault("PipelineExecutionNotFoundException", "execution not found")
        trigger = {"triggerType": "StartPipelineExecution", "triggerDetail": pipeline.started_by}
        return {
            "pipelineExecution": {
                "pipelineName": body["pipelineName"],
                "pipelineExecutionId": pipeline.execution_id,
                "status": "InProgress",
                "trigger": trigger,
            }
        }

    def put_approval_result(self, body: dict[str, Any]) -> dict[str, Any]:
        pipeline = self._pipeline(body["pipelineName"])
        if body["stageName"] not in pipeline.stages:
            raise Fault("StageNotFoundException", f"Stage {body['stageName']} not found")
        approval = pipeline.stages[body["stageName"]].get(body["actionName"])
        if approval is None:
            raise Fault("ActionNotFoundException", f"Action {body['actionName']} not found")
        if approval.status != "InProgress":
            raise Fault("ApprovalAlreadyCompletedException", "The approval is already completed")
        if approval.expired or body["token"] != approval.token:
            raise Fault("InvalidApprovalTokenException", "The approval token is not valid")
        result = body["result"]
        approval.status = "Succeeded" if result["status"] == "Approved" else "Failed"
        approval.summary = result["summary"]
        return {"approvedAt": time.time()}


def validate(operation: str, body: dict[str, Any]) -> None:
    """Check a request against the CodePipeline service model; raise ValidationException."""
    problems: list[str] = []
    _check(MODEL.operation_model(operation).input_shape, body, operation, problems)
    if problems:
        raise Fault("ValidationException", "; ".join(problems))


class CodePipelineServer:
    """Serves a FakeCodePipeline on 127.0.0.1 (a random port) in a thread."""

    def __init__(self, fake: FakeCodePipeline) -> None:
        self.fake = fake
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        fake.url = self.url
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> CodePipelineServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    @Request.application
    def _app(self, request: Request) -> Response:
        target = request.headers.get("X-Amz-Target", "")
        ctype = request.headers.get("Content-Type", "")
        if request.method != "POST" or not target.startswith(PREFIX):
            return _error("UnknownOperationException", f"expected X-Amz-Target {PREFIX}*")
        if not ctype.startswith("application/x-amz-json-1.1"):
            return _error("SerializationException", f"unexpected Content-Type {ctype}")
        if "Authorization" not in request.headers:
            return _error("MissingAuthenticationTokenException", "request is not signed")
        try:
            body = json.loads(request.get_data() or b"{}")
            result = self.fake.handle(target[len(PREFIX) :], body)
        except Fault as fault:
            return _error(fault.code, fault.message)
        return Response(json.dumps(result), 200, content_type="application/x-amz-json-1.1")


def _error(code: str, message: str) -> Response:
    body = json.dumps({"__type": code, "message": message})
    return Response(body, 400, content_type="application/x-amz-json-1.1")
