"""CodePipeline manual approvals: the AWS adapter, the request intake job and the result sender.

A pipeline's approval reaches opsbot as an alert (``handlers.codepipeline``:
the SNS notification or the Approval action's EventBridge event) through the
normal intake, so it is an incident with its card and ticket. The intake job
reads the new CodePipeline alerts (a cursor in ``job_cursors``), asks
``GetPipelineState`` for the approval's token and execution (the EventBridge
form has no token) and ``GetPipelineExecution`` for who started it, and opens
an approval request in the pipeline's environment (from the account map: a
prod pipeline needs someone other than the person who started it). An
approval action that ended (SUCCEEDED, FAILED, ...) before anyone decided here
was decided in the console: its request is closed.

A decision queues one outbox row of target ``codepipeline``;
``CodePipelineSync`` calls ``PutApprovalResult`` in the pipeline's account
(the account's role, assumed with STS as the SSM runbooks do) with a summary
naming the approver. ``InvalidApprovalTokenException`` and
``ApprovalAlreadyCompletedException`` mean the token expired or the approval
was decided in the console: the request is closed and says so.

AWS facts: the CodePipeline API reference (PutApprovalResult: ``result``
``{summary (0-512), status Approved|Rejected}``, ``token``; GetPipelineState:
``stageStates[].actionStates[].latestExecution.token``; GetPipelineExecution:
``pipelineExecution.trigger.triggerDetail``), as in botocore's service model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsbot.approvals import service
from opsbot.approvals.config import approval_policy
from opsbot.audit import ACTOR
from opsbot.aws.sessions import CLIENT_CONFIG, account_session
from opsbot.core import approvals as core
from opsbot.core.accounts import AccountMap
from opsbot.db.models import AlertRow, Approval, Delivery, JobCursor
from opsbot.db.session import transaction
from opsbot.jobs import run_singleton
from opsbot.outbox.ports import OutboxItem, PermanentFailure, RetryLater, Sent
from opsbot.runtime import Runtime

log = logging.getLogger(__name__)

CURSOR = "codepipeline_approvals"
BATCH = 50
# An ingest transaction is short (statement timeouts): alerts older than this are all committed,
# so the cursor may pass the other sources' alerts up to there and not scan them again.
SETTLE = timedelta(minutes=5)
DEFAULT_EXPIRY = timedelta(days=7)  # a manual approval action times out after seven days
SUMMARY_LIMIT = 512
GONE_CODES = {
    "InvalidApprovalTokenException": "the approval token is no longer valid (expired or replaced)",
    "ApprovalAlreadyCompletedException": "the approval was already decided in CodePipeline",
    "ActionNotFoundException": "the approval action no longer exists",
    "StageNotFoundException": "the approval's stage no longer exists",
    "PipelineNotFoundException": "the pipeline no longer exists",
}
THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})
VERDICT_STATUS = {"approved": "Approved", "denied": "Rejected"}


class PipelineError(Exception):
    """A CodePipeline call did not happen; ``reason`` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PipelineGone(PipelineError):
    """The approval cannot be decided any more (expired, decided in the console, removed)."""


class PipelineRetry(PipelineError):
    """AWS throttled or could not be reached: try again later."""


class PipelineRejected(PipelineError):
    """AWS refused the call for another reason (access denied, a bad request)."""


@dataclass(frozen=True)
class Pending:
    """A pipeline's approval as GetPipelineState shows it."""

    token: str
    execution_id: str


