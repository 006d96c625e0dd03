"""Auto-remediation: a rule's runbook runs once per incident, never in prod by default."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from opsbot.db.models import AuditEntry, RunbookRun
from opsbot.jobs import run_singleton
from opsbot.runbooks.jobs import AUTO_ACTOR, auto_remediate, build_runner
from tests.fakes.ssm_api import Script
from tests.support.runbooks import CONFIG, INSTANCE, PROD, SANDBOX
from tests.support.sns import alarm_message, notify

RULES = """
rules:
  - match: {alarm_name: "High-CPU"}
    runbook: collect-diagnostics
    auto: true
"""


@pytest.fixture
def app(settings, make_app, config_path, aws_env):
    config_path.write_text(CONFIG + RULES)
    return make_app(settings)


def runs(rt) -> list[RunbookRun]:
    with rt.sessions() as s:
        return list(s.execute(select(RunbookRun).order_by(RunbookRun.id)).scalars())


def test_auto_remediation_runs_once_per_incident(rt, client, signer, clock, fake_ssm) -> None:
    fake_ssm.add_instance(INSTANCE, Script(("InProgress", "Success"), "load 0.1"))
    notify(client, signer, clock, alarm_message(account=SANDBOX))
    runner = build_runner(rt)
    for _ in range(3):
        assert run_singleton(rt, "auto_remediation", auto_remediate(rt)) in (0, 1)
        runner.run_once()
        clock.advance(seconds=15)
    [run] = runs(rt)
    assert (run.auto, run.requester, run.state) == (True, AUTO_ACTOR, "succeeded")
    assert len(fake_ssm.calls("SendCommand")) == 1
    notify(client, signer, clock, alarm_message(account=SANDBOX, when=clock.now))  # a repeat
    assert run_singleton(rt, "auto_remediation", auto_remediate(rt)) == 0
    assert len(runs(rt)) == 1


def test_auto_remediation_never_runs_in_prod(rt, client, signer, clock, fake_ssm) -> None:
    fake_ssm.add_instance(INSTANCE)
    notify(client, signer, clock, alarm_message(account=PROD))
    assert run_singleton(rt, "auto_remediation", auto_remediate(rt)) == 0
    assert run_singleton(rt, "auto_remediation", auto_remediate(rt)) == 0
    assert runs(rt) == [] and fake_ssm.requests == []
    with rt.sessions() as s:
        refusals = (
            s.execute(select(AuditEntry.detail).where(AuditEntry.action == "runbook.auto_refused"))
            .scalars()
            .all()
        )
    assert len(refusals) == 1 and "never runs automatically in prod" in refusals[0]["reason"]


def test_auto_remediation_is_capped_per_alarm_per_day(
    settings, make_app, config_path, aws_env, signer, clock, fake_ssm
) -> None:
    config_path.write_text(CONFIG + RULES + "reopen_window: 1m\n")
    app = make_app(settings)
    rt, client = app.extensions["opsbot"], app.test_client()
    fake_ssm.add_instance(INSTANCE, Script(("Success",)))
    runner = build_runner(rt)
    for _ in range(4):  # the alarm fires, is fixed and resolves, and fires again later
        notify(client, signer, clock, alarm_message(account=SANDBOX, when=clock.now))
        run_singleton(rt, "auto_remediation", auto_remediate(rt))
        runner.run_once()
        clock.advance(minutes=1)
        ok = alarm_message(account=SANDBOX, state="OK", old="ALARM", when=clock.now)
        notify(client, signer, clock, ok)
        clock.advance(minutes=5)
    assert len({r.incident_id for r in runs(rt)}) == len(runs(rt)) == 3  # per_day defaults to 3
    assert len(fake_ssm.calls("SendCommand")) == 3
    with rt.sessions() as s:
        [refusal] = (
            s.execute(select(AuditEntry.detail).where(AuditEntry.action == "runbook.auto_refused"))
            .scalars()
            .all()
        )
    assert "limit 3" in refusal["reason"]
