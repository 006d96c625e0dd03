"""``opsbot runbooks``, ``opsbot patch`` and ``opsbot check`` over the runbook catalogue."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from opsbot.cli import main
from opsbot.db import migrate
from opsbot.db.models import RunbookRun
from opsbot.db.session import make_engine
from tests.support.runbooks import CONFIG

SHIPPED = Path(__file__).parents[2] / "runbooks"
WINDOW = """
patch_windows:
  - {name: lab, cron: "0 4 * * *", account: lab, targets: {PatchGroup: lab}, operation: Scan}
"""


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_runbooks_list_show_and_validate() -> None:
    env = {"OPSBOT_RUNBOOKS_DIR": str(SHIPPED)}
    listed = invoke("runbooks", "list", env=env)
    assert listed.exit_code == 0 and "restart-instance" in listed.output
    assert "(dangerous)" in next(line for line in listed.output.splitlines() if "restart-" in line)
    shown = invoke("runbooks", "show", "free-disk-space", env=env)
    assert "AWS-RunShellScript" in shown.output and "param KeepDays (int) default=7" in shown.output
    assert invoke("runbooks", "show", "nope", env=env).exit_code == 2
    assert invoke("runbooks", "validate", env=env).output.startswith("ok: 6 runbooks")


def test_check_names_the_broken_runbook_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "oops.yaml").write_text(
        "name: oops\ntitle: x\nkind: command\ndocument: AWS-RunShellScript\n"
        "targets: {instance_ids: [i-0abc1234]}\nmax_concurrency: all\n"
    )
    config = tmp_path / "opsbot.yaml"
    config.write_text(CONFIG)
    result = CliRunner().invoke(
        main, ["check"], env={"OPSBOT_RUNBOOKS_DIR": str(tmp_path), "OPSBOT_CONFIG": str(config)}
    )
    assert result.exit_code == 2
    assert f"{tmp_path / 'oops.yaml'}:6: max_concurrency: 'all' is not a count" in result.output
    valid = invoke("runbooks", "validate", env={"OPSBOT_RUNBOOKS_DIR": str(tmp_path)})
    assert valid.exit_code == 2


def test_check_validates_rules_runbooks_and_patch_windows(tmp_path: Path) -> None:
    config = tmp_path / "opsbot.yaml"
    config.write_text(CONFIG + WINDOW + "rules:\n  - {match: {alarm_name: x}, runbook: nope}\n")
    env = {"OPSBOT_CONFIG": str(config), "OPSBOT_RUNBOOKS_DIR": str(SHIPPED)}
    result = invoke("check", env=env)
    assert result.exit_code == 2 and "rules[0].runbook: no runbook 'nope'" in result.output
    config.write_text(CONFIG + WINDOW)
    result = invoke("check", env=env)
    assert result.exit_code == 0 and "ok: 6 runbooks" in result.output
    assert "1 patch windows" in result.output


def test_patch_list_and_run_request_a_scan(tmp_path: Path) -> None:
    config = tmp_path / "opsbot.yaml"
    config.write_text(CONFIG + WINDOW)
    url = f"sqlite:///{tmp_path / 'o.db'}"
    migrate.upgrade(url)
    env = {"OPSBOT_CONFIG": str(config), "OPSBOT_DATABASE_URL": url,
           "OPSBOT_RUNBOOKS_DIR": str(SHIPPED)}  # fmt: skip
    assert "lab" in invoke("patch", "list", env=env).output
    ran = invoke("patch", "run", "lab", "--scan", env=env)
    assert ran.exit_code == 0 and "is approved" in ran.output  # sandbox: no approval needed
    engine = make_engine(url)
    with engine.connect() as conn:
        run = conn.execute(select(RunbookRun.runbook, RunbookRun.requester)).one()
    engine.dispose()
    assert run.runbook == "patch-scan" and run.requester.startswith("cli:")
    assert invoke("patch", "run", "nope", env=env).exit_code == 2


def test_the_scheduler_gets_the_runbook_jobs_and_they_idle_without_aws(
    rt, monkeypatch, tmp_path
) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    from opsbot.runbooks import jobs as runbook_jobs

    monkeypatch.setattr(runbook_jobs, "aws_usable", lambda: False)
    scheduler = BackgroundScheduler(timezone="UTC")
    runbook_jobs.add_jobs(scheduler, rt)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"runbook_runs", "auto_remediation", "patch_windows", "runbook_expiry"}
    expiry = jobs.pop("runbook_expiry")
    assert [jobs[name].func() for name in sorted(jobs)] == [False, False, False]
    assert expiry.func() == 0  # runs expire on time without AWS: nothing was due


def test_a_window_may_ask_for_more_approval_than_its_runbook(tmp_path: Path) -> None:
    config = tmp_path / "opsbot.yaml"
    config.write_text(
        CONFIG + WINDOW.replace("operation: Scan}", "operation: Scan, approval: one}")
    )
    url = f"sqlite:///{tmp_path / 'o.db'}"
    migrate.upgrade(url)
    env = {"OPSBOT_CONFIG": str(config), "OPSBOT_DATABASE_URL": url}
    ran = invoke("patch", "run", "lab", "--install", env=env)
    assert ran.exit_code == 0 and "is awaiting approval" in ran.output
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(select(RunbookRun.runbook)).scalar_one() == "patch-install"
    engine.dispose()


def test_patch_list_shows_the_next_runs_with_their_weekdays(tmp_path: Path) -> None:
    config = tmp_path / "opsbot.yaml"
    sunday = WINDOW.replace('"0 4 * * *"', '"0 3 * * 0"')
    weekdays = '  - {name: wk, cron: "30 22 * * 1-5", timezone: Europe/Paris,\n' \
        "     targets: {PatchGroup: web}, operation: Install}\n"  # fmt: skip
    config.write_text(CONFIG + sunday + weekdays)
    env = {"OPSBOT_CONFIG": str(config), "OPSBOT_RUNBOOKS_DIR": str(SHIPPED)}
    listed = invoke("patch", "list", "--after", "2026-12-04T12:00", env=env)  # a Friday
    assert listed.exit_code == 0, listed.output
    lab, wk = listed.output.splitlines()
    assert lab.endswith("cron '0 3 * * 0' next Sun 2026-12-06 03:00 UTC, "
                        "Sun 2026-12-13 03:00 UTC, Sun 2026-12-20 03:00 UTC")  # fmt: skip
    assert wk.endswith("next Fri 2026-12-04 22:30 CET, Mon 2026-12-07 22:30 CET, "
                       "Tue 2026-12-08 22:30 CET")  # fmt: skip


def test_patch_list_refuses_a_bad_cron_with_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "opsbot.yaml"
    config.write_text(CONFIG + WINDOW.replace('"0 4 * * *"', '"0 4 * * 8"'))
    env = {"OPSBOT_CONFIG": str(config), "OPSBOT_RUNBOOKS_DIR": str(SHIPPED)}
    listed = invoke("patch", "list", env=env)
    line = 1 + (CONFIG + WINDOW).splitlines().index(WINDOW.splitlines()[2])
    assert listed.exit_code == 2
    assert f"{config}:{line}: patch_windows[0].cron: not a crontab expression: day of week: " \
        "8 is out of range 0-7" in listed.output  # fmt: skip