class CodePipelineApprovals:
    """GetPipelineState, GetPipelineExecution and PutApprovalResult in the estate's accounts."""

    def __init__(
        self,
        accounts: AccountMap,
        *,
        session_factory: Callable[..., boto3.session.Session] = boto3.session.Session,
    ) -> None:
        self.accounts = accounts
        self.session_factory = session_factory

    def pending(self, where: tuple[str, str, str], names: tuple[str, str, str]) -> Pending | None:
        """Return the in-progress approval at (pipeline, stage, action), or None."""
        with self._client(where) as client:
            state = client.get_pipeline_state(name=names[0])
        return find_pending(state, names[1], names[2])

    def started_by(self, where: tuple[str, str, str], pipeline: str, execution_id: str) -> str:
        """Return who or what started a pipeline execution (its trigger detail)."""
        with self._client(where) as client:
            found = client.get_pipeline_execution(
                pipelineName=pipeline, pipelineExecutionId=execution_id
            )
        trigger = found.get("pipelineExecution", {}).get("trigger", {})
        return str(trigger.get("triggerDetail") or trigger.get("triggerType") or "")

    def put_result(self, where: tuple[str, str, str], request: Mapping[str, Any]) -> None:
        """Send an approval's decision (PutApprovalResult)."""
        with self._client(where) as client:
            client.put_approval_result(**request)

    @contextmanager
    def _client(self, where: tuple[str, str, str]) -> Iterator[Any]:
        account_id, region, requester = where
        try:
            session = account_session(
                self.accounts, account_id, region, requester, self.session_factory
            )
            client = session.client(
                "codepipeline", region_name=region or None, config=CLIENT_CONFIG
            )
            try:
                yield client
            finally:
                client.close()
        except ClientError as exc:
            raise classify(exc) from None
        except (ConnectionError, HTTPClientError) as exc:
            raise PipelineRetry(f"AWS could not be reached: {exc}") from None
        except BotoCoreError as exc:  # no credentials, a request boto3 refuses to send, ...
            raise PipelineRejected(f"{type(exc).__name__}: {exc}") from None


def classify(exc: ClientError) -> PipelineError:
    """Return the error for an AWS error: gone (close), throttled (retry) or rejected."""
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "Unknown"), error.get("Message", "")
    if code in GONE_CODES:
        return PipelineGone(f"{GONE_CODES[code]} ({code})")
    if code in THROTTLING_CODES:
        return PipelineRetry(f"{exc.operation_name} throttled by AWS ({code})")
    return PipelineRejected(f"{exc.operation_name} refused by AWS: {code}: {message}".rstrip(": "))


def find_pending(state: Mapping[str, Any], stage: str, action: str) -> Pending | None:
    """Return the in-progress approval of an action in a GetPipelineState answer, or None."""
    for stage_state in state.get("stageStates") or []:
        if stage_state.get("stageName") != stage:
            continue
        execution = (stage_state.get("latestExecution") or {}).get("pipelineExecutionId", "")
        for action_state in stage_state.get("actionStates") or []:
            latest = action_state.get("latestExecution") or {}
            named = action_state.get("actionName") == action
            if named and latest.get("token") and latest.get("status") == "InProgress":
                return Pending(str(latest["token"]), str(execution))
    return None


def result_request(row: Approval) -> dict[str, Any]:
    """Return the PutApprovalResult arguments for a decided request."""
    verb = "Approved" if row.state == "approved" else "Rejected"
    summary = f"{verb} by {row.decider} in opsbot (approval A{row.id})"
    if row.reason:
        summary += f": {row.reason}"
    details = row.details
    return {
        "pipelineName": details["pipeline"],
        "stageName": details["stage"],
        "actionName": details["action"],
        "result": {"summary": summary[:SUMMARY_LIMIT], "status": VERDICT_STATUS[row.state]},
        "token": details["token"],
    }


def request_key(account_id: str, region: str, names: tuple[str, ...], token: str) -> str:
    """Return the key of a pipeline approval request: one per token."""
    return ":".join(("codepipeline", account_id, region, *names, token))


