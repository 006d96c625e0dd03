"""SsmRunbooks: AWS Systems Manager Run Command and Automation, per account, over boto3.

Each call assumes the account's role from the account map with STS (the
session name carries the requester) and talks to SSM in the run's region.
boto3's own retries are off: throttling and connection trouble raise
``SsmThrottled`` so the polling job retries with its own backoff on its own
clock; every other AWS error raises ``SsmRejected``, a clear run failure.
Request-building helpers are pure functions below the class.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

from opsbot.aws.sessions import CLIENT_CONFIG, account_session
from opsbot.aws.sessions import session_name as session_name  # where tests and callers find it
from opsbot.core.accounts import AccountMap

log = logging.getLogger(__name__)

THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
OUTPUT_INSTANCES = 5  # full output is fetched for at most this many targets


class SsmError(Exception):
    """An SSM call did not happen; ``reason`` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SsmThrottled(SsmError):
    """AWS asked us to slow down, or could not be reached: try again later."""


class SsmRejected(SsmError):
    """AWS refused the call (access denied, invalid instance, bad request): the run fails."""


@dataclass(frozen=True)
class Where:
    """Which account and region a call goes to, and on whose behalf."""

    account_id: str
    region: str
    requester: str


@dataclass(frozen=True)
class Progress:
    """Where a command or automation is: its SSM status, per-target statuses and output."""

    status: str
    targets: Mapping[str, str] = field(default_factory=dict)
    output: str = ""


