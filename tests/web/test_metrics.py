"""GET /metrics: prometheus_client's format, bounded HTTP labels, and the gauges read from the
database at scrape time (outbox by state, last deliveries, job successes, integrations), which
give way to ``opsbot_db_up 0`` when the database is down or slow."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text

from opsbot.config import Settings
from opsbot.db.session import transaction
from opsbot.jobs import run_singleton
from opsbot.outbox.ports import PermanentFailure
from opsbot.outbox.status import record_status
from tests.outbox.test_worker import RecordingSender, worker
from tests.support.db import PG_URL
from tests.support.metrics import names, samples, value
from tests.support.sns import TOPIC, alarm_message, notify

OTHER_TOPIC = "arn:aws:sns:us-east-1:111122223333:someone-elses-topic"


def scrape(client) -> str:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return answer.get_data(as_text=True)


def test_http_latency_has_route_templates_bounded_methods_and_status(client) -> None:
    client.get("/healthz")
    client.get("/api/incidents/4242")  # a templated route
    for path in ("/wp-admin/setup.php", "/.env", "/a/b/c"):
        client.get(path)
    client.open("/healthz", method="PROPFIND")
    body = scrape(client)
    count = "opsbot_http_request_duration_seconds_count"
    assert value(body, count, endpoint="/healthz", method="GET", status="200") == 1
    templated = [
        dict(labels)
        for (name, labels) in samples(body)
        if name == count and dict(labels)["endpoint"].startswith("/api/incidents/")
    ]
    assert templated and all("4242" not in d["endpoint"] for d in templated)
    assert value(body, count, endpoint="unmatched", method="GET", status="404") == 3
    assert value(body, count, endpoint="unmatched", method="other", status="405") == 1
    assert "/wp-admin" not in body and "PROPFIND" not in body


def test_a_scrape_reads_exact_gauges_from_the_database(client, signer, clock, rt) -> None:
    for name in ("A", "B"):
        assert notify(client, signer, clock, alarm_message(name)).status_code == 200
    refusal = PermanentFailure("Slack post failed: channel_not_found")
    worker(
        rt, clock, RecordingSender("slack", refusal, refusal), RecordingSender("jira")
    ).run_once()
    with transaction(rt.sessions) as session:
        record_status(session, "slack", "stopped", "invalid_auth", clock())
        record_status(session, "jira", "ok", "", clock())
    clock.now += timedelta(minutes=2)
    body = scrape(client)
    assert value(body, "opsbot_db_up") == 1
    assert value(body, "opsbot_outbox_rows", target="slack", state="dead") == 2
    assert value(body, "opsbot_outbox_dead", target="slack") == 2
    assert value(body, "opsbot_outbox_dead", target="jira") == 0
    assert value(body, "opsbot_integration_up", target="slack") == 0
    assert value(body, "opsbot_integration_up", target="jira") == 1
    arrived = value(body, "opsbot_last_delivery_timestamp_seconds", channel="push", topic="")
    assert arrived == (clock.now - timedelta(minutes=2)).timestamp()
    # no allow-list: the sender's topic is no label (issue 15), only "any topic"
    assert TOPIC not in body


def test_the_oldest_pending_row_ages_with_the_clock(client, signer, clock) -> None:
    notify(client, signer, clock, alarm_message())
    clock.now += timedelta(seconds=90)
    body = scrape(client)
    assert value(body, "opsbot_outbox_oldest_seconds") == 90
    assert value(body, "opsbot_outbox_rows", target="slack", state="pending") == 1


def test_last_delivery_per_allow_listed_topic(make_app, settings, signer, clock) -> None:
    app = make_app(settings.model_copy(update={"sns_topic_arns": [TOPIC, OTHER_TOPIC]}))
    client = app.test_client()
    notify(client, signer, clock, alarm_message("A"), topic=TOPIC)
    body = scrape(client)
    metric = "opsbot_last_delivery_timestamp_seconds"
    assert value(body, metric, channel="push", topic=TOPIC) == clock.now.timestamp()
    assert value(body, metric, channel="push", topic="") == clock.now.timestamp()
    assert value(body, metric, channel="push", topic=OTHER_TOPIC) is None  # none yet
    assert value(body, metric, channel="sqs", topic="") is None


def test_a_job_records_its_last_success_and_not_its_failures(client, clock, rt) -> None:
    assert run_singleton(rt, "settle_flapping", lambda session, now: 0) == 0
    succeeded = clock.now.timestamp()
    clock.now += timedelta(minutes=5)

    def broken(session, now) -> int:
        raise RuntimeError("the job failed")

    with pytest.raises(RuntimeError):
        run_singleton(rt, "settle_flapping", broken)
    body = scrape(client)
    metric = "opsbot_job_last_success_timestamp_seconds"
    assert value(body, metric, job="settle_flapping") == succeeded


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////nonexistent-opsbot-dir/opsbot.db",
        "postgresql+psycopg://opsbot@127.0.0.1:1/opsbot",  # nothing listens on port 1
    ],
)
def test_metrics_answer_when_the_database_is_down(make_app, settings, url) -> None:
    client = make_app(settings.model_copy(update={"database_url": url})).test_client()
    client.get("/healthz")
    body = scrape(client)
    assert value(body, "opsbot_db_up") == 0
    assert "opsbot_outbox_dead" not in names(body) and "opsbot_incidents" not in names(body)
    count = "opsbot_http_request_duration_seconds_count"
    assert value(body, count, endpoint="/healthz", method="GET", status="200") == 1


@pytest.mark.postgres
def test_a_locked_table_costs_a_scrape_the_statement_timeout_not_a_hang(
    make_app, settings: Settings
) -> None:
    client = make_app(settings.model_copy(update={"db_statement_timeout": 0.5})).test_client()
    locker = create_engine(settings.database_url)
    with locker.connect() as conn:
        conn.execute(text("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE"))
        body = scrape(client)
        conn.rollback()
    locker.dispose()
    assert value(body, "opsbot_db_up") == 0
    assert value(scrape(client), "opsbot_db_up") == 1  # back once the lock is gone
    assert PG_URL
