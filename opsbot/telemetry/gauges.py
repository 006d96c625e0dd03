"""Alerting gauges read from the database at scrape time, so every replica shows the same numbers.

A scrape never fails for the database: when it is down or slow (the engine's
connect and statement timeouts bound the wait) the gauges are left out and
``opsbot_db_up`` is 0, so a Prometheus alert can fire on that one series.

Labels come from opsbot's own values (targets, states, job names, the fixed
channels) or from the operator's topic allow-list; a topic no one listed
never becomes a label (the issue 15 rule).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from opsbot.db import store
from opsbot.db.models import Delivery, Incident, IntegrationStatus, JobRun
from opsbot.db.session import transaction

log = logging.getLogger(__name__)

CHANNELS = ("push", "sqs", "api")
TOPIC_CHANNELS = ("push", "sqs")  # api deliveries have no SNS topic
ANY_TOPIC = ""


class DatabaseGauges:
    """A prometheus_client collector of the state gauges, read in one short transaction."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime],
        topics: Sequence[str] = (),
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.topics = tuple(topics)

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("opsbot_db_up", "1 when /metrics could read the database, else 0.")
        try:
            families = self._read()
        except Exception as exc:
            log.warning("metrics: database gauges unavailable: %s", _brief(exc))
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        yield from families

    def _read(self) -> list[Metric]:
        now = self.clock()
        with transaction(self.sessions) as session:
            by_status = store.count_by(session, Incident.status)
            backlog, oldest = store.outbox_backlog(session, now)
            counts = store.outbox_counts(session)
            integrations = session.execute(
                select(IntegrationStatus.target, IntegrationStatus.state)
            ).all()
            jobs = session.execute(select(JobRun.name, JobRun.last_success_at)).all()
            deliveries = self._last_deliveries(session)
        return [
            _family(
                "opsbot_incidents",
                "Incidents by status.",
                ["status"],
                {(s,): n for s, n in by_status.items()},
            ),
            _family(
                "opsbot_outbox_rows",
                "Outbox rows by target and state (pending, sending, done, skipped, dead).",
                ["target", "state"],
                dict(counts),
            ),
            _family("opsbot_outbox_backlog", "Outbox rows not yet delivered.", [], {(): backlog}),
            _family(
                "opsbot_outbox_oldest_seconds",
                "Age of the oldest undelivered (pending or sending) outbox row.",
                [],
                {(): oldest},
            ),
            _family(
                "opsbot_outbox_dead",
                "Dead-lettered outbox rows by target (replay: opsbot outbox retry).",
                ["target"],
                {(t,): counts.get((t, "dead"), 0) for t in sorted({t for t, _ in counts})},
            ),
            _family(
                "opsbot_integration_up",
                "1 when an integration works as the worker last saw it, 0 when failing or stopped.",
                ["target"],
                {(t,): float(state == "ok") for t, state in integrations},
            ),
            _family(
                "opsbot_job_last_success_timestamp_seconds",
                "When each scheduled job last ran to the end (Unix time).",
                ["job"],
                {(name,): _unix(at) for name, at in jobs},
            ),
            _family(
                "opsbot_last_delivery_timestamp_seconds",
                "When the last delivery arrived, by channel and allow-listed topic "
                '(topic "" is any topic); absent before the first one.',
                ["channel", "topic"],
                deliveries,
            ),
        ]

    def _last_deliveries(self, session: Session) -> dict[tuple[str, ...], float]:
        found: dict[tuple[str, ...], float] = {}
        for channel in CHANNELS:  # each one an index lookup (see migration 0010)
            last = session.execute(
                select(func.max(Delivery.received_at)).where(Delivery.channel == channel)
            ).scalar()
            if last is not None:
                found[(channel, ANY_TOPIC)] = _unix(last)
        for channel in TOPIC_CHANNELS:
            for topic in self.topics:
                last = session.execute(
                    select(func.max(Delivery.received_at)).where(
                        Delivery.channel == channel, Delivery.topic_arn == topic
                    )
                ).scalar()
                if last is not None:
                    found[(channel, topic)] = _unix(last)
        return found


def _family(
    name: str, doc: str, labels: list[str], series: dict[tuple[str, ...], float] | dict
) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, value in sorted(series.items()):
        family.add_metric(list(key), float(value))
    return family


def _unix(moment: datetime | str) -> float:
    if isinstance(moment, str):  # aggregates bypass the column type on SQLite
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _brief(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
