"""A stand-in for AWS Systems Manager that boto3 talks to over HTTP.

Wire protocol (AWS JSON 1.1): ``POST /`` with ``X-Amz-Target: AmazonSSM.<Operation>``
and ``Content-Type: application/x-amz-json-1.1``; errors are HTTP 400 with
``{"__type": "<Code>", "message": ...}``; timestamps are epoch seconds.
Request shapes (required members, lengths, ranges, patterns, enums) are
checked against the SSM service model that ships with botocore, which is
AWS's published API definition; a bad request gets ``ValidationException``.

Behaviour follows the SSM API reference (SendCommand, ListCommands,
ListCommandInvocations, GetCommandInvocation, CancelCommand,
StartAutomationExecution, GetAutomationExecution, StopAutomationExecution,
DescribeInstancePatchStates, DescribeInstanceInformation): command and
invocation statuses Pending → InProgress → Success | Failed | TimedOut,
Cancelled after CancelCommand; unknown instances → InvalidInstanceId;
unknown ids → InvalidCommandId / InvocationDoesNotExist /
AutomationExecutionNotFoundException. Progress is scripted per instance or
per automation document, and advances one step per status read.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import botocore.session
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

MODEL = botocore.session.get_session().get_service_model("ssm")
TERMINAL = ("Success", "Failed", "TimedOut", "Cancelled")


class SsmFault(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Script:
    """How a target behaves: statuses in order (the last one sticks) and its output."""

    statuses: tuple[str, ...] = ("Pending", "InProgress", "Success")
    stdout: str = "ok"
    stderr: str = ""
    failure: str = ""


@dataclass
class Instance:
    tags: dict[str, str] = field(default_factory=dict)
    script: Script = field(default_factory=Script)
    installed: int = 20
    missing: int = 3
    failed: int = 0
    operation: str = "Scan"
    patched_at: float | None = None


@dataclass
class Invocation:
    instance_id: str
    script: Script
    step: int = 0
    cancelled: bool = False

    @property
    def status(self) -> str:
        if self.cancelled:
            return "Cancelled"
        return self.script.statuses[min(self.step, len(self.script.statuses) - 1)]


@dataclass
class Command:
    id: str
    request: dict[str, Any]
    invocations: list[Invocation]
    requested: float

    @property
    def status(self) -> str:
        statuses = [i.status for i in self.invocations]
        if not statuses:
            return "Success"
        for status in ("Pending", "InProgress", "Cancelled", "TimedOut", "Failed"):
            if status in statuses:
                return status
        return "Success"


class FakeSsm:
    """The state of the stand-in: instances, commands, executions, scripted behaviour."""

    def __init__(self) -> None:
        self.instances: dict[str, Instance] = {}
        self.commands: dict[str, Command] = {}
        self.executions: dict[str, dict[str, Any]] = {}
        self.automation_scripts: dict[str, Script] = {}
        self.tokens: dict[str, str] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.throttle: dict[str, int] = {}
        self.deny: set[str] = set()
        self.lock = threading.Lock()

    def add_instance(self, instance_id: str, script: Script | None = None, **tags: str) -> None:
        self.instances[instance_id] = Instance(tags=tags, script=script or Script())

    def calls(self, operation: str) -> list[dict[str, Any]]:
        return [body for op, body in self.requests if op == operation]

    def handle(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.requests.append((operation, body))
            if self.throttle.get(operation, 0) > 0:
                self.throttle[operation] -= 1
                raise SsmFault("ThrottlingException", "Rate exceeded")
            if operation in self.deny:
                raise SsmFault(
                    "AccessDeniedException",
                    f"User is not authorized to perform: ssm:{operation}",
                )
            validate(operation, body)
            return getattr(self, f"op_{_snake(operation)}")(body)

    # Run Command ---------------------------------------------------------

    def op_send_command(self, body: dict[str, Any]) -> dict[str, Any]:
        if "InstanceIds" in body and "Targets" in body:
            raise SsmFault("InvalidParameters", "Specify InstanceIds or Targets, not both.")
        ids = body.get("InstanceIds") or self._by_targets(body.get("Targets", []))
        for instance_id in ids:
            if instance_id not in self.instances:
                raise SsmFault("InvalidInstanceId", f"Instance {instance_id} is not managed.")
        command = Command(
            str(uuid.uuid4()),
            body,
            [Invocation(i, self.instances[i].script) for i in ids],
            _now(),
        )
        self.commands[command.id] = command
        for inv in command.invocations:
            if inv.status in TERMINAL:  # scripted to finish at once
                self._patched(command, inv)
        return {"Command": self._command_json(command)}

    def _by_targets(self, targets: list[dict[str, Any]]) -> list[str]:
        found = []
        for instance_id, instance in self.instances.items():
            if all(_tag_match(instance, t["Key"], t["Values"]) for t in targets):
                found.append(instance_id)
        return found

    def op_list_commands(self, body: dict[str, Any]) -> dict[str, Any]:
        commands = [self._command(body["CommandId"])] if "CommandId" in body else []
        for command in commands:
            self._tick(command)
        return {"Commands": [self._command_json(c) for c in commands]}

    def op_list_command_invocations(self, body: dict[str, Any]) -> dict[str, Any]:
        command = self._command(body["CommandId"])
        out = []
        for inv in command.invocations:
            item: dict[str, Any] = {
                "CommandId": command.id,
                "InstanceId": inv.instance_id,
                "DocumentName": command.request["DocumentName"],
                "Status": inv.status,
                "StatusDetails": inv.status,
                "RequestedDateTime": command.requested,
            }
            if body.get("Details"):
                item["CommandPlugins"] = [self._plugin(inv)]
            out.append(item)
        return {"CommandInvocations": out}

    def op_get_command_invocation(self, body: dict[str, Any]) -> dict[str, Any]:
        command = self._command(body["CommandId"])
        inv = next((i for i in command.invocations if i.instance_id == body["InstanceId"]), None)
        if inv is None:
            raise SsmFault("InvocationDoesNotExist", "The invocation does not exist.")
        done = inv.status in TERMINAL
        return {
            "CommandId": command.id,
            "InstanceId": inv.instance_id,
            "DocumentName": command.request["DocumentName"],
            "Status": inv.status,
            "StatusDetails": inv.status,
            "ResponseCode": (0 if inv.status == "Success" else 1) if done else -1,
            "StandardOutputContent": inv.script.stdout if done else "",
            "StandardErrorContent": inv.script.stderr if done else "",
        }

    def op_cancel_command(self, body: dict[str, Any]) -> dict[str, Any]:
        command = self._command(body["CommandId"])
        for inv in command.invocations:
            if inv.status not in TERMINAL:
                inv.cancelled = True
        return {}

    def _command(self, command_id: str) -> Command:
        if command_id not in self.commands:
            raise SsmFault("InvalidCommandId", f"Command {command_id} does not exist.")
        return self.commands[command_id]

    def _tick(self, command: Command) -> None:
        for inv in command.invocations:
            if inv.status not in TERMINAL:
                inv.step += 1
                if inv.status in TERMINAL:
                    self._patched(command, inv)

    def _patched(self, command: Command, inv: Invocation) -> None:
        if command.request["DocumentName"] != "AWS-RunPatchBaseline":
            return
        instance = self.instances[inv.instance_id]
        operation = command.request.get("Parameters", {}).get("Operation", ["Scan"])[0]
        instance.operation, instance.patched_at = operation, _now()
        if operation == "Install" and inv.status == "Success":
            instance.installed, instance.missing = instance.installed + instance.missing, 0
        elif operation == "Install":
            instance.failed = instance.missing

    def _plugin(self, inv: Invocation) -> dict[str, Any]:
        return {"Name": "aws:runShellScript", "Status": inv.status, "Output": inv.script.stdout}

    def _command_json(self, command: Command) -> dict[str, Any]:
        request = command.request
        invs = command.invocations
        return {
            "CommandId": command.id,
            "DocumentName": request["DocumentName"],
            "Comment": request.get("Comment", ""),
            "Parameters": request.get("Parameters", {}),
            "InstanceIds": request.get("InstanceIds", []),
            "Targets": request.get("Targets", []),
            "RequestedDateTime": command.requested,
            "Status": command.status,
            "StatusDetails": command.status,
            "MaxConcurrency": request.get("MaxConcurrency", "50"),
            "MaxErrors": request.get("MaxErrors", "0"),
            "TimeoutSeconds": request.get("TimeoutSeconds", 3600),
            "TargetCount": len(invs),
            "CompletedCount": sum(i.status in TERMINAL for i in invs),
            "ErrorCount": sum(i.status in ("Failed", "TimedOut") for i in invs),
        }

    # Automation -----------------------------------------------------------

    def op_start_automation_execution(self, body: dict[str, Any]) -> dict[str, Any]:
        token = body.get("ClientToken")
        if token and token in self.tokens:
            return {"AutomationExecutionId": self.tokens[token]}
        name = body["DocumentName"]
        if name not in self.automation_scripts:
            raise SsmFault("AutomationDefinitionNotFoundException", f"No document {name}.")
        for instance_id in body.get("Parameters", {}).get("InstanceId", []):
            if instance_id not in self.instances:
                raise SsmFault("InvalidAutomationExecutionParametersException", instance_id)
        execution_id = str(uuid.uuid4())
        self.executions[execution_id] = {"body": body, "step": 0, "stopped": False}
        if token:
            self.tokens[token] = execution_id
        return {"AutomationExecutionId": execution_id}

    def op_get_automation_execution(self, body: dict[str, Any]) -> dict[str, Any]:
        execution = self._execution(body["AutomationExecutionId"])
        script = self.automation_scripts[execution["body"]["DocumentName"]]
        status = self._automation_status(execution, script)
        if status not in TERMINAL:
            execution["step"] += 1
            status = self._automation_status(execution, script)
        found: dict[str, Any] = {
            "AutomationExecutionId": body["AutomationExecutionId"],
            "DocumentName": execution["body"]["DocumentName"],
            "AutomationExecutionStatus": status,
            "Parameters": execution["body"].get("Parameters", {}),
            "Outputs": {"stdout": [script.stdout]} if status == "Success" else {},
        }
        if status == "Failed":
            found["FailureMessage"] = script.failure
        return {"AutomationExecution": found}

    def op_stop_automation_execution(self, body: dict[str, Any]) -> dict[str, Any]:
        self._execution(body["AutomationExecutionId"])["stopped"] = True
        return {}

    def _execution(self, execution_id: str) -> dict[str, Any]:
        if execution_id not in self.executions:
            raise SsmFault("AutomationExecutionNotFoundException", execution_id)
        return self.executions[execution_id]

    def _automation_status(self, execution: dict[str, Any], script: Script) -> str:
        if execution["stopped"]:
            return "Cancelled"
        return script.statuses[min(execution["step"], len(script.statuses) - 1)]

    # Inventory and compliance -------------------------------------------

    def op_describe_instance_information(self, body: dict[str, Any]) -> dict[str, Any]:
        found = []
        for instance_id, instance in sorted(self.instances.items()):
            filters = body.get("Filters", [])
            if all(_tag_match(instance, f["Key"], f["Values"]) for f in filters):
                found.append({"InstanceId": instance_id, "PingStatus": "Online",
                              "PlatformType": "Linux", "ResourceType": "EC2Instance"})  # fmt: skip
        return {"InstanceInformationList": found}

    def op_describe_instance_patch_states(self, body: dict[str, Any]) -> dict[str, Any]:
        states = []
        for instance_id in body["InstanceIds"]:
            instance = self.instances.get(instance_id)
            if instance is None or instance.patched_at is None:
                continue
            states.append({
                "InstanceId": instance_id,
                "PatchGroup": instance.tags.get("PatchGroup", ""),
                "BaselineId": "pb-0123456789abcdef0",
                "InstalledCount": instance.installed,
                "MissingCount": instance.missing,
                "FailedCount": instance.failed,
                "NotApplicableCount": 0,
                "OperationStartTime": instance.patched_at,
                "OperationEndTime": instance.patched_at,
                "Operation": instance.operation,
            })  # fmt: skip
        return {"InstancePatchStates": states}


def _tag_match(instance: Instance, key: str, values: list[str]) -> bool:
    if key.startswith("tag:"):
        return instance.tags.get(key[4:]) in values
    if key == "InstanceIds":
        return False
    raise SsmFault("InvalidFilterKey", f"Unsupported filter key {key}")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _now() -> float:
    return datetime.now(UTC).timestamp()


def validate(operation: str, body: dict[str, Any]) -> None:
    """Check a request against the SSM service model; raise ValidationException."""
    shape = MODEL.operation_model(operation).input_shape
    problems: list[str] = []
    _check(shape, body, operation, problems)
    if problems:
        raise SsmFault("ValidationException", "; ".join(problems))


def _check(shape: Any, value: Any, where: str, problems: list[str]) -> None:
    meta = shape.metadata
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{where}: expected an object")
            return
        for name in shape.required_members:
            if name not in value:
                problems.append(f"{where}.{name}: required")
        for name, item in value.items():
            if name not in shape.members:
                problems.append(f"{where}.{name}: unknown member")
            else:
                _check(shape.members[name], item, f"{where}.{name}", problems)
    elif kind == "list":
        _length(meta, value, where, problems)
        for i, item in enumerate(value if isinstance(value, list) else []):
            _check(shape.member, item, f"{where}[{i}]", problems)
    elif kind == "map":
        _length(meta, value, where, problems)
        for key, item in (value if isinstance(value, dict) else {}).items():
            _check(shape.value, item, f"{where}.{key}", problems)
    elif kind == "string":
        _length(meta, value, where, problems)
        pattern = _python_pattern(meta.get("pattern"))
        if pattern is not None and not pattern.search(str(value)):
            problems.append(f"{where}: {value!r} does not match {meta['pattern']}")
        if "enum" in meta and value not in meta["enum"]:
            problems.append(f"{where}: {value!r} is not one of {meta['enum']}")
    elif kind in ("integer", "long") and (
        ("min" in meta and value < meta["min"]) or ("max" in meta and value > meta["max"])
    ):
        problems.append(f"{where}: {value} is out of range")


def _python_pattern(pattern: str | None) -> re.Pattern[str] | None:
    """Compile a model pattern; the few in Java syntax (``\\p{..}``) are not checked."""
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _length(meta: dict[str, Any], value: Any, where: str, problems: list[str]) -> None:
    size = len(value)
    if ("min" in meta and size < meta["min"]) or ("max" in meta and size > meta["max"]):
        problems.append(f"{where}: length {size} is out of range")


class SsmServer:
    """Serves a FakeSsm on 127.0.0.1 (a random port) in a thread."""

    def __init__(self, fake: FakeSsm) -> None:
        self.fake = fake
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> SsmServer:
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
        if request.method != "POST" or not target.startswith("AmazonSSM."):
            return _error(400, "UnknownOperationException", "expected X-Amz-Target AmazonSSM.*")
        if not ctype.startswith("application/x-amz-json-1.1"):
            return _error(400, "SerializationException", f"unexpected Content-Type {ctype}")
        if "Authorization" not in request.headers:
            return _error(400, "MissingAuthenticationTokenException", "request is not signed")
        operation = target.split(".", 1)[1]
        if not hasattr(self.fake, f"op_{_snake(operation)}"):
            return _error(400, "UnknownOperationException", operation)
        try:
            body = json.loads(request.get_data() or b"{}")
            result = self.fake.handle(operation, body)
        except SsmFault as fault:
            return _error(400, fault.code, fault.message)
        return Response(json.dumps(result), 200, content_type="application/x-amz-json-1.1")


def _error(status: int, code: str, message: str) -> Response:
    body = json.dumps({"__type": code, "message": message})
    return Response(body, status, content_type="application/x-amz-json-1.1")
