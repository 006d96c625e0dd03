"""The incident card: one post per incident in its routed channel, updated in place."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

import handlers
from handlers.base import Inbound
from opsbot.db.models import Incident, OutboxRow
from opsbot.incidents import service
from tests.support.outbox import drain
from tests.support.sns import alarm_message, notify


def incident(rt, incident_id: int) -> Incident:
    with rt.sessions() as s:
        return s.get(Incident, incident_id)


def buttons(message) -> list[str]:
    actions = [b for b in message.blocks if b["type"] == "actions"]
    return [e["action_id"] for e in actions[0]["elements"]] if actions else []


def test_signed_alarm_posts_one_card_then_updates_it_and_its_thread(
    srt, sclient, fake, signer, clock
) -> None:
    opened = notify(sclient, signer, clock, alarm_message())
    incident_id = opened.json["alerts"][0]["incident_id"]
    drain(srt)
    (card,) = fake.cards("C0OPS")
    assert card.text.startswith("P")
    assert "High-CPU" in json_text(card.blocks)
    assert buttons(card) == ["incident_ack", "incident_resolve", "incident_silence"]
    row = incident(srt, incident_id)
    assert (row.slack_channel, row.slack_ts) == ("C0OPS", card.ts)

    clock.advance(seconds=30)
    notify(sclient, signer, clock, alarm_message(when=clock.now))
    clock.advance(seconds=11)
    drain(srt)
    assert len(fake.cards()) == 1 and card.updates == 1
    assert "*Count*\n2" in json_text(card.blocks)

    clock.advance(minutes=5)
    notify(sclient, signer, clock, alarm_message(state="OK", old="ALARM", when=clock.now))
    drain(srt)
    assert len(fake.cards()) == 1 and card.updates == 2
    assert "Resolved" in json_text(card.blocks)
    assert buttons(card) == []
    assert any(text.startswith("Resolved") for text in fake.thread(card.ts))


def test_card_shows_the_jira_link_and_the_routed_runbook(srt, fake, clock, settings) -> None:
    from opsbot.slack.client import incident_card

    row = Incident(
        id=7,
        status="open",
        priority="P1",
        title="Disk-Full",
        summary="disk at 98%",
        environment="prod",
        account_id="111122223333",
        account_name="prod-cim",
        region="eu-west-1",
        resource="i-0abc",
        count=3,
        flapping=False,
        first_seen=clock.now,
        last_seen=clock.now,
        acknowledged_by=None,
        owner=None,
        jira_key="OPS-12",
        route={"runbook": "free-disk-space"},
    )
    blocks = incident_card(row, jira_url="https://jira.example.com/")
    text = json_text(blocks)
    assert "<https://jira.example.com/browse/OPS-12|OPS-12>" in text
    assert "prod · prod-cim (111122223333)" in text and "eu-west-1" in text
    actions = blocks[-2]["elements"]
    assert [(b["action_id"], b["value"]) for b in actions] == [
        ("incident_ack", "7"),
        ("incident_resolve", "7"),
        ("incident_silence", "7"),
        ("runbook_run", "7"),
        ("open_jira", "OPS-12"),
    ]
    assert actions[-1]["url"] == "https://jira.example.com/browse/OPS-12"
    row.status, row.acknowledged_by = "acknowledged", "ana (U0OPS)"
    acked = [b["action_id"] for b in incident_card(row, jira_url=None)[-2]["elements"]]
    assert acked == ["incident_resolve", "incident_silence", "runbook_run"]


@pytest.mark.timeout(400)  # 10,000 real ingest transactions; slow on a busy PostgreSQL
def test_a_storm_of_ten_thousand_deliveries_is_one_post_and_bounded_updates(
    srt, fake, clock
) -> None:
    alerts = handlers.parse(
        Inbound(
            text=alarm_message(), subject=None, topic_arn="t", message_id="m", received_at=clock.now
        )
    )
    for n in range(10_000):
        service.ingest(
            srt.sessions,
            delivery=service.DeliveryIn("sns", str(uuid.uuid4()), "push", "Notification", "{}"),
            alerts=alerts,
            policy=srt.policy,
            now=clock.now,
            silences=srt.silences,
        )
        clock.advance(seconds=0.1)
        if n % 250 == 0:
            drain(srt)
    clock.advance(seconds=11)
    drain(srt)
    assert len(fake.called("chat.postMessage")) == 1
    updates = len(fake.called("chat.update"))
    assert 10 <= updates <= 1000 / 10 + 2
    (card,) = fake.cards()
    assert "*Count*\n10000" in json_text(card.blocks)
    with srt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == 1


def test_rate_limited_sends_wait_for_retry_after_and_none_is_lost(
    srt, sclient, fake, signer, clock
) -> None:
    fake.rate_limit("chat.postMessage", times=1, retry_after=30)
    notify(sclient, signer, clock, alarm_message())
    drain(srt)
    assert fake.cards() == []
    with srt.sessions() as s:
        row = s.execute(select(OutboxRow).where(OutboxRow.kind == "post")).scalar_one()
    assert row.state == "pending" and (row.due_at - clock.now).total_seconds() == 30
    clock.advance(seconds=29)
    drain(srt)
    assert fake.cards() == []
    clock.advance(seconds=1)
    drain(srt)
    assert len(fake.cards()) == 1


def test_at_most_one_post_per_channel_per_second(srt, sclient, fake, signer, clock) -> None:
    for name in ("A", "B", "C"):
        notify(sclient, signer, clock, alarm_message(name=name))
    drain(srt)
    assert len(fake.cards()) == 1
    clock.advance(seconds=1)
    drain(srt)
    assert len(fake.cards()) == 2
    clock.advance(seconds=1)
    drain(srt)
    assert len(fake.cards()) == 3


def test_update_budget_is_shared_through_the_database(srt, clock) -> None:
    from opsbot.db.session import transaction
    from opsbot.outbox.budget import take
    from opsbot.slack.sync import UPDATE_RATE

    rate, burst = UPDATE_RATE

    def update_slot() -> float:
        with transaction(srt.sessions) as s:
            return take(s, "slack:update", rate=rate, capacity=burst, cost=1, now=clock.now)

    waits = [update_slot() for _ in range(52)]
    # 50 at once (Slack's Tier 3), then one slot every 1.2 s handed out ahead
    assert waits[:50] == [0.0] * 50 and waits[50:] == pytest.approx([1.2, 2.4])
    clock.advance(seconds=60)
    assert update_slot() == 0.0  # the minute refilled what the reservations left


def json_text(blocks) -> str:
    import json

    return json.dumps(blocks, ensure_ascii=False).replace("\\n", "\n")
