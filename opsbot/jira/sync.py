"""The outbox sender of target "jira": one ticket per incident, kept in step with it.

Exactly once: before a create is sent, a row in ``jira_create_attempts``
records that it may apply. A later attempt finds the row and first searches
for the fingerprint label (adopting the ticket found); Jira Cloud's index can
lag behind a write, so the search is repeated for ``search_lag`` before a
second create is allowed. Two workers never hold the same outbox row, and the
row outlives a worker that died mid-call.

Faults: a 429/503 with ``Retry-After`` waits that long, uncharged; other 5xx
and lost answers are failed calls, retried by the outbox with backoff; a 4xx
that can never succeed is dead-lettered with Jira's error text; 401/403 stop
the sender: its rows wait, uncharged, and one call a minute probes the
credentials; the first that works drains them. ``GET /status`` shows it.

Budget: the shared request bucket is charged only for a call that will be
made (the ticket exists, the sender runs), and a short bucket hands the row a
slot ahead instead of a failed attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from opsbot.audit import audit
from opsbot.core.effects import Effect
from opsbot.db.models import Incident, JiraCreateAttempt
from opsbot.db.session import transaction
from opsbot.jira.budget import take_budget
from opsbot.jira.client import (
    JiraError,
    JiraTickets,
    JiraUnreachable,
    TicketState,
    describe,
    fingerprint_label,
    issue_fields,
    priority_name,
    request_body,
)
from opsbot.jira.config import JiraConfig, jira_config
from opsbot.outbox.budget import holds_reservation
from opsbot.outbox.ports import OutboxItem, PermanentFailure, RetryLater, Sent, Wait
from opsbot.outbox.queue import queue_effects
from opsbot.outbox.status import SenderGate
from opsbot.runtime import Runtime

log = logging.getLogger(__name__)

ACTIVE = ("open", "acknowledged")
NO_TICKET_YET = 60.0
LAG_POLL = 5.0
RETRYABLE = (429, 500, 502, 503, 504)
# requests each kind of send makes, charged to the shared budget up front
COST = {"create": 2, "digest": 1, "priority": 4, "resolve": 3, "reopen": 3, "comment": 1}


class JiraSync:
    """Delivers the "jira" outbox rows: create, digest, priority, resolve, reopen, comment."""

    target = "jira"

    def __init__(self, rt: Runtime, config: JiraConfig | None = None) -> None:
        self.rt = rt
        self.tickets, self.health = jira_parts(rt)
        self.config = config or jira_config(rt.policy)
        self.handlers: dict[str, Callable[[OutboxItem, Incident], Sent]] = {
            "create": self._create,
            "digest": self._digest,
            "priority": self._priority,
            "resolve": self._resolve,
            "reopen": self._reopen,
            "comment": self._comment,
        }

    def send(self, item: OutboxItem) -> Sent:
        """Deliver one row; raise Wait, RetryLater or PermanentFailure when it did not happen."""
        self.health.admit()
        handler = self.handlers.get(item.kind)
        if handler is None or item.incident_id is None:
            raise PermanentFailure(f"unknown Jira outbox row kind {item.kind!r}")
        incident = self._load(item.incident_id)
        if item.kind != "create" and not incident.jira_key:
            raise Wait("the incident has no ticket yet", NO_TICKET_YET)
        self._take_budget(item)
        try:
            sent = handler(item, incident)
        except JiraError as exc:
            raise self._failure(item, exc) from None
        except JiraUnreachable as exc:
            self.health.failing(str(exc))
            raise RetryLater(str(exc)) from None
        self.health.succeeded()
        return sent

    def _take_budget(self, item: OutboxItem) -> None:
        now = self.rt.clock()
        if holds_reservation(item.reserved_slot, now):
            return
        rate = self.rt.settings.jira_requests_per_second
        wait = take_budget(self.rt.sessions, rate=rate, cost=COST[item.kind], now=now)
        if wait:
            raise Wait("Jira request budget spent", wait, reserved=True)

    def _failure(self, item: OutboxItem, exc: JiraError) -> Exception:
        if exc.status in (401, 403):
            self.rt.metrics.inc("opsbot_jira_errors_total", kind="auth")
            return self.health.stop(f"Jira refused opsbot's credentials ({exc.status}): {exc.text}")
        if exc.status in RETRYABLE:
            reason = f"Jira answered {exc.status}: {exc.text}"
            self.health.failing(reason)
            if exc.retry_after is not None:
                return Wait(reason, exc.retry_after)
            return RetryLater(reason)
        log.error("Jira rejected %s for incident %s: %s", item.kind, item.incident_id, exc.text)
        self.rt.metrics.inc("opsbot_jira_errors_total", kind="rejected")
        return PermanentFailure(f"Jira answered {exc.status}: {exc.text}")

    def _load(self, incident_id: int) -> Incident:
        with self.rt.sessions() as session:
            row = session.get(Incident, incident_id)
            if row is None:
                raise PermanentFailure(f"incident {incident_id} does not exist")
            session.expunge(row)
            return row

    # -- create ----------------------------------------------------------------

    def _create(self, item: OutboxItem, incident: Incident) -> Sent:
        if incident.jira_key:
            return Sent()
        now = self.rt.clock()
        attempted = self._attempted_at(incident.id)
        if attempted is not None:
            found = self._find_ticket(incident)
            if found is not None:
                log.info("adopted ticket %s for incident %d", found, incident.id)
                return self._created(item, incident, found)
            if now - attempted < self.config.search_lag:
                raise Wait("a create may have applied; waiting for Jira's search index", LAG_POLL)
        self._mark_attempt(incident.id, now)
        try:
            key = self._send_create(incident)
        except JiraError as exc:
            if exc.status < 500 or exc.status == 503:  # refused: nothing was created
                self._clear_attempt(incident.id)
            raise
        return self._created(item, incident, key)

    def _send_create(self, incident: Incident) -> str:
        settings = self.rt.settings
        route = self.config.route((incident.route or {}).get("rule_index"))
        facts = {c.name: getattr(incident, c.name) for c in Incident.__table__.columns}
        url = self.config.incident_url  # the YAML's template wins over OPSBOT_PUBLIC_URL's page
        link = url.format(id=incident.id) if url else settings.incident_page_url(incident.id)
        extra = {
            **self.config.custom_fields,
            **self.config.fields_for(incident.priority),
            **route.fields,
        }
        fields = issue_fields(
            facts,
            project=(incident.route or {}).get("jira_project") or settings.jira_project or "",
            issue_type=route.issue_type or settings.jira_issue_type,
            priority=priority_name(incident.priority, self.config.priorities),
            description=describe(facts, link),
            extra=extra,
            components=route.components,
            assignee=route.assignee,
        )
        if settings.jira_service_desk_id and settings.jira_request_type_id:
            body = request_body(
                fields,
                service_desk_id=settings.jira_service_desk_id,
                request_type_id=route.request_type or settings.jira_request_type_id,
            )
            return self.tickets.create_request(body)
        return self.tickets.create_issue(fields)

    def _created(self, item: OutboxItem, incident: Incident, key: str) -> Sent:
        # The attempt row stays: the worker may die before it stores the key, and the
        # next attempt must then search rather than create. Once the key is stored,
        # ``incident.jira_key`` answers first and the row is inert.
        linked = item.payload.get("link")
        if linked:
            try:
                self.tickets.link(self.config.link_type, key, str(linked))
            except (JiraError, JiraUnreachable) as exc:
                log.warning("could not link %s to %s: %s", key, linked, exc)
        return Sent({"jira_key": key})

    def _find_ticket(self, incident: Incident) -> str | None:
        found = self.tickets.search(f'labels = "{fingerprint_label(incident.fingerprint)}"')
        with self.rt.sessions() as session:
            taken = set(
                session.execute(
                    select(Incident.jira_key).where(
                        Incident.fingerprint == incident.fingerprint,
                        Incident.id != incident.id,
                        Incident.jira_key.is_not(None),
                    )
                ).scalars()
            )
        fresh = [t.key for t in found if t.key not in taken]
        return fresh[0] if fresh else None

    def _attempted_at(self, incident_id: int) -> datetime | None:
        with self.rt.sessions() as session:
            row = session.get(JiraCreateAttempt, incident_id)
            return row.attempted_at if row else None

    def _mark_attempt(self, incident_id: int, now: datetime) -> None:
        with transaction(self.rt.sessions) as session:
            row = session.get(JiraCreateAttempt, incident_id)
            if row is None:
                session.add(JiraCreateAttempt(incident_id=incident_id, attempted_at=now))
            else:
                row.attempted_at = now

    def _clear_attempt(self, incident_id: int) -> None:
        with transaction(self.rt.sessions) as session:
            session.execute(
                delete(JiraCreateAttempt).where(JiraCreateAttempt.incident_id == incident_id)
            )

    # -- updates ---------------------------------------------------------------

    def _key(self, incident: Incident) -> str:
        if not incident.jira_key:
            raise Wait("the incident has no ticket yet", NO_TICKET_YET)
        return incident.jira_key

    def _digest(self, item: OutboxItem, incident: Incident) -> Sent:
        key = self._key(incident)
        text = (
            f"Still {incident.status}: {incident.count} alerts since "
            f"{_stamp(incident.first_seen)}; latest at {_stamp(incident.last_seen)}:\n"
            f"{incident.summary or incident.title}"
        )
        self.tickets.comment(key, text)
        return Sent()

    def _priority(self, item: OutboxItem, incident: Incident) -> Sent:
        key = self._key(incident)
        wanted = str(item.payload.get("to") or incident.priority)
        name = priority_name(wanted, self.config.priorities)
        self.tickets.update(key, {"priority": {"name": name}, **self.config.fields_for(wanted)})
        why = f"severity is now {incident.severity}"
        self.tickets.comment(
            key, f"Priority changed {item.payload.get('from', '?')} → {wanted} ({name}): {why}."
        )
        return Sent()

    def _comment(self, item: OutboxItem, incident: Incident) -> Sent:
        text = str(item.payload.get("text") or "").strip()
        if text:
            self.tickets.comment(self._key(incident), text)
        return Sent()

    def _resolve(self, item: OutboxItem, incident: Incident) -> Sent:
        key = self._key(incident)
        text = str(item.payload.get("text") or f"Resolved by opsbot: {item.payload.get('reason')}.")
        state = self.tickets.state(key)
        if state.done:
            self.tickets.comment(key, text)
            return Sent()
        fields = dict(self.config.resolve_fields) or None
        if not self._move(key, self.config.resolve_transitions, text, fields, incident):
            self.tickets.comment(key, f"{text}\nopsbot found no resolve transition on this ticket.")
        return Sent()

    def _reopen(self, item: OutboxItem, incident: Incident) -> Sent:
        key = self._key(incident)
        text = f"Fired again: {item.payload.get('reason') or 'the alarm is back'}."
        state = self.tickets.state(key)
        if not state.done:
            self.tickets.comment(key, text)
            return Sent()
        if _named(state.resolution, self.config.wont_fix):
            supersede(self.rt, incident.id, state, now=self.rt.clock())
            return Sent()
        if not self._move(key, self.config.reopen_transitions, text, None, incident):
            self.tickets.comment(key, f"{text}\nopsbot found no reopen transition on this ticket.")
        return Sent()

    def _move(
        self,
        key: str,
        names: tuple[str, ...],
        comment: str,
        fields: dict[str, Any] | None,
        incident: Incident,
    ) -> bool:
        available = self.tickets.transitions(key)
        by_name = {name.casefold(): tid for name, tid in available.items()}
        for name in names:
            if name.casefold() in by_name:
                self.tickets.transition(
                    key, by_name[name.casefold()], fields=fields, comment=comment
                )
                return True
        log.warning(
            "ticket %s has none of the transitions %s (it has %s)", key, names, list(available)
        )
        self.rt.metrics.inc("opsbot_jira_errors_total", kind="no_transition")
        with transaction(self.rt.sessions) as session:
            audit(
                session,
                actor="opsbot",
                action="jira.no_transition",
                subject=("incident", str(incident.id)),
                now=self.rt.clock(),
                detail={"ticket": key, "wanted": list(names), "available": list(available)},
            )
        return False


def supersede(rt: Runtime, incident_id: int, state: TicketState, *, now: datetime) -> int | None:
    """Close an incident whose ticket was closed as won't-fix and open a linked successor."""
    with transaction(rt.sessions) as session:
        old = session.get(Incident, incident_id, with_for_update=True)
        if old is None or old.status not in ACTIVE:
            return None
        old.status, old.resolved_at = "resolved", now
        session.flush()
        new = _successor(old, now)
        session.add(new)
        session.flush()
        effects = [
            Effect("jira", "create", payload={"link": old.jira_key}),
            Effect("slack", "post"),
        ]
        queue_effects(session, new.id, effects, now)
        queue_effects(session, old.id, [Effect("slack", "update", coalesce=True)], now)
        detail = {"ticket": old.jira_key, "resolution": state.resolution, "successor": new.id}
        audit(
            session,
            actor="opsbot",
            action="incident.superseded",
            subject=("incident", str(old.id)),
            now=now,
            detail=detail,
        )
        log.info(
            "incident %d superseded by %d: ticket %s is %s",
            old.id,
            new.id,
            old.jira_key,
            state.resolution,
        )
        return new.id


