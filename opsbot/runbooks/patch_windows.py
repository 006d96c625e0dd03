"""Patch windows: AWS-RunPatchBaseline on a cron, with notice, approval, silences and a report.

Configured under ``patch_windows:`` in the YAML file. A job looks every
minute (on one replica) at each window's next occurrence: ``notice`` before
it starts, the run is requested (approval per environment: in prod another
person must approve before the window opens, or nothing is installed); when
the window opens, the targeted instances' alarms are silenced until it
closes and the approved run is released to the runbook job; when the run
ends, a summary with the compliance SSM reports is posted to the window's
channel and kept on a Jira ticket: the report is an alert (source
``opsbot.patch_window``) through the incident service, so it becomes an
incident with its card and ticket under the routing rules; a clean window's
incident is resolved at once (the ticket stays as the record), one with
failures or missing reports stays open for someone to look at.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsbot.config.yamldoc import Document, KeyPath, document_for, keys, read_text
from opsbot.core import runbook_policy as rp
from opsbot.core.alert import Alert, AlertStatus, Severity, make_fingerprint
from opsbot.core.cron import parse_cron
from opsbot.core.durations import parse_duration
from opsbot.core.policy import Policy
from opsbot.core.slacktext import escape
from opsbot.db.models import RunbookRun
from opsbot.incidents import actions
from opsbot.incidents.service import DeliveryIn, record_delivery
from opsbot.runbooks import service
from opsbot.runbooks.catalogue import catalogue_of
from opsbot.runbooks.ssm import SsmError, Where
from opsbot.runtime import Runtime

log = logging.getLogger(__name__)

KEYS = (
    "name", "cron", "timezone", "duration", "notice", "account", "region", "environment",
    "targets", "operation", "reboot", "max_concurrency", "max_errors", "approval", "channel",
)  # fmt: skip
REQUIRED = ("name", "cron", "targets", "operation")
OPERATIONS = {"Scan": "patch-scan", "Install": "patch-install"}
ACTOR = "opsbot:patch-window"
REPORT_SOURCE = "opsbot.patch_window"


@dataclass(frozen=True)
class Window:
    """One configured patch window."""

    name: str
    cron: str
    timezone: str
    duration: timedelta
    notice: timedelta
    targets: Mapping[str, tuple[str, ...]]
    operation: str
    reboot: bool = True
    account: str = ""
    region: str = ""
    environment: str | None = None
    max_concurrency: str = "10%"
    max_errors: str = "5%"
    approval: str | None = None
    channel: str | None = None

    def trigger(self) -> BaseTrigger:
        """Return the APScheduler trigger of the window's start."""
        return cron_trigger(self.cron, self.timezone)

    def next_runs(self, now: datetime, count: int) -> list[datetime]:
        """Return the next ``count`` starts of the window after ``now``."""
        trigger, after = self.trigger(), now
        runs: list[datetime] = []
        while len(runs) < count:
            start = trigger.get_next_fire_time(None, after)
            if start is None:
                break
            runs.append(start)
            after = start + timedelta(seconds=1)
        return runs

    def occurrence(self, now: datetime) -> datetime | None:
        """Return the start of the occurrence that is announced or open at ``now``, if any."""
        start = self.trigger().get_next_fire_time(None, now - self.duration + timedelta(seconds=1))
        if start is None or start - self.notice > now:
            return None
        return start


def cron_trigger(expression: str, timezone: str = "UTC") -> BaseTrigger:
    """Return the trigger of a standard crontab expression; raise ValueError if it is invalid."""
    # Built from explicit fields: CronTrigger.from_crontab takes 0 as Monday and rejects 7.
    zone = ZoneInfo(timezone)
    found = [CronTrigger(**fields, timezone=zone) for fields in parse_cron(expression).triggers()]
    return found[0] if len(found) == 1 else OrTrigger(found)