class CodePipelineSync:
    """Delivers the ``codepipeline`` outbox rows: one PutApprovalResult per decision."""

    target = "codepipeline"

    def __init__(self, rt: Runtime, pipelines: CodePipelineApprovals) -> None:
        self.rt = rt
        self.pipelines = pipelines

    def send(self, item: OutboxItem) -> Sent:
        """Send a decision to CodePipeline; a gone token closes the request instead."""
        approval_id = int(item.payload.get("approval_id", 0))
        with transaction(self.rt.sessions) as session:
            row = session.get(Approval, approval_id)
            if row is None:
                raise PermanentFailure(f"outbox row {item.id} names no approval")
            session.expunge(row)
        if row.state not in VERDICT_STATUS or row.details.get("result_sent_at"):
            return Sent()  # closed meanwhile, or sent before a lease expired
        where = (row.account_id, row.region, row.decider or ACTOR)
        try:
            self.pipelines.put_result(where, result_request(row))
        except PipelineGone as exc:
            gone = exc.reason
            self._write(approval_id, lambda s, r: service.result_refused(s, r, gone, _now(self.rt)))
            return Sent()
        except PipelineRetry as exc:
            raise RetryLater(exc.reason) from None
        except PipelineRejected as exc:
            why = f"CodePipeline refused the decision: {exc.reason}"
            self._write(approval_id, lambda s, r: service.result_refused(s, r, why, _now(self.rt)))
            raise PermanentFailure(exc.reason) from None
        self._write(approval_id, lambda s, r: service.result_sent(s, r, _now(self.rt)))
        return Sent()

    def _write(self, approval_id: int, work: Callable[[Session, Approval], None]) -> None:
        with transaction(self.rt.sessions) as session:
            row = session.get(Approval, approval_id, with_for_update=True)
            if row is not None:
                work(session, row)


def _now(rt: Runtime) -> datetime:
    return rt.clock()


@dataclass(frozen=True)
class Seen:
    """One CodePipeline approval alert read by the intake job."""

    alert_id: int
    incident_id: int | None
    account_id: str
    region: str
    labels: Mapping[str, str]
    document: Mapping[str, Any]
    pending: bool

    @property
    def names(self) -> tuple[str, str, str]:
        return (self.labels["pipeline"], self.labels["stage"], self.labels["action"])


class ApprovalIntake:
    """Turns new CodePipeline approval alerts into approval requests (a scheduled job)."""

    def __init__(self, rt: Runtime, pipelines: CodePipelineApprovals) -> None:
        self.rt = rt
        self.pipelines = pipelines

    def run_once(self) -> int:
        """Read the alerts after the cursor; open or close their requests; return how many."""
        seen: list[Seen] = []
        run_singleton(self.rt, CURSOR, lambda s, now: self._read(s, seen))
        done = 0
        for item in seen:
            try:
                ask = self._ask(item) if item.pending else None
            except PipelineRetry as exc:
                log.info("CodePipeline approval of alert %d: %s; later", item.alert_id, exc.reason)
                break
            with transaction(self.rt.sessions) as session:
                now = self.rt.clock()
                if item.pending and ask is not None:
                    service.open_request(session, ask, now)
                elif not item.pending:
                    close_ended(session, item, now)
                _advance(session, item.alert_id, now)
            done += 1
        return done

    def _read(self, session: Session, seen: list[Seen]) -> int:
        cursor = session.get(JobCursor, CURSOR)
        start = cursor.position if cursor else 0
        rows = session.execute(
            select(AlertRow, Delivery.body)
            .join(Delivery, Delivery.id == AlertRow.delivery_id)
            .where(AlertRow.id > start, AlertRow.source == "aws.codepipeline")
            .order_by(AlertRow.id)
            .limit(BATCH)
        ).all()
        for alert, body in rows:
            labels = dict(alert.labels or {})
            if labels.get("approval") not in ("pending", "ended") or not labels.get("pipeline"):
                continue
            seen.append(Seen(alert.id, alert.incident_id, alert.account_id, alert.region,
                             labels, _document(body), labels["approval"] == "pending"))  # fmt: skip
        if not seen:  # nothing to do: move past what was read, and past settled other alerts
            now = self.rt.clock()
            ends = [rows[-1][0].id] if rows else []
            if len(rows) < BATCH:
                ends.append(_settled(session, start, now))
            if max(ends, default=0) > start:
                _advance(session, max(ends), now)
        return len(seen)

    def _ask(self, item: Seen) -> service.Ask | None:
        names, labels = item.names, item.labels
        token, execution = labels.get("token", ""), labels.get("execution_id", "")
        where = (item.account_id, item.region, ACTOR)
        try:
            found = self.pipelines.pending(where, names)
        except PipelineRejected as exc:
            log.warning("GetPipelineState for %s refused: %s", names[0], exc.reason)
            found = None
        except PipelineGone:
            found = None
        if found is not None:
            token, execution = token or found.token, execution or found.execution_id
        if not token:
            log.warning("approval at %s has no pending token; no request", "/".join(names))
            return None
        policy = approval_policy(self.rt.policy)
        environment = self.rt.policy.accounts.environment_of(item.account_id)
        requester = self._requester(where, names[0], execution, policy)
        return service.Ask(
            kind="codepipeline",
            key=request_key(item.account_id, item.region, names, token),
            what=_what(names, item.document),
            requester=requester,
            level=core.level_for(policy, environment),
            environment=environment,
            expires_at=_expiry(labels, self.rt.clock()),
            account_id=item.account_id,
            region=item.region,
            incident_id=item.incident_id,
            channel=policy.channel,
            details=_details(names, token, execution, item),
        )

    def _requester(
        self, where: tuple[str, str, str], pipeline: str, execution: str, policy: Any
    ) -> str:
        if not execution:
            return f"CodePipeline {pipeline}"
        try:
            started = self.pipelines.started_by(where, pipeline, execution)
        except (PipelineRejected, PipelineGone) as exc:
            log.warning("GetPipelineExecution for %s refused: %s", pipeline, exc.reason)
            return f"CodePipeline {pipeline}"
        return core.requester_for(started, policy.people) if started else f"CodePipeline {pipeline}"


