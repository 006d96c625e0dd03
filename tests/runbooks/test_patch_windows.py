"""Patch windows: cron with a time zone, notice and approval in prod, silences, rate controls."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from opsbot.config import ConfigError, parse_policy
from opsbot.db.models import RunbookRun, SilenceRow
from opsbot.db.session import transaction
from opsbot.jobs import run_singleton
from opsbot.runbooks import service
from opsbot.runbooks.jobs import build_runner
from opsbot.runbooks.patch_windows import parse_windows, tick
from opsbot.runbooks.ssm import SsmRunbooks
from tests.fakes.ssm_api import Script
from tests.support.runbooks import CONFIG, INSTANCE, PROD, load_run, outbox_rows
from tests.support.sns import alarm_message, notify

WINDOWS = """
patch_windows:
  - name: web-prod
    cron: "0 3 * * SUN"
    timezone: Europe/Paris
    duration: 2h
    notice: 1h
    account: prod-web
    region: eu-west-1
    targets: {PatchGroup: web}
    operation: Install
    reboot: true
    max_concurrency: "2"
    max_errors: "1"
    channel: "#patching"
"""
OPENS = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)  # Sunday 03:00 in Paris (CET)


@pytest.fixture
def app(settings, make_app, config_path, aws_env, clock):
    config_path.write_text(CONFIG + WINDOWS)
    clock.now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    return make_app(settings)


@pytest.fixture
def estate(fake_ssm):
    fake_ssm.add_instance(INSTANCE, Script(("InProgress", "Success")), PatchGroup="web")
    fake_ssm.add_instance("i-0fedcba9876543210", Script(("Success",)), PatchGroup="web")
    fake_ssm.add_instance("i-0aaaabbbbccccdddd", PatchGroup="db")
    return fake_ssm


def window_job(rt):
    return run_singleton(rt, "patch_windows", tick(rt, SsmRunbooks(rt.policy.accounts)))


def the_run(rt) -> RunbookRun | None:
    with rt.sessions() as s:
        return s.execute(select(RunbookRun)).scalar_one_or_none()


def test_a_prod_window_asks_approval_silences_patches_and_reports(
    rt, client, signer, clock, estate
) -> None:
    runner = build_runner(rt)
    assert window_job(rt) == 0 and the_run(rt) is None
    clock.now = datetime(2026, 12, 6, 1, 1, tzinfo=UTC)  # within the hour of notice
    window_job(rt)
    run = the_run(rt)
    assert run is not None and (run.state, run.approval) == ("awaiting_approval", "other")
    notices = [p for t, k, p in outbox_rows(rt) if (t, k) == ("slack", "notify")]
    assert any("opens 2026-12-06 03:00 CET" in p["text"] and p.get("channel") == "#patching"
               for p in notices)  # fmt: skip
    with transaction(rt.sessions) as s:
        service.approve(s, run.id, approver="bob", now=clock.now)
    runner.run_once()
    assert estate.calls("SendCommand") == []  # approved, but the window is not open yet
    clock.now = OPENS
    window_job(rt)
    with rt.sessions() as s:
        silenced = {row.matcher["resource"] for row in s.execute(select(SilenceRow)).scalars()}
    assert silenced == {INSTANCE, "i-0fedcba9876543210"}
    during = notify(client, signer, clock, alarm_message(account=PROD, when=clock.now))
    assert during.json["alerts"][0]["action"] == "silenced"
    for _ in range(3):
        runner.run_once()
        clock.advance(seconds=15)
    [sent] = estate.calls("SendCommand")
    assert sent["DocumentName"] == "AWS-RunPatchBaseline"
    assert sent["Targets"] == [{"Key": "tag:PatchGroup", "Values": ["web"]}]
    assert sent["Parameters"] == {"Operation": ["Install"], "RebootOption": ["RebootIfNeeded"]}
    assert (sent["MaxConcurrency"], sent["MaxErrors"]) == ("2", "1")
    done = load_run(rt, run.id)
    assert done.state == "succeeded" and done.account_id == PROD and done.region == "eu-west-1"
    report = done.window["report"]
    assert "2 instances, 2 compliant, 0 failed" in report and "missing 0" in report
    assert any(p.get("text") == report for t, k, p in outbox_rows(rt) if k == "notify")
    clock.now = datetime(2026, 12, 6, 4, 1, tzinfo=UTC)  # the window has closed
    after = notify(client, signer, clock, alarm_message(account=PROD, when=clock.now))
    assert after.json["alerts"][0]["action"] == "open"


def test_no_approval_no_install(rt, client, signer, clock, estate) -> None:
    clock.now = datetime(2026, 12, 6, 1, 30, tzinfo=UTC)
    window_job(rt)
    clock.now = OPENS
    window_job(rt)
    build_runner(rt).run_once()
    run = the_run(rt)
    assert run is not None and run.state == "expired"
    assert estate.calls("SendCommand") == []
    with rt.sessions() as s:
        assert s.execute(select(SilenceRow)).first() is None
    window_job(rt)
    with rt.sessions() as s:
        assert len(s.execute(select(RunbookRun)).all()) == 1  # once per occurrence


def test_windows_are_validated_with_the_key_named() -> None:
    policy = parse_policy(CONFIG + WINDOWS)
    [window] = parse_windows(policy)
    assert window.account == PROD and window.trigger().timezone.key == "Europe/Paris"
    broken = WINDOWS.replace('"0 3 * * SUN"', '"0 3 * *"').replace("Europe/Paris", "Mars/Base")
    text = CONFIG + broken.replace("operation: Install", "operation: Reinstall")
    with pytest.raises(ConfigError) as caught:
        parse_windows(parse_policy(text), text, "opsbot.yaml")
    errors = "\n".join(caught.value.errors)
    assert (
        "opsbot.yaml:10: patch_windows[0].cron: not a crontab expression: '0 3 * *' has 4" in errors
    )
    assert "patch_windows[0].timezone: 'Mars/Base' is not an IANA time zone" in errors
    assert "patch_windows[0].operation: 'Reinstall' is not Scan or Install" in errors