class SsmRunbooks:
    """Sends and follows SSM commands and automations in the estate's accounts."""

    def __init__(
        self,
        accounts: AccountMap,
        *,
        session_factory: Callable[..., boto3.session.Session] = boto3.session.Session,
    ) -> None:
        self.accounts = accounts
        self.session_factory = session_factory

    def send_command(self, where: Where, request: Mapping[str, Any]) -> str:
        """Send a Run Command; return its CommandId."""
        with self._ssm(where) as ssm:
            return str(ssm.send_command(**request)["Command"]["CommandId"])

    def start_automation(self, where: Where, request: Mapping[str, Any]) -> str:
        """Start an Automation execution; return its AutomationExecutionId."""
        with self._ssm(where) as ssm:
            return str(ssm.start_automation_execution(**request)["AutomationExecutionId"])

    def command_progress(self, where: Where, command_id: str) -> Progress:
        """Return the status of a command, its targets' statuses and their output."""
        with self._ssm(where) as ssm:
            commands = ssm.list_commands(CommandId=command_id)["Commands"]
            if not commands:
                raise SsmRejected(f"SSM knows no command {command_id}")
            listed = ssm.list_command_invocations(CommandId=command_id, Details=True)
            invocations = listed["CommandInvocations"]
            targets = {i["InstanceId"]: i["Status"] for i in invocations}
            outputs = [
                _invocation_output(ssm.get_command_invocation(CommandId=command_id, InstanceId=i))
                for i in list(targets)[:OUTPUT_INSTANCES]
                if targets[i] not in ("Pending", "InProgress", "Delayed")
            ]
        return Progress(commands[0]["Status"], targets, "\n".join(o for o in outputs if o))

    def automation_progress(self, where: Where, execution_id: str) -> Progress:
        """Return the status of an Automation execution and its outputs or failure."""
        with self._ssm(where) as ssm:
            found = ssm.get_automation_execution(AutomationExecutionId=execution_id)
        execution = found["AutomationExecution"]
        return Progress(execution["AutomationExecutionStatus"], {}, _automation_output(execution))

    def cancel(self, where: Where, *, command_id: str | None, execution_id: str | None) -> None:
        """Cancel a command or stop an automation execution."""
        with self._ssm(where) as ssm:
            if command_id:
                ssm.cancel_command(CommandId=command_id)
            if execution_id:
                ssm.stop_automation_execution(AutomationExecutionId=execution_id, Type="Cancel")

    def managed_instances(self, where: Where, tags: Mapping[str, Sequence[str]]) -> list[str]:
        """Return the ids of the SSM-managed instances carrying all these tags."""
        filters = [{"Key": f"tag:{k}", "Values": list(v)} for k, v in tags.items()]
        with self._ssm(where) as ssm:
            pages = ssm.get_paginator("describe_instance_information")
            return [
                info["InstanceId"]
                for page in pages.paginate(Filters=filters, PaginationConfig={"PageSize": 50})
                for info in page["InstanceInformationList"]
            ]

    def patch_states(self, where: Where, instance_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Return the patch compliance of instances (DescribeInstancePatchStates)."""
        states: list[dict[str, Any]] = []
        with self._ssm(where) as ssm:
            for start in range(0, len(instance_ids), 50):
                chunk = list(instance_ids[start : start + 50])
                pages = ssm.get_paginator("describe_instance_patch_states")
                for page in pages.paginate(InstanceIds=chunk):
                    states += page["InstancePatchStates"]
        return states

    @contextmanager
    def _ssm(self, where: Where) -> Iterator[Any]:
        try:
            session = self._session(where)
            client = session.client("ssm", region_name=where.region or None, config=CLIENT_CONFIG)
            try:
                yield client
            finally:
                client.close()
        except ClientError as exc:
            raise classify(exc) from None
        except (ConnectionError, HTTPClientError) as exc:
            raise SsmThrottled(f"AWS could not be reached: {exc}") from None
        except BotoCoreError as exc:  # no credentials, a request boto3 refuses to send, ...
            raise SsmRejected(f"{type(exc).__name__}: {exc}") from None

    def _session(self, where: Where) -> boto3.session.Session:
        return account_session(
            self.accounts, where.account_id, where.region, where.requester, self.session_factory
        )


def classify(exc: ClientError) -> SsmError:
    """Return the opsbot error for an AWS error: throttled (retry) or rejected (fail)."""
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "Unknown"), error.get("Message", "")
    op = exc.operation_name
    if code in THROTTLING_CODES:
        return SsmThrottled(f"{op} throttled by AWS ({code})")
    return SsmRejected(f"{op} refused by AWS: {code}: {message}".rstrip(": "))


def command_request(
    *,
    document: str,
    parameters: Mapping[str, Sequence[str]],
    instance_ids: Sequence[str],
    tags: Mapping[str, Sequence[str]],
    max_concurrency: str,
    max_errors: str,
    timeout_seconds: int,
    comment: str,
) -> dict[str, Any]:
    """Return the SendCommand arguments: instance ids, or tag targets when there are none."""
    request: dict[str, Any] = {
        "DocumentName": document,
        "Parameters": {k: list(v) for k, v in parameters.items()},
        "MaxConcurrency": max_concurrency,
        "MaxErrors": max_errors,
        "TimeoutSeconds": max(30, min(timeout_seconds, 2_592_000)),
        "Comment": comment[:100],
    }
    if instance_ids:
        request["InstanceIds"] = list(instance_ids)
    else:
        request["Targets"] = [{"Key": f"tag:{k}", "Values": list(v)} for k, v in tags.items()]
    return request


def automation_request(
    *, document: str, parameters: Mapping[str, Sequence[str]], client_token: str
) -> dict[str, Any]:
    """Return the StartAutomationExecution arguments (the client token makes it idempotent)."""
    return {
        "DocumentName": document,
        "Parameters": {k: list(v) for k, v in parameters.items()},
        "ClientToken": client_token,
    }


def _invocation_output(found: Mapping[str, Any]) -> str:
    out = (found.get("StandardOutputContent") or "").strip()
    err = (found.get("StandardErrorContent") or "").strip()
    head = f"[{found.get('InstanceId')}] {found.get('Status')}"
    return "\n".join(part for part in (head, out, f"stderr: {err}" if err else "") if part)


def _automation_output(execution: Mapping[str, Any]) -> str:
    lines = [f"{k}: {', '.join(v)}" for k, v in (execution.get("Outputs") or {}).items()]
    if execution.get("FailureMessage"):
        lines.append(f"failure: {execution['FailureMessage']}")
    return "\n".join(lines)
