"""Nothing lost in a storm: bursts, outages, rate-limit storms and bad credentials, at defaults.

Jira and Slack are the HTTP stand-ins, enforcing their documented limits on
the test clock (Jira at opsbot's default budget, Slack one message a second
per channel); the worker is the production one with its default batch and
limits; the clock jumps from one due row to the next.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from opsbot.config import Settings
from opsbot.db.models import OutboxRow
from opsbot.jira.client import fingerprint_label
from opsbot.outbox.worker import OutboxWorker
from opsbot.runtime import Runtime
from tests.fakes import jira_api, slack_api
from tests.fakes.jira_api import FakeJira
from tests.fakes.slack_api import FakeSlack
from tests.support.clock import Clock
from tests.support.jira import incidents, jira_settings, write_config
from tests.support.outbox import app_worker, next_due, run_until, run_until_idle, states
from tests.support.slack import slack_settings
from tests.support.sns import alarm_message, notify

DEFAULT_JIRA_RATE = Settings.model_fields["jira_requests_per_second"].default


@pytest.fixture
def jira(clock: Clock) -> Iterator[FakeJira]:
    fake = FakeJira()
    fake.clock = lambda: clock.now.timestamp()
    fake.rate_limit = DEFAULT_JIRA_RATE  # Jira would refuse anything over opsbot's budget
    with jira_api.serve(fake) as served:
        yield served


@pytest.fixture
def slack(clock: Clock) -> Iterator[FakeSlack]:
    fake = FakeSlack(clock=lambda: clock.now.timestamp(), post_limit=True)
    with slack_api.serve(fake) as served:
        yield served


@pytest.fixture
def desk(
    settings: Settings,
    jira: FakeJira,
    slack: FakeSlack,
    make_app: Callable[[Settings], Flask],
    config_path: Any,
) -> Flask:
    write_config(config_path)
    wired = jira_settings(settings, jira, jira_requests_per_second=DEFAULT_JIRA_RATE)
    return make_app(slack_settings(wired, slack))


@pytest.fixture
def drt(desk: Flask) -> Runtime:
    runtime: Runtime = desk.extensions["opsbot"]
    return runtime


@pytest.fixture
def work(drt: Runtime) -> OutboxWorker:
    return app_worker(drt, batch=OutboxWorker.__init__.__kwdefaults__["batch"])


def fire(desk: Flask, signer: Any, clock: Clock, n: int) -> None:
    """Send ``n`` distinct alarms at one moment, each a new incident."""
    client = desk.test_client()
    for i in range(n):
        assert notify(client, signer, clock, alarm_message(f"Disk-{i:03d}")).status_code == 200


def kill_mid_delivery(work: OutboxWorker, drt: Runtime, clock: Clock) -> list[Any]:
    """Claim the next due rows and abandon them, as a worker killed with -9 would."""
    due = next_due(drt)
    assert due is not None
    clock.now = max(clock.now, due)
    return work.claim()


def assert_exactly_once(drt: Runtime, jira: FakeJira, slack: FakeSlack, n: int) -> None:
    found = incidents(drt)
    assert len(found) == n
    wanted = {fingerprint_label(i.fingerprint) for i in found}
    labels = Counter(x for issue in jira.created() for x in issue.fields["labels"] if x in wanted)
    assert len(jira.created()) == n and set(labels.values()) == {1} and len(labels) == n
    assert {i.jira_key for i in found} == {issue.key for issue in jira.created()}
    cards = slack.cards("C0OPS")
    assert len(cards) == n and len({c.ts for c in cards}) == n
    assert {i.slack_ts for i in found} == {c.ts for c in cards}
    assert states(drt) == Counter({("jira", "done"): n, ("slack", "done"): n})


@pytest.mark.parametrize("n", [40, 60])
def test_a_burst_gets_every_card_and_ticket_at_the_floor_the_budgets_allow(
    desk, drt, work, jira, slack, signer, clock, n
) -> None:
    start = clock.now
    fire(desk, signer, clock, n)
    run_until_idle(work, drt, clock, timedelta(minutes=10))
    assert_exactly_once(drt, jira, slack, n)
    assert jira.rate_limited == 0 and slack.rate_limited == 0  # within both limits throughout
    # one card a second per channel; a create costs 2 of the 5 requests a second (bucket of 5)
    card_floor = n - 1
    ticket_floor = (2 * n - DEFAULT_JIRA_RATE) / DEFAULT_JIRA_RATE
    assert (clock.now - start).total_seconds() <= max(card_floor, ticket_floor) + 1


def test_a_burst_of_500_incidents_loses_nothing(
    desk, drt, work, jira, slack, signer, clock
) -> None:
    fire(desk, signer, clock, 500)
    run_until_idle(work, drt, clock, timedelta(minutes=15))
    assert_exactly_once(drt, jira, slack, 500)
    assert jira.rate_limited == 0 and slack.rate_limited == 0


def test_a_six_hour_jira_outage_loses_nothing(desk, drt, work, jira, slack, signer, clock) -> None:
    jira.outage_until = (clock.now + timedelta(hours=6)).timestamp()
    fire(desk, signer, clock, 6)
    run_until(work, drt, clock, clock.now + timedelta(hours=6))
    assert states(drt)[("jira", "pending")] == 6 and not jira.created()
    assert kill_mid_delivery(
        work, drt, clock
    )  # kill -9 as the outage ends: these leases must expire first
    run_until_idle(work, drt, clock, timedelta(minutes=30))  # the backoff is capped at 15 min
    assert_exactly_once(drt, jira, slack, 6)


def test_a_two_hour_slack_429_storm_loses_nothing(
    desk, drt, work, jira, slack, signer, clock
) -> None:
    slack.storm_until = (clock.now + timedelta(hours=2)).timestamp()
    slack.storm_retry_after = 60
    fire(desk, signer, clock, 6)
    run_until(work, drt, clock, clock.now + timedelta(hours=2))
    assert states(drt)[("slack", "pending")] == 6 and not slack.cards()
    assert {r for r in states(drt)} == {("jira", "done"), ("slack", "pending")}
    with drt.sessions() as session:
        assert set(session.scalars(select(OutboxRow.attempts))) == {0}  # waits are not attempts
    assert kill_mid_delivery(work, drt, clock)  # kill -9 as the storm ends
    run_until_idle(work, drt, clock, timedelta(minutes=10))
    assert_exactly_once(drt, jira, slack, 6)


def test_bad_jira_credentials_for_three_hours_then_fixed(
    desk, drt, work, jira, slack, signer, clock
) -> None:
    jira.refuse_auth_until = (clock.now + timedelta(hours=3)).timestamp()
    fire(desk, signer, clock, 10)
    run_until(work, drt, clock, clock.now + timedelta(hours=3) - timedelta(seconds=1))
    assert states(drt)[("jira", "pending")] == 10
    status = desk.test_client().get("/status").get_json()
    assert status["integrations"]["jira"]["state"] == "stopped"
    assert "401" in status["integrations"]["jira"]["detail"]
    assert desk.test_client().get("/readyz").status_code == 200  # intake stays in service
    probes = [c for c in jira.calls if c[0] == "POST"]
    assert len(probes) <= 3 * 60 + 1  # one probe a minute, not every row every time
    assert kill_mid_delivery(work, drt, clock)  # kill -9 as the credentials are fixed
    run_until_idle(work, drt, clock, timedelta(minutes=10))
    assert_exactly_once(drt, jira, slack, 10)
    status = desk.test_client().get("/status").get_json()
    assert status["integrations"]["jira"]["state"] == "ok"


@pytest.mark.parametrize("after_call", [False, True])
def test_a_worker_killed_mid_delivery_still_delivers_exactly_once(
    desk, drt, work, jira, slack, signer, clock, after_call
) -> None:
    fire(desk, signer, clock, 12)
    claimed = [i for i in work.claim() if i.target == "jira"]  # then "kill -9"
    assert claimed
    if after_call:  # the ticket was created, the answer never recorded
        work.senders["jira"].send(claimed[0])
        assert len(jira.created()) == 1
    run_until_idle(work, drt, clock, timedelta(minutes=15))
    assert_exactly_once(drt, jira, slack, 12)
