"""The heartbeat job: open an incident for a heartbeat gone silent, resolve it when it is back.

"Last seen" is read from what ingest already stores: a heartbeat's events
carry its silence id in ``alerts.silence_id`` (a partial index holds only
those rows), so ingest does no extra work. ``heartbeats`` keeps when each was
first watched: a heartbeat never seen yet gets its full ``every`` + ``grace``
from then before it is missing, and a restart grants none.

Each change is an ordinary delivery (namespace ``heartbeat``) with one
synthetic alert, fed through the incident service's ``ingest`` after the
singleton transaction, so Jira and Slack follow as for any incident. Its
message id names the silence it reports (``NAME:missing:<last seen>``), so a
change reported twice, by two runs or two replicas, is recorded once — and an
incident an operator resolved by hand stays resolved until the next silence.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from opsbot.core.alert import Alert, AlertStatus, Severity
from opsbot.db.models import ACTIVE_SQL, HEARTBEAT_SQL, AlertRow, HeartbeatRow, Incident
from opsbot.heartbeats.config import SOURCE, Heartbeat, fingerprint, parse_heartbeats, silence_id
from opsbot.incidents.service import DeliveryIn, ingest
from opsbot.jobs import run_singleton
from opsbot.runtime import Runtime

log = logging.getLogger(__name__)

NAMESPACE = "heartbeat"


@dataclass(frozen=True)
class Change:
    """A heartbeat that went missing or came back: one delivery with one alert."""

    name: str
    delivery: DeliveryIn
    alert: Alert


def check_heartbeats(rt: Runtime) -> int | None:
    """Report every heartbeat that went missing or came back; None on a replica without the lock.

    Returns how many changes were new (recorded for the first time).
    """
    beats = parse_heartbeats(rt.policy)
    changes: list[Change] = []

    def job(session: Session, now: datetime) -> int:
        changes.extend(due_changes(session, beats, now))
        return len(changes)

    if run_singleton(rt, "heartbeats", job) is None:
        return None
    recorded = 0
    for change in changes:  # after the job's transaction: SQLite has one writer at a time
        result = ingest(
            rt.sessions,
            delivery=change.delivery,
            alerts=[change.alert],
            policy=rt.policy,
            now=rt.clock(),
            silences=rt.silences,
        )
        if not result.duplicate:
            recorded += 1
            log.warning("heartbeat %s: %s", change.name, change.alert.title)
    return recorded


def due_changes(session: Session, beats: Sequence[Heartbeat], now: datetime) -> list[Change]:
    """Return the changes due at ``now``; record new heartbeats and forget removed ones."""
    since = _watched_since(session, beats, now)
    changes = []
    for beat in beats:
        last = last_seen(session, beat.silence_id)
        reference = last or since[beat.name]
        if now - reference > beat.limit:
            changes.append(_missing(beat, reference, now))
        elif _active(session, beat.fingerprint):
            changes.append(_back(beat, reference))
    for name in set(since) - {beat.name for beat in beats}:
        if _active(session, fingerprint(name)):
            changes.append(_removed(name, now))
        session.execute(delete(HeartbeatRow).where(HeartbeatRow.name == name))
    return changes


def last_seen(session: Session, silence: str) -> datetime | None:
    """Return when the newest stored event of a heartbeat (by its silence id) was received."""
    stmt = (
        select(AlertRow.received_at)
        .where(AlertRow.silence_id == silence, text(HEARTBEAT_SQL))  # the partial index's WHERE
        .order_by(AlertRow.received_at.desc())
        .limit(1)
    )
    return session.execute(stmt).scalar_one_or_none()


def _watched_since(
    session: Session, beats: Sequence[Heartbeat], now: datetime
) -> dict[str, datetime]:
    found = session.execute(select(HeartbeatRow.name, HeartbeatRow.watched_since)).all()
    rows: dict[str, datetime] = {name: since for name, since in found}
    for beat in beats:
        if beat.name not in rows:
            session.add(HeartbeatRow(name=beat.name, watched_since=now))
            rows[beat.name] = now
    session.flush()
    return rows


def _active(session: Session, fp: str) -> bool:
    stmt = select(Incident.id).where(Incident.fingerprint == fp, text(ACTIVE_SQL)).limit(1)
    return session.execute(stmt).first() is not None


def _missing(beat: Heartbeat, reference: datetime, now: datetime) -> Change:
    title = (
        f"Heartbeat {beat.name} missing: nothing for {_human(now - reference)} "
        f"(expected every {_human(beat.every)})"
    )
    summary = (
        f"No event matching heartbeat {beat.name} has arrived since "
        f"{reference.isoformat(timespec='seconds')}; it is expected every {_human(beat.every)}"
        + (f" (grace {_human(beat.grace)})." if beat.grace else ".")
    )
    return _change(beat.name, "missing", reference, AlertStatus.FIRING, beat, title, summary)


def _back(beat: Heartbeat, reference: datetime) -> Change:
    title = f"Heartbeat {beat.name} is back"
    summary = f"An event matching heartbeat {beat.name} arrived at {reference.isoformat()}."
    return _change(beat.name, "back", reference, AlertStatus.RESOLVED, beat, title, summary)


def _removed(name: str, now: datetime) -> Change:
    title = f"Heartbeat {name} is no longer configured"
    return _change(name, "removed", now, AlertStatus.RESOLVED, None, title, title + ".")


def _change(
    name: str,
    what: str,
    reference: datetime,
    status: AlertStatus,
    beat: Heartbeat | None,
    title: str,
    summary: str,
) -> Change:
    at = reference.isoformat()
    body = {"heartbeat": name, "change": what, "reference": at}
    delivery = DeliveryIn(
        namespace=NAMESPACE,
        message_id=f"{name}:{what}:{at}",
        channel=NAMESPACE,
        message_type=what,
        body=json.dumps(body),
    )
    alert = Alert(
        fingerprint=fingerprint(name),
        status=status,
        severity=beat.severity if beat else Severity.INFO,
        source=SOURCE,
        title=title,
        summary=summary,
        account_id=beat.account_id if beat else "",
        resource=name,
        detail_type="Heartbeat Missing",
        labels={"heartbeat": name},
        raw=body,
    )
    return Change(name, delivery, alert)


def _human(length: timedelta) -> str:
    minutes = int(length.total_seconds() // 60)
    if minutes < 1:
        return f"{int(length.total_seconds())}s"
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return "".join(parts)


__all__ = ["NAMESPACE", "Change", "check_heartbeats", "due_changes", "last_seen", "silence_id"]
