"""The outbox worker: skipped integrations, retries with Retry-After, dead letters, results."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from opsbot.config import ConfigError, Settings, load_settings
from opsbot.core.effects import Effect
from opsbot.db import store
from opsbot.db.models import Incident, OutboxRow
from opsbot.outbox.ports import OutboxItem, PermanentFailure, RetryLater, Sent, Wait
from opsbot.outbox.queue import queue_effects
from opsbot.outbox.worker import OutboxWorker, backoff_seconds
from tests.support.sns import alarm_message, notify


class RecordingSender:
    """A sender that records what it was asked to send and answers from a script."""

    def __init__(self, target: str, *answers: object) -> None:
        self.target = target
        self.answers = list(answers)
        self.calls: list[OutboxItem] = []

    def send(self, item: OutboxItem) -> Sent:
        self.calls.append(item)
        answer = self.answers.pop(0) if self.answers else Sent()
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, Sent)
        return answer


def rows(rt, target: str | None = None) -> list[OutboxRow]:
    with rt.sessions() as s:
        stmt = select(OutboxRow).order_by(OutboxRow.id)
        if target:
            stmt = stmt.where(OutboxRow.target == target)
        return list(s.execute(stmt).scalars())


def worker(rt, clock, *senders, max_attempts: int = 12) -> OutboxWorker:
    return OutboxWorker(
        rt.sessions,
        {s.target: s for s in senders},
        metrics=rt.metrics,
        max_attempts=max_attempts,
        clock=clock,
        rng=lambda: 0.5,
    )


@pytest.fixture
def opened(client, signer, clock, rt) -> None:
    assert notify(client, signer, clock, alarm_message()).status_code == 200


def test_rows_of_unconfigured_integrations_are_skipped_not_failed(rt, clock, opened) -> None:
    slack = RecordingSender("slack")
    assert worker(rt, clock, slack).run_once() == 1
    assert [r.state for r in rows(rt, "jira")] == ["skipped"]
    assert [r.state for r in rows(rt, "slack")] == ["done"]
    assert [c.kind for c in slack.calls] == ["post"]
    assert rt.metrics.value("opsbot_outbox_total", target="jira", outcome="skipped") == 1


def test_a_successful_send_stores_what_the_sender_learned(rt, clock, opened) -> None:
    slack = RecordingSender("slack", Sent({"slack_ts": "1700000000.000100", "slack_channel": "C1"}))
    worker(rt, clock, slack).run_once()
    with rt.sessions() as s:
        incident = s.execute(select(Incident)).scalar_one()
    assert (incident.slack_ts, incident.slack_channel) == ("1700000000.000100", "C1")


def test_retry_after_is_honoured_and_nothing_is_lost(rt, clock, opened) -> None:
    slack = RecordingSender("slack", RetryLater("rate limited", retry_after=5), Sent())
    w = worker(rt, clock, slack)
    w.run_once()
    [row] = rows(rt, "slack")
    assert row.state == "pending" and row.due_at == clock.now + timedelta(seconds=5)
    assert row.last_error == "rate limited" and row.attempts == 1
    clock.advance(seconds=4)
    assert w.run_once() == 0  # not due yet
    clock.advance(seconds=1)
    assert w.run_once() == 1
    assert [r.state for r in rows(rt, "slack")] == ["done"] and len(slack.calls) == 2


def test_unexpected_errors_back_off_exponentially(rt, clock, opened) -> None:
    slack = RecordingSender("slack", RuntimeError("boom"), RuntimeError("boom"))
    w = worker(rt, clock, slack)
    w.run_once()
    first = rows(rt, "slack")[0].due_at - clock.now
    clock.advance(seconds=first.total_seconds())
    w.run_once()
    second = rows(rt, "slack")[0].due_at - clock.now
    assert second == 2 * first
    assert "RuntimeError: boom" in (rows(rt, "slack")[0].last_error or "")


def test_permanent_failures_are_dead_lettered_with_the_reason(rt, clock, opened) -> None:
    slack = RecordingSender("slack", PermanentFailure("channel_not_found"))
    worker(rt, clock, slack).run_once()
    [row] = rows(rt, "slack")
    assert row.state == "dead" and row.last_error == "channel_not_found"
    assert rt.metrics.value("opsbot_outbox_total", target="slack", outcome="dead") == 1


def test_rows_die_after_the_attempt_limit(rt, clock, opened) -> None:
    slack = RecordingSender("slack", *[RetryLater("down", retry_after=1)] * 3)
    w = worker(rt, clock, slack, max_attempts=3)
    for _ in range(3):
        w.run_once()
        clock.advance(seconds=1)
    [row] = rows(rt, "slack")
    assert row.state == "dead" and "gave up after 3 failed calls" in (row.last_error or "")


def test_an_abandoned_claim_is_taken_again_after_its_lease(rt, clock, opened) -> None:
    w = worker(rt, clock, RecordingSender("slack"))
    claimed = w.claim()  # the worker "dies" before delivering
    assert [i.kind for i in claimed] == ["post"]
    assert w.claim() == []
    clock.advance(minutes=6)
    assert [i.kind for i in w.claim()] == ["post"]


def test_an_update_during_a_send_is_not_swallowed(client, signer, clock, rt, opened) -> None:
    slack = RecordingSender("slack")
    w = worker(rt, clock, slack)
    w.run_once()  # the post
    clock.advance(seconds=1)
    notify(client, signer, clock, alarm_message())
    clock.advance(seconds=11)
    [item] = w.claim()  # the coalesced update is now in flight
    notify(client, signer, clock, alarm_message())  # a repeat arrives meanwhile
    pending = [r for r in rows(rt, "slack") if r.state == "pending"]
    assert len(pending) == 1 and pending[0].id != item.id


def test_backoff_is_capped_and_jittered() -> None:
    assert backoff_seconds(1, lambda: 0.0) == 1.0
    assert backoff_seconds(1, lambda: 1.0) == 2.0
    assert backoff_seconds(30, lambda: 1.0) == 15 * 60


def test_waits_are_never_charged_and_keep_their_reserved_slot(rt, clock, opened) -> None:
    waits = [Wait("budget spent", 1, reserved=True)] * 30
    slack = RecordingSender("slack", *waits, Sent())
    w = worker(rt, clock, slack, max_attempts=3)
    for _ in range(30):
        w.run_once()
        [row] = rows(rt, "slack")
        assert (row.state, row.attempts) == ("pending", 0)
        assert row.reserved_slot == row.due_at == clock.now + timedelta(seconds=1)
        clock.advance(seconds=1)
    w.run_once()
    [row] = rows(rt, "slack")
    assert (row.state, row.attempts, row.reserved_slot) == ("done", 0, None)
    assert slack.calls[-1].reserved_slot == clock.now  # the sender saw its slot


def test_the_failed_call_limit_at_and_past_it(rt, clock, opened) -> None:
    slack = RecordingSender("slack", *[RetryLater("down", retry_after=1)] * 3)
    w = worker(rt, clock, slack, max_attempts=3)
    for failed in (1, 2):
        w.run_once()
        assert [(r.state, r.attempts) for r in rows(rt, "slack")] == [("pending", failed)]
        clock.advance(seconds=1)
    w.run_once()
    assert [r.state for r in rows(rt, "slack")] == ["dead"]


@pytest.mark.parametrize(("age", "state"), [(timedelta(hours=24, seconds=-1), "pending"),
                                            (timedelta(hours=24), "dead")])  # fmt: skip
def test_a_failing_row_gives_up_at_the_default_age(rt, clock, opened, age, state) -> None:
    slack = RecordingSender("slack", RetryLater("503"))
    w = worker(rt, clock, slack)
    clock.advance(seconds=age.total_seconds())
    w.run_once()
    [row] = rows(rt, "slack")
    assert row.state == state
    if state == "dead":
        assert row.last_error == "gave up after 24.0 h: 503"


def test_a_waiting_row_ages_out_but_a_held_one_does_not(rt, clock, opened) -> None:
    slack = RecordingSender("slack", Wait("creds", 60, hold=True), Wait("429", 30))
    w = worker(rt, clock, slack)
    clock.advance(hours=30)
    w.run_once()
    [row] = rows(rt, "slack")
    assert (row.state, row.attempts, row.last_error) == ("pending", 0, "creds")
    clock.advance(seconds=60)
    w.run_once()
    assert rows(rt, "slack")[0].state == "dead"
    assert rows(rt, "slack")[0].last_error == "gave up after 30.0 h: 429"


def test_an_abandoned_lease_counts_as_one_failed_call(rt, clock, opened) -> None:
    w = worker(rt, clock, RecordingSender("slack"))
    w.claim()
    clock.advance(minutes=6)
    [item] = [i for i in w.claim() if i.target == "slack"]
    assert item.attempts == 1


def test_first_cards_and_tickets_are_claimed_before_any_update(client, signer, clock, rt) -> None:
    for i in range(4):
        notify(client, signer, clock, alarm_message(f"A-{i}"))
    with rt.sessions.begin() as s:
        incident_ids = list(s.scalars(select(Incident.id)))
        older = clock.now - timedelta(days=1)  # updates waiting far longer than the new rows
        effects = [Effect("jira", "digest"), Effect("slack", "update")]
        for incident_id in incident_ids:
            queue_effects(s, incident_id, effects, older)
    w = worker(rt, clock, RecordingSender("slack"), RecordingSender("jira"))
    w.batch = 8
    assert sorted(i.kind for i in w.claim()) == ["create"] * 4 + ["post"] * 4
    assert sorted(i.kind for i in w.claim()) == ["digest"] * 4 + ["update"] * 4


def test_a_replayed_dead_row_is_delivered_afresh(rt, clock, opened) -> None:
    slack = RecordingSender("slack", PermanentFailure("channel_not_found"), Sent())
    w = worker(rt, clock, slack)
    w.run_once()
    [dead] = rows(rt, "slack")
    with rt.sessions.begin() as s:
        assert store.replay_outbox(s, [dead.id], clock.now) == [dead.id]
        assert store.replay_outbox(s, [dead.id], clock.now) == []  # no longer dead
    [row] = rows(rt, "slack")
    assert (row.state, row.attempts, row.last_error) == ("pending", 0, "channel_not_found")
    w.run_once()
    assert rows(rt, "slack")[0].state == "done"


@pytest.mark.parametrize(("raw", "hours"), [("90m", 1.5), ("2d", 48.0), ("3600s", 1.0)])
def test_the_give_up_age_is_a_duration_setting(monkeypatch, raw, hours) -> None:
    monkeypatch.setenv("OPSBOT_OUTBOX_GIVE_UP_AFTER", raw)
    assert load_settings().outbox_give_up_after == timedelta(hours=hours)


@pytest.mark.parametrize("raw", ["soon", "0s", "3600"])
def test_a_bad_give_up_age_is_refused_by_name(monkeypatch, raw) -> None:
    monkeypatch.setenv("OPSBOT_OUTBOX_GIVE_UP_AFTER", raw)
    with pytest.raises(ConfigError, match="OPSBOT_OUTBOX_GIVE_UP_AFTER"):
        load_settings()


def test_defaults_give_up_after_a_day_and_150_failed_calls() -> None:
    defaults = Settings.model_fields
    assert defaults["outbox_give_up_after"].default == timedelta(hours=24)
    assert defaults["outbox_max_attempts"].default == 150
