"""Jira faults: outages, lost answers, rate limits, rejected fields, bad credentials, the budget."""

from __future__ import annotations

import threading
import uuid

import handlers
from handlers.base import Inbound
from opsbot.db.session import make_engine, make_sessionmaker
from opsbot.incidents import service
from opsbot.jira.budget import take_budget
from opsbot.jira.sync import JiraSync
from tests.fakes.jira_api import FakeJira, serve
from tests.support.jira import incidents, jira_rows, jira_settings, worker, write_config
from tests.support.outbox import drain
from tests.support.sns import alarm_message, notify

FAKE_JIRA_ON_TEST_CLOCK = True  # the fake's outages and rate windows follow the test clock


def ingest(rt, clock, name: str = "High-CPU") -> None:
    message = alarm_message(name, when=clock.now)
    alerts = handlers.parse(Inbound(text=message, message_id=name, received_at=clock.now))
    delivery = service.DeliveryIn("sns", str(uuid.uuid4()), "push", "Notification", message)
    service.ingest(rt.sessions, delivery=delivery, alerts=alerts, policy=rt.policy, now=clock.now)


def test_a_ten_minute_outage_delays_but_never_loses_or_doubles(rt, clock, fake) -> None:
    fake.outage_until = clock.now.timestamp() + 600
    work = worker(rt, clock)
    for n in range(50):
        ingest(rt, clock, f"Disk-{n:02d}")
        clock.advance(seconds=10)
        if n % 10 == 9:
            drain(work)
    assert fake.issues == {}
    assert {r.attempts > 0 for r in jira_rows(rt)} == {True}
    for _ in range(12):
        clock.advance(seconds=120)
        drain(work)
    assert len(fake.issues) == 50
    labels = [ticket.fields["labels"][1] for ticket in fake.created()]
    assert len(set(labels)) == 50
    assert all(i.jira_key for i in incidents(rt))
    assert {r.state for r in jira_rows(rt)} == {"done"}


def test_a_lost_create_answer_is_adopted_not_duplicated(rt, clock, fake) -> None:
    fake.lose_creates = 1
    ingest(rt, clock)
    work = worker(rt, clock)
    drain(work)
    assert len(fake.issues) == 1
    assert incidents(rt)[0].jira_key is None
    clock.advance(seconds=5)
    drain(work)
    assert len(fake.issues) == 1
    assert incidents(rt)[0].jira_key == "OPS-1"


def test_search_lag_is_waited_out_before_a_second_create(rt, clock, fake) -> None:
    fake.lose_creates = 1
    fake.search_lag = 3600  # the new ticket is not searchable yet
    ingest(rt, clock)
    work = worker(rt, clock)
    drain(work)
    for _ in range(4):  # 20 s, inside the 30 s window: search again, never create
        clock.advance(seconds=5)
        drain(work)
    assert len(fake.issues) == 1
    fake.search_lag = 0
    clock.advance(seconds=5)
    drain(work)
    assert len(fake.issues) == 1
    assert incidents(rt)[0].jira_key == "OPS-1"


def test_retry_after_five_seconds_is_honoured(rt, clock, fake) -> None:
    fake.fail(429, times=1, retry_after="5")
    ingest(rt, clock)
    work = worker(rt, clock)
    assert work.run_once() == 1
    [row] = jira_rows(rt)
    assert row.state == "pending"
    assert (row.due_at - clock.now).total_seconds() == 5.0
    clock.advance(seconds=4.9)
    assert work.run_once() == 0
    clock.advance(seconds=0.1)
    assert work.run_once() == 1
    assert len(fake.issues) == 1


def test_a_field_jira_rejects_is_dead_lettered_with_jiras_text(
    settings, fake, make_app, config_path, clock
) -> None:
    write_config(config_path)
    config_path.write_text(config_path.read_text().replace("P2: High", "P2: Urgent"))
    app = make_app(jira_settings(settings, fake))
    rt = app.extensions["opsbot"]
    ingest(rt, clock)
    drain(worker(rt, clock))
    [row] = jira_rows(rt)
    assert row.state == "dead"
    assert "'Urgent' does not exist" in (row.last_error or "")
    assert rt.metrics.value("opsbot_jira_errors_total", kind="rejected") == 1


