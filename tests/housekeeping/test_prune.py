"""``prune``: every retention limit at and one second past it, in batches of any size.

Rows are made as opsbot makes them (ingest, Slack dedup, audit) at known ages;
the prune runs at ``now`` on the controlled clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from pydantic import ValidationError
from sqlalchemy import func, select, update

from opsbot.config import Settings
from opsbot.core.alert import AlertStatus
from opsbot.db.models import AlertRow, AuditEntry, Delivery, Incident, OutboxRow
from opsbot.db.session import transaction
from opsbot.housekeeping import add_jobs, prune, prune_job
from opsbot.runtime import Runtime
from tests.housekeeping.conftest import BODY, DAY, SECOND, Rows
from tests.support.clock import Clock


def count(rt: Runtime, model: type, *where) -> int:
    with rt.sessions() as session:
        return int(
            session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()
        )


def body_of(rt: Runtime, delivery_id: int) -> str:
    with rt.sessions() as session:
        return session.get(Delivery, delivery_id).body


@pytest.mark.parametrize("batch", [1, 2, 1000])
def test_every_part_keeps_what_is_at_its_limit_and_drops_what_is_past_it(
    make_rt: Callable[..., Runtime], clock: Clock, batch: int
) -> None:
    rt = make_rt(prune_batch_size=batch)
    rows = Rows(rt)
    now = clock.now + timedelta(days=400)
    # Made oldest first, as time makes them (ids grow with time: the walks rely on it).
    rows.audit(now - 1000 * DAY)
    # an open incident keeps every alert and delivery, however old
    still_open = rows.alert(now - 300 * DAY, "db-open").outcomes[0].incident_id
    # alerts of resolved incidents (90d); the incidents themselves stay
    old = rows.alert(now - 91 * DAY, "db-old").outcomes[0].incident_id
    kept = rows.alert(now - 91 * DAY, "db-kept").outcomes[0].incident_id
    rows.alert(now - 90 * DAY - SECOND, "db-old", AlertStatus.RESOLVED)
    # deliveries without alerts (90d)
    gone = rows.delivery(now - 90 * DAY - SECOND)
    rows.alert(now - 90 * DAY, "db-kept", AlertStatus.RESOLVED)
    at_limit = rows.delivery(now - 90 * DAY)
    # delivery bodies (7d)
    emptied = rows.delivery(now - 7 * DAY - SECOND)
    full = rows.delivery(now - 7 * DAY)
    # Slack dedup rows (2d)
    rows.slack_retry_key(now - 2 * DAY - SECOND)
    rows.slack_retry_key(now - 2 * DAY)
    # finished outbox rows (7d after they finished); pending and dead rows stay
    rows.finish_outbox(old, "done", now - 7 * DAY - SECOND)
    rows.finish_outbox(kept, "skipped", now - 7 * DAY)
    rows.finish_outbox(still_open, "dead", now - 300 * DAY)
    old_rows = count(rt, OutboxRow, OutboxRow.incident_id == old)
    kept_rows = count(rt, OutboxRow, OutboxRow.incident_id == kept)
    open_rows = count(rt, OutboxRow, OutboxRow.incident_id == still_open)
    assert old_rows and kept_rows and open_rows

    report = prune(rt, now)

    assert report.counts == {
        "delivery_bodies": 8,  # those older than 7d: 5 with alerts, 3 without (Slack's: empty)
        "slack_dedup": 1,
        "alerts": 2,  # the old incident's
        "deliveries": 3,  # `gone`, and the two of the old incident's alerts
        "outbox": old_rows,
        "audit": 0,
    }
    assert count(rt, Delivery, Delivery.namespace == "slack") == 1
    with rt.sessions() as session:
        alerts = dict(
            session.execute(
                select(AlertRow.incident_id, func.count()).group_by(AlertRow.incident_id)
            ).all()
        )
        outbox = sorted(session.execute(select(OutboxRow.state)).scalars())
        ids = set(session.execute(select(Delivery.id)).scalars())
    assert alerts == {kept: 2, still_open: 1}
    assert count(rt, Incident) == 3  # incidents are never deleted
    assert gone not in ids and at_limit in ids
    assert (body_of(rt, emptied), body_of(rt, full)) == ("", BODY)
    assert outbox == ["dead"] * open_rows + ["skipped"] * kept_rows
    assert count(rt, AuditEntry) > 0  # the audit log is never pruned by default

    again = prune(rt, now)
    assert sum(again.counts.values()) == 0  # nothing left to do: a second run changes nothing


def test_the_body_cursor_never_walks_a_row_twice(make_rt, clock: Clock) -> None:
    rt = make_rt(prune_batch_size=1)
    rows = Rows(rt)
    first = rows.delivery(clock.now)
    assert prune(rt, clock.now + 8 * DAY).counts["delivery_bodies"] == 1
    second = rows.delivery(clock.now + 8 * DAY)
    with transaction(rt.sessions) as session:  # a body the prune already passed, put back
        session.execute(update(Delivery).where(Delivery.id == first).values(body="again"))
    assert prune(rt, clock.now + 16 * DAY).counts["delivery_bodies"] == 1
    assert (body_of(rt, first), body_of(rt, second)) == ("again", "")


def test_retention_settings_take_durations_down_to_one_hour() -> None:
    assert Settings(retain_alerts="1h").retain_alerts == timedelta(hours=1)
    assert Settings(retain_outbox="36h").retain_outbox == timedelta(hours=36)
    for name in ("retain_delivery_bodies", "retain_deliveries", "retain_alerts",
                 "retain_outbox", "retain_slack_dedup"):  # fmt: skip
        with pytest.raises(ValidationError, match="at least 1h"):
            Settings(**{name: "59m"})


@pytest.mark.parametrize(("size", "ok"), [(0, False), (1, True), (10_000, True), (10_001, False)])
def test_the_batch_size_at_and_past_its_limits(size: int, ok: bool) -> None:
    if ok:
        assert Settings(prune_batch_size=size).prune_batch_size == size
    else:
        with pytest.raises(ValidationError):
            Settings(prune_batch_size=size)


def test_the_daily_job_runs_the_prune_on_its_clock(make_rt, clock: Clock) -> None:
    rt = make_rt()
    rows = Rows(rt)
    rows.slack_retry_key(clock.now)
    clock.advance(days=3)
    assert prune_job(rt) == 1  # the Slack row (it has no body to empty)
    assert count(rt, Delivery) == 0


def test_the_daily_prune_is_scheduled_at_0317_utc(make_rt) -> None:
    scheduler = BackgroundScheduler(timezone="UTC")
    add_jobs(scheduler, make_rt())
    trigger = scheduler.get_job("housekeeping").trigger
    assert str(trigger) == "cron[hour='3', minute='17']"