def parse_windows(policy: Policy, text: str | None = None, source: str = "config") -> list[Window]:
    """Return the patch windows of the policy; raise ConfigError naming file, line, key, problem.

    Lines come from the policy's own YAML file; ``text`` (and its ``source``)
    is only needed for a policy that was not read from one.
    """
    doc = _document(policy, text, source)
    data = policy.extra.get("patch_windows", [])
    if not isinstance(data, list):
        doc.error(("patch_windows",), "expected a list of windows")
        doc.check()
    windows = [w for i, item in enumerate(data) if (w := _window(doc, policy, item, i))]
    names = [w.name for w in windows]
    for i, name in enumerate(names):
        if name in names[:i]:
            doc.error(("patch_windows", i, "name"), f"{name!r} is used by another window")
    doc.check()
    return windows


def _document(policy: Policy, text: str | None, source: str) -> Document:
    if text is None:
        return document_for(policy.extra, source)
    return read_text(text, source)[0].fresh()  # the policy loader reports the rest of the file


def _window(doc: Document, policy: Policy, item: Any, i: int) -> Window | None:
    path: KeyPath = ("patch_windows", i)
    if not isinstance(item, dict):
        doc.error(path, "expected a mapping")
        return None
    before = len(doc.found)
    keys(doc, item, path, KEYS, REQUIRED)
    fields: dict[str, Any] = {k: item[k] for k in ("name", "cron", "operation") if k in item}
    fields["timezone"] = zone = str(item.get("timezone", "UTC"))
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        doc.error((*path, "timezone"), f"{zone!r} is not an IANA time zone like Europe/Paris")
        zone = "UTC"
    try:
        cron_trigger(str(item.get("cron", "")), zone)
    except ValueError as exc:
        doc.error((*path, "cron"), f"not a crontab expression: {exc}")
    for key, default in (("duration", "3h"), ("notice", "1h")):
        try:
            fields[key] = parse_duration(str(item.get(key, default)))
        except ValueError as exc:
            doc.error((*path, key), str(exc))
    if item.get("operation") not in OPERATIONS:
        doc.error((*path, "operation"), f"{item.get('operation')!r} is not Scan or Install")
    targets = item.get("targets")
    if not isinstance(targets, dict) or not targets:
        doc.error((*path, "targets"), "expected a mapping of tag key to value(s), e.g. PatchGroup")
    else:
        fields["targets"] = {
            k: tuple(v if isinstance(v, list) else [v]) for k, v in targets.items()
        }
    _optional(doc, item, path, fields, policy)
    return Window(**fields) if len(doc.found) == before else None


def _optional(doc: Document, item: dict, path: KeyPath, fields: dict, policy: Policy) -> None:
    for key, shape in (("max_concurrency", rp.RATE), ("max_errors", rp.ERROR_RATE)):
        if key in item:
            if not shape.fullmatch(str(item[key])):
                doc.error((*path, key), f"{item[key]!r} is not a count like 10 or a percentage")
            fields[key] = str(item[key])
    if "reboot" in item and not isinstance(item["reboot"], bool):
        doc.error((*path, "reboot"), "expected true (reboot if needed) or false (no reboot)")
    fields["reboot"] = bool(item.get("reboot", True))
    if "environment" in item and item["environment"] not in rp.ENVIRONMENTS:
        doc.error((*path, "environment"), f"not one of {', '.join(rp.ENVIRONMENTS)}")
    if "approval" in item and item["approval"] not in rp.APPROVALS:
        doc.error((*path, "approval"), f"not one of {', '.join(rp.APPROVALS)}")
    account = str(item.get("account", ""))
    if account and policy.accounts.find(account) is None:
        doc.error((*path, "account"), f"{account!r} is not a configured account")
    found = policy.accounts.find(account)
    fields["account"] = found.id if found else account
    for key in ("region", "environment", "approval", "channel"):
        if key in item:
            fields[key] = str(item[key])