def _successor(old: Incident, now: datetime) -> Incident:
    skip = {"id", "jira_key", "slack_ts", "owner", "acknowledged_by", "acknowledged_at"}
    values = {
        c.name: getattr(old, c.name) for c in Incident.__table__.columns if c.name not in skip
    }
    values |= {
        "status": "open",
        "count": 1,
        "first_seen": now,
        "last_seen": now,
        "resolved_at": None,
        "flapping": False,
        "flips": [now.isoformat()],
        "route": {**(old.route or {}), "supersedes": old.id},
    }
    return Incident(**values)


def jira_parts(rt: Runtime) -> tuple[JiraTickets, SenderGate]:
    """Return this process's Jira adapter and sender gate, built once."""
    parts = rt.integrations.get("jira")
    if parts is None:
        settings = rt.settings
        assert settings.jira_url and settings.jira_token, "Jira is not configured"
        tickets = JiraTickets(
            settings.jira_url,
            settings.jira_token.get_secret_value(),
            user=settings.jira_user,
            cloud=settings.jira_cloud,
            timeout=settings.jira_timeout_seconds,
        )
        # read the runtime's clock at each call: a test may swap it after the app is built
        gate = SenderGate("jira", rt.sessions, lambda: rt.clock())
        parts = (tickets, gate)
        rt.integrations["jira"] = parts
    return parts  # type: ignore[no-any-return]


def _named(name: str | None, names: tuple[str, ...]) -> bool:
    return name is not None and name.casefold() in {n.casefold() for n in names}


def _stamp(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


def sender(rt: Runtime) -> JiraSync:
    """Return the outbox sender for Jira."""
    return JiraSync(rt)
