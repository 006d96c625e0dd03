"""Escalation: reminders in the thread, escalation to a second channel, once per replica set."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from opsbot.config import ConfigError
from opsbot.core.escalation import EscalationPolicy, Facts, Kind, Step, bump, decide
from opsbot.db.models import AuditEntry, Incident, OutboxRow
from opsbot.incidents.escalation import escalate_incidents, parse_escalation
from opsbot.jobs import run_singleton
from tests.support.outbox import drain
from tests.support.slack import ops, slack_settings
from tests.support.sns import alarm_message, notify

YAML = """
accounts:
  "111122223333": {name: prod-cim, environment: prod}
rules:
  - match: {alarm_name: "High-CPU"}
    priority: P2
slack:
  roles: {operator: [U0OPS]}
escalation:
  mention: S0ONCALL
  channel: "#ops-escalations"
  P1: {remind_every: 10m}
  P2: {remind_every: 10m, escalate_after: 25m}
"""


@pytest.fixture
def config_path(tmp_path):
    path = tmp_path / "opsbot.yaml"
    path.write_text(YAML)
    return path


def tick(rt, clock, minutes: float = 0) -> int | None:
    clock.advance(minutes=minutes)
    policy = parse_escalation(rt.policy.extra)
    return run_singleton(rt, "escalate_incidents", escalate_incidents(policy))


def settle(rt, clock) -> None:
    for _ in range(4):
        drain(rt)
        clock.advance(seconds=1)


def test_unacknowledged_incident_is_reminded_then_escalated_until_acknowledged(
    srt, sclient, fake, signer, clock
) -> None:
    incident_id = notify(sclient, signer, clock, alarm_message()).json["alerts"][0]["incident_id"]
    settle(srt, clock)
    (card,) = fake.cards("C0OPS")
    assert tick(srt, clock, minutes=5) == 0
    assert tick(srt, clock, minutes=5) == 1
    settle(srt, clock)
    assert fake.thread(card.ts)[-1].startswith(
        f"<!subteam^S0ONCALL> Reminder: P2 incident {incident_id} is still firing"
    )
    assert tick(srt, clock, minutes=1) == 0  # not yet due again
    assert tick(srt, clock, minutes=15) == 1  # 26 min old: escalate
    settle(srt, clock)
    with srt.sessions() as s:
        assert s.get(Incident, incident_id).priority == "P1"
        jira = (
            s.execute(
                select(OutboxRow.payload).where(
                    OutboxRow.target == "jira", OutboxRow.kind == "priority"
                )
            )
            .scalars()
            .all()
        )
    assert jira == [{"from": "P2", "to": "P1"}]
    (notice,) = fake.cards("C0ESC")
    assert notice.text.startswith(f"<!subteam^S0ONCALL> Escalated: incident {incident_id}")
    assert "priority P2 → P1" in notice.text
    assert card.text.startswith("P1 ")  # the card re-rendered with the new priority
    assert tick(srt, clock, minutes=10) == 1  # P1 reminders continue
    ops(sclient, fake, f"ack {incident_id}")
    assert tick(srt, clock, minutes=30) == 0
    settle(srt, clock)
    reminders = [t for t in fake.thread(card.ts) if "Reminder" in t]
    assert len(reminders) == 2


def test_escalation_notice_mentions_the_group_and_shows_the_title_as_written(
    srt, sclient, fake, signer, clock
) -> None:
    incident_id = notify(sclient, signer, clock, alarm_message()).json["alerts"][0]["incident_id"]
    with srt.sessions.begin() as s:
        s.get(Incident, incident_id).title = "High-CPU <!here> <https://evil.example|runbook>"
    assert tick(srt, clock, minutes=26) == 1
    settle(srt, clock)
    (notice,) = fake.cards("C0ESC")
    assert notice.text == (
        f"<!subteam^S0ONCALL> Escalated: incident {incident_id} (High-CPU &lt;!here&gt; "
        "&lt;https://evil.example|runbook&gt;) is unacknowledged; priority P2 → P1."
    )


def test_no_reminder_once_the_alarm_stopped_firing(srt, sclient, fake, signer, clock) -> None:
    notify(sclient, signer, clock, alarm_message())
    with srt.sessions.begin() as s:
        s.execute(select(Incident)).scalar_one().last_alert_status = "resolved"
    assert tick(srt, clock, minutes=30) == 0


@pytest.mark.postgres
def test_two_processes_send_the_reminder_once(
    srt, sclient, fake, signer, clock, settings, make_app
) -> None:
    other = make_app(slack_settings(settings, fake)).extensions["opsbot"]
    notify(sclient, signer, clock, alarm_message())
    clock.advance(minutes=11)
    barrier = threading.Barrier(2)
    results: list[int | None] = []

    def run(rt) -> None:
        barrier.wait()
        results.append(tick(rt, clock))

    threads = [threading.Thread(target=run, args=(rt,)) for rt in (srt, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    results.append(tick(other, clock))
    assert sorted(r or 0 for r in results) == [0, 0, 1]
    with srt.sessions() as s:
        reminded = s.execute(select(AuditEntry).where(AuditEntry.action == "incident.reminded"))
        assert len(reminded.all()) == 1


def test_pure_policy_decides_remind_and_escalate(clock) -> None:
    step = Step(remind_every=timedelta(minutes=10), escalate_after=timedelta(minutes=30))
    policy = EscalationPolicy({"P1": step})
    facts = Facts("open", "P1", True, clock.now, None, False)
    assert decide(facts, policy, clock.now + timedelta(minutes=9)) is None
    assert decide(facts, policy, clock.now + timedelta(minutes=10)).kind is Kind.REMIND
    assert decide(facts, policy, clock.now + timedelta(minutes=30)).kind is Kind.ESCALATE
    acked = Facts("acknowledged", "P1", True, clock.now, None, False)
    assert decide(acked, policy, clock.now + timedelta(hours=1)) is None
    assert (
        decide(
            Facts("open", "P3", True, clock.now, None, False),
            policy,
            clock.now + timedelta(hours=1),
        )
        is None
    )
    assert (bump("P3"), bump("P1")) == ("P2", "P1")


@pytest.mark.parametrize(
    ("escalation", "message"),
    [
        ([1], "escalation: expected a mapping"),
        ({"P9": {"remind_every": "5m"}}, "escalation.P9: unknown key"),
        ({"P1": {"remind_every": "soon"}}, "escalation.P1.remind_every: 'soon' is not a duration"),
        ({"P1": {"remind_evry": "5m"}}, "escalation.P1.remind_evry: unknown key"),
        ({"P1": {}}, "escalation.P1: give remind_every, escalate_after or both"),
        ({"P1": "5m"}, "escalation.P1: expected a mapping"),
        ({"mention": 5, "P1": {"remind_every": "5m"}}, "escalation.mention: expected text"),
        ({"P1": {"remind_every": "0m"}}, "escalation.P1.remind_every: must be longer than 0s"),
    ],
)
def test_escalation_config_errors_are_precise(escalation, message) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_escalation({"escalation": escalation})
    assert message in str(caught.value)


def test_opsbot_check_reports_escalation_errors(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from opsbot.cli import main

    path = tmp_path / "opsbot.yaml"
    path.write_text("escalation:\n  P1: {remind_every: never}\n")
    monkeypatch.setenv("OPSBOT_CONFIG", str(path))
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code != 0
    assert "escalation.P1.remind_every" in result.output