def test_bad_credentials_hold_the_rows_and_a_probe_drains_them_once_fixed(
    settings, fake, make_app, config_path, clock
) -> None:
    write_config(config_path)
    app = make_app(jira_settings(settings, fake, jira_token="wrong-token"))
    rt = app.extensions["opsbot"]
    client = app.test_client()
    ingest(rt, clock)
    work = worker(rt, clock)
    drain(work)
    assert client.get("/readyz").status_code == 200  # intake stays in the load balancer
    status = client.get("/status").get_json()["integrations"]["jira"]
    assert status["state"] == "stopped" and "credentials (401)" in status["detail"]
    assert "wrong-token" not in str(status)
    calls = len(fake.calls)
    clock.advance(seconds=59)
    drain(work)
    assert len(fake.calls) == calls  # stopped: Jira is not asked again before the probe
    [row] = jira_rows(rt)
    assert (row.state, row.attempts) == ("pending", 0)  # held, never charged
    fake.token = "wrong-token"  # the administrator fixes the credentials
    clock.advance(seconds=1)
    drain(work)
    assert [(r.state, r.attempts) for r in jira_rows(rt)] == [("done", 0)]
    assert client.get("/status").get_json()["integrations"]["jira"]["state"] == "ok"
    assert 'opsbot_integration_up{target="jira"} 1' in client.get("/metrics").text


def test_the_request_budget_is_shared_by_workers_on_one_database(rt, clock, settings) -> None:
    other = make_engine(settings.database_url)
    try:
        others = make_sessionmaker(other)
        assert take_budget(rt.sessions, rate=2, cost=1, now=clock.now) == 0
        assert take_budget(others, rate=2, cost=1, now=clock.now) == 0
        # short: a slot ahead is handed out, and the next one after it
        assert take_budget(rt.sessions, rate=2, cost=1, now=clock.now) == 0.5
        assert take_budget(others, rate=2, cost=1, now=clock.now) == 1.0
        clock.advance(seconds=1)  # both reserved slots have come; the bucket is empty
        assert take_budget(others, rate=2, cost=1, now=clock.now) == 0.5
        clock.advance(seconds=10)  # refilled to its capacity, no more
        for _ in range(2):
            assert take_budget(rt.sessions, rate=2, cost=1, now=clock.now) == 0
        assert take_budget(rt.sessions, rate=2, cost=1, now=clock.now) == 0.5
    finally:
        other.dispose()


def test_a_spent_budget_defers_the_send(settings, fake, make_app, config_path, clock) -> None:
    write_config(config_path)
    app = make_app(jira_settings(settings, fake, jira_requests_per_second=1.0))
    rt = app.extensions["opsbot"]
    ingest(rt, clock, "A")
    ingest(rt, clock, "B")
    work = worker(rt, clock)
    assert work.run_once() == 2
    assert len(fake.issues) == 1  # the second create waits for the budget
    clock.advance(seconds=2)
    drain(work)
    assert len(fake.issues) == 2


def test_two_workers_never_both_create(
    settings, fake, make_app, config_path, clock, signer
) -> None:
    write_config(config_path)
    fake.latency = 0.2
    apps = [make_app(jira_settings(settings, fake)) for _ in range(2)]
    rts = [a.extensions["opsbot"] for a in apps]
    assert notify(apps[0].test_client(), signer, clock, alarm_message()).status_code == 200
    workers = [worker(r, clock, JiraSync(r)) for r in rts]
    threads = [threading.Thread(target=w.run_once) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    clock.advance(minutes=10)  # any lease expires; a second delivery must adopt, not create
    for w in workers:
        drain(w)
    assert len(fake.issues) == 1


def test_data_center_lost_create_is_found_through_the_old_search(
    settings, make_app, config_path, clock
) -> None:
    write_config(config_path)
    with serve(FakeJira(cloud=False)) as dc:
        dc.lose_creates = 1
        app = make_app(jira_settings(settings, dc, jira_user=None))  # personal access token
        rt = app.extensions["opsbot"]
        ingest(rt, clock)
        work = worker(rt, clock)
        drain(work)
        clock.advance(seconds=5)
        drain(work)
        assert len(dc.issues) == 1
        assert incidents(rt)[0].jira_key == "OPS-1"
        assert ("GET", "/rest/api/2/search") in dc.calls
        rt.integrations["jira"][0].close()


def test_a_gateway_error_after_a_create_applied_does_not_duplicate(rt, clock, fake) -> None:
    fake.lose_creates, fake.lost_status = 1, 502
    ingest(rt, clock)
    work = worker(rt, clock)
    drain(work)
    clock.advance(seconds=5)
    drain(work)
    assert len(fake.issues) == 1
    assert incidents(rt)[0].jira_key == "OPS-1"