def close_ended(session: Session, item: Seen, now: datetime) -> int:
    """Close the pending requests of an approval action that ended outside opsbot."""
    state = item.labels.get("state", "ended")
    rows = session.execute(
        select(Approval)
        .where(Approval.kind == "codepipeline", Approval.state == "pending")
        .with_for_update()
    ).scalars()
    closed = 0
    for row in list(rows):
        d = row.details
        same = (row.account_id, row.region, d.get("pipeline"), d.get("stage"), d.get("action"))
        if same == (item.account_id, item.region, *item.names):
            why = f"decided in the CodePipeline console (action {state})"
            closed += service.close(session, row, "closed", why, now)
    return closed


def _settled(session: Session, start: int, now: datetime) -> int:
    """Return the newest alert id older than SETTLE (no transaction still writes below it)."""
    newest = session.execute(
        select(func.max(AlertRow.id)).where(
            AlertRow.id > start, AlertRow.received_at < now - SETTLE
        )
    ).scalar()
    return int(newest or 0)


def _advance(session: Session, alert_id: int, now: datetime) -> None:
    cursor = session.get(JobCursor, CURSOR, with_for_update=True)
    if cursor is None:
        session.add(JobCursor(name=CURSOR, position=alert_id, updated_at=now))
    elif cursor.position < alert_id:
        cursor.position, cursor.updated_at = alert_id, now
    session.flush()


def _document(body: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _what(names: tuple[str, str, str], document: Mapping[str, Any]) -> str:
    pipeline, stage, action = names
    return f"Let pipeline {pipeline} continue past {stage}/{action}"


def _details(names: tuple[str, str, str], token: str, execution: str, item: Seen) -> dict[str, Any]:
    approval = item.document.get("approval")
    approval = approval if isinstance(approval, dict) else {}
    region = item.region
    console = (
        f"https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/"
        f"{names[0]}/view?region={region}"
    )
    return {
        "pipeline": names[0], "stage": names[1], "action": names[2], "token": token,
        "execution_id": execution,
        "review_link": _url(approval.get("approvalReviewLink")) or console,
        "console_link": _url(item.document.get("consoleLink")) or console,
        "external_link": _url(approval.get("externalEntityLink")),
        "custom_data": str(approval.get("customData") or "")[:500],
    }  # fmt: skip


def _url(value: Any) -> str:
    text = str(value or "")
    return text[:2000] if text.startswith(("https://", "http://")) else ""


def _expiry(labels: Mapping[str, str], now: datetime) -> datetime:
    given = labels.get("expires", "")
    try:
        moment = datetime.fromisoformat(given) if given else None
    except ValueError:
        moment = None
    return moment if moment is not None and moment.tzinfo else now + DEFAULT_EXPIRY


def sender(rt: Runtime) -> CodePipelineSync:
    """Return the outbox sender for CodePipeline decisions."""
    return CodePipelineSync(rt, CodePipelineApprovals(rt.policy.accounts))