def request_window_run(
    session: Session,
    rt: Runtime,
    window: Window,
    start: datetime,
    *,
    now: datetime,
    requester: str = ACTOR,
    operation: str | None = None,
) -> RunbookRun:
    """Request the window's patch run for the occurrence starting at ``start``."""
    operation = operation or window.operation
    params: dict[str, Any] = {"PatchGroup": ",".join(next(iter(window.targets.values())))}
    if operation == "Install":
        params["Reboot"] = "RebootIfNeeded" if window.reboot else "NoReboot"
    ends = start + window.duration
    req = service.RunRequest(
        runbook=OPERATIONS[operation], requester=requester, params=params,
        account_id=window.account, region=window.region, environment=window.environment,
        patch_window=window.name, approval_floor=window.approval or "none",
        window={"starts_at": start.isoformat(), "ends_at": ends.isoformat(),
                "channel": window.channel, "operation": operation},
    )  # fmt: skip
    run = service.request_run(session, catalogue_of(rt), rt.policy, req, now=now)
    run.targets = {"instance_ids": [], "tags": {k: list(v) for k, v in window.targets.items()}}
    run.max_concurrency, run.max_errors = window.max_concurrency, window.max_errors
    when = start.astimezone(ZoneInfo(window.timezone)).strftime("%Y-%m-%d %H:%M %Z")
    service.notify(
        session, f"Patch window {window.name} ({operation}) opens {when} for "
        f"{window.duration}; run {run.id} is {run.state.replace('_', ' ')}.",
        now, channel=window.channel, run_id=run.id,
    )  # fmt: skip
    return run


def tick(rt: Runtime, ssm: Any) -> Callable[[Session, datetime], int]:
    """Return the job that announces, opens and closes patch windows at ``now``."""

    def job(session: Session, now: datetime) -> int:
        acted = 0
        for window in parse_windows(rt.policy):
            start = window.occurrence(now)
            if start is not None and _run_for(session, window.name, start) is None:
                try:
                    request_window_run(session, rt, window, start, now=now)
                except service.RunError as exc:
                    log.error("patch window %s not requested: %s", window.name, exc)
                acted += 1
        for run in _held_runs(session):
            acted += _open_or_drop(session, run, ssm, now)
        return acted

    return job


def _run_for(session: Session, name: str, start: datetime) -> RunbookRun | None:
    rows = session.execute(select(RunbookRun).where(RunbookRun.patch_window == name)).scalars()
    return next((r for r in rows if r.window.get("starts_at") == start.isoformat()), None)


def _held_runs(session: Session) -> list[RunbookRun]:
    stmt = select(RunbookRun).where(
        RunbookRun.patch_window.is_not(None),
        RunbookRun.state == "approved",
        RunbookRun.next_check_at.is_(None),
    )
    return list(session.execute(stmt.with_for_update(skip_locked=True)).scalars())


def _open_or_drop(session: Session, run: RunbookRun, ssm: Any, now: datetime) -> int:
    starts = datetime.fromisoformat(run.window["starts_at"])
    ends = datetime.fromisoformat(run.window["ends_at"])
    if now < starts:
        return 0
    if now >= ends:
        service.cancel(session, run.id, actor=ACTOR, now=now)
        return 1
    where = Where(run.account_id, run.region, ACTOR)
    try:
        instances = ssm.managed_instances(where, run.targets.get("tags", {}))
    except SsmError as exc:
        log.warning("patch window %s: cannot list targets yet: %s", run.patch_window, exc)
        return 0
    silences = [_silence(session, run, i, ends, now) for i in instances]
    run.window = {**run.window, "instances": instances, "silences": silences}
    run.next_check_at = now
    return 1


def _silence(
    session: Session, run: RunbookRun, instance: str, ends: datetime, now: datetime
) -> int:
    matcher: dict[str, Any] = {"resource": instance}
    if run.account_id:
        matcher["account"] = run.account_id
    reason = f"patch window {run.patch_window} (run {run.id})"
    return actions.create_silence(
        session, matcher, ends_at=ends, reason=reason, actor=ACTOR, now=now
    )


def report_hook(rt: Runtime, ssm: Any) -> Callable[[Session, RunbookRun, datetime], None]:
    """Return the runner hook that posts a window's summary when its run ends."""

    def hook(session: Session, run: RunbookRun, now: datetime) -> None:
        if not run.patch_window:
            return
        instances = list(run.window.get("instances", []))
        try:
            states = ssm.patch_states(Where(run.account_id, run.region, ACTOR), instances)
        except SsmError as exc:
            states, note = [], f" (compliance unavailable: {exc.reason})"
        else:
            note = ""
        text = summary(run, instances, states) + note
        run.window = {**run.window, "report": text}
        # Instance ids and SSM's reasons come from AWS: shown as written, never as markup.
        channel = run.window.get("channel")
        service.notify(session, escape(text), now, channel=channel, run_id=run.id)
        report_incident(session, rt, run, text, clean=_clean(run, instances, states), now=now)

    return hook


def report_incident(
    session: Session, rt: Runtime, run: RunbookRun, text: str, *, clean: bool, now: datetime
) -> int | None:
    """Keep a window's report as an incident (card and ticket); a clean one resolves at once."""
    name, starts = run.patch_window or "", str(run.window.get("starts_at", ""))
    firing = Alert(
        fingerprint=make_fingerprint(REPORT_SOURCE, run.account_id, run.region, name, starts),
        status=AlertStatus.FIRING,
        severity=Severity.INFO if clean else Severity.MEDIUM,
        source=REPORT_SOURCE,
        title=text.splitlines()[0][:200],
        summary=text,
        account_id=run.account_id,
        region=run.region,
        resource=name,
        labels={"patch_window": name, "run": str(run.id), "starts_at": starts},
        occurred_at=now,
    )
    alerts = [firing, replace(firing, status=AlertStatus.RESOLVED)] if clean else [firing]
    delivery = DeliveryIn(
        namespace="opsbot", message_id=f"patch-window-report:{run.id}", channel="job",
        message_type="PatchWindowReport", body=text,
    )  # fmt: skip
    result = record_delivery(
        session, delivery=delivery, alerts=alerts, policy=rt.policy, now=now, silences=rt.silences
    )
    return result.outcomes[0].incident_id if result.outcomes else None


def _clean(run: RunbookRun, instances: list[str], states: list[dict[str, Any]]) -> bool:
    by_id = {s["InstanceId"]: s for s in states}
    failed = any(by_id.get(i, {}).get("FailedCount") for i in instances)
    return (
        run.state == "succeeded" and bool(instances) and not failed and len(by_id) >= len(instances)
    )


def summary(run: RunbookRun, instances: list[str], states: list[dict[str, Any]]) -> str:
    """Return the report of a window: instances patched, failed, missing, and compliance."""
    by_id = {s["InstanceId"]: s for s in states}
    patched = [i for i in instances if i in by_id and not by_id[i].get("FailedCount")
               and not by_id[i].get("MissingCount")]  # fmt: skip
    failed = [i for i in instances if by_id.get(i, {}).get("FailedCount")]
    missing = [i for i in instances if i not in patched and i not in failed]
    operation = run.window.get("operation", "")
    lines = [
        f"Patch window {run.patch_window} ({operation}) {run.state.replace('_', ' ')}: "
        f"{len(instances)} instances, {len(patched)} compliant, {len(failed)} failed, "
        f"{len(missing)} missing patches or no report."
    ]
    for i in instances:
        lines.append(f"• {i}: {_counts(by_id.get(i))}")
    return "\n".join(lines)


def _counts(state: dict[str, Any] | None) -> str:
    if state is None:
        return "no patch state reported"
    counts = ("InstalledCount", "MissingCount", "FailedCount")
    return ", ".join(f"{c.removesuffix('Count').lower()} {state.get(c, 0)}" for c in counts)
