"""A key nobody reads fails ``opsbot check`` with FILE:LINE and a suggestion, and stops start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from opsbot.cli import main

SHIPPED = Path(__file__).parents[2] / "runbooks"
BASE = """\
accounts:
  "111122223333": {name: prod-cim, environment: prod}
rules:
  - match: {alarm_name: "High-*"}
    priority: P1
"""


def check(tmp_path: Path, text: str, command: str = "check") -> tuple[Path, CliRunner, str, int]:
    path = tmp_path / "opsbot.yaml"
    path.write_text(text)
    env = {
        "OPSBOT_CONFIG": str(path),
        "OPSBOT_RUNBOOKS_DIR": str(SHIPPED),
        "OPSBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'o.db'}",
    }
    runner = CliRunner()
    result = runner.invoke(main, [command], env=env, catch_exceptions=False)
    return path, runner, result.output, result.exit_code


@pytest.mark.parametrize(
    ("yaml_text", "line", "message"),
    [
        # The misspellings of the issue, each where an operator would write it.
        ("silence:\n  - {match: {}, until: 2030-01-01}\n", 6,
         "silence: unknown key; did you mean 'silences'?"),
        ("escalaton:\n  P1: {remind_every: 15m}\n", 6,
         "escalaton: unknown key; did you mean 'escalation'?"),
        ("runbok:\n  approvals_channel: '#x'\n", 6,
         "runbok: unknown key; did you mean 'runbooks'?"),
        ("  - match: {alarm_name: x}\n    runbok: restart-instance\n", 7,
         "rules[1].runbok: unknown key; did you mean 'runbook'?"),
        ("  - match: {alarm_name: x}\n    priorty: P2\n", 7,
         "rules[1].priorty: unknown key; did you mean 'priority'?"),
        ("runbooks:\n  aprovals_channel: '#ops-approvals'\n", 7,
         "runbooks.aprovals_channel: unknown key; did you mean 'approvals_channel'?"),
        # Every other section.
        ("  - match: {alarm_nme: x}\n", 6, "rules[1].match.alarm_nme: unknown key; did you mean "
         "'alarm_name'?"),
        ("silences:\n  - {match: {}, until: 2030-01-01, reasn: lab}\n", 7,
         "silences[0].reasn: unknown key; did you mean 'reason'?"),
        ("flapping: {changes: 3, windw: 30m}\n", 6, "flapping.windw: unknown key; did you mean "
         "'window'?"),
        ("slack: {role: {admin: [U1]}}\n", 6, "slack.role: unknown key; did you mean 'roles'?"),
        ("escalation:\n  P1: {remind_evry: 15m}\n", 7,
         "escalation.P1.remind_evry: unknown key; did you mean 'remind_every'?"),
        ("escalation:\n  mentoin: S0ONCALL\n", 7, "escalation.mentoin: unknown key; did you mean "
         "'mention'?"),
        ("cloudtrail:\n  wach: []\n", 7, "cloudtrail.wach: unknown key; did you mean 'watch'?"),
        ("cloudtrail:\n  watch:\n    - {event: DeleteTrail, severty: high}\n", 8,
         "cloudtrail.watch[0].severty: unknown key; did you mean 'severity'?"),
        ("ec2:\n  watch_instance: [i-1]\n", 7,
         "ec2.watch_instance: unknown key; did you mean 'watch_instances'?"),
        ("jira:\n  link_typ: Relates\n", 7,
         "jira.link_typ: unknown key; did you mean 'link_type'?"),
        ("jira:\n  transitions: {resolv: [Done]}\n", 7,
         "jira.transitions.resolv: unknown key; did you mean 'resolve'?"),
        ("patch_windows:\n  - {name: w, cron: '0 3 * * 0', targets: {PatchGroup: a},\n"
         "     operation: Scan, timezon: UTC}\n", 8,
         "patch_windows[0].timezon: unknown key; did you mean 'timezone'?"),
    ],
)  # fmt: skip
def test_a_typo_in_any_section_fails_check_with_line_and_suggestion(
    tmp_path: Path, yaml_text: str, line: int, message: str
) -> None:
    path, _, output, code = check(tmp_path, BASE + yaml_text)
    assert code == 2, output
    assert f"{path}:{line}: {message}" in output


def test_a_typo_in_an_account_is_reported_with_its_line(tmp_path: Path) -> None:
    text = BASE.replace("environment: prod}", "environment: prod, tema: cim}")
    path, _, output, code = check(tmp_path, text)
    assert code == 2 and f"{path}:2: accounts.111122223333.tema: unknown key; did you mean " \
        "'team'?" in output  # fmt: skip


def test_every_problem_of_every_section_is_reported_at_once(tmp_path: Path) -> None:
    text = BASE + "escalation: {mentoin: x}\nec2: {watch_instance: []}\njira: {link_typ: x}\n"
    path, _, output, code = check(tmp_path, text)
    assert code == 2
    lines = output.removeprefix("opsbot: error: ").splitlines()
    assert [line.split(": ")[0] for line in lines] == [f"{path}:6", f"{path}:7", f"{path}:8"]


def test_a_clean_file_with_every_section_passes(tmp_path: Path) -> None:
    text = BASE + (
        "    jira_issue_type: Bug\nescalation: {P1: {remind_every: 15m}}\n"
        "cloudtrail: {watch: [{event: DeleteTrail}]}\nec2: {watch_instances: [i-1]}\n"
        "jira: {link_type: Relates}\nrunbooks: {approvals_channel: '#ops-approvals'}\n"
        "patch_windows:\n  - {name: w, cron: '0 3 * * 0', targets: {PatchGroup: a}, "
        "operation: Scan}\n"
    )
    _, _, output, code = check(tmp_path, text)
    assert code == 0, output
    assert "ok:" in output and "1 patch windows" in output


@pytest.mark.parametrize("command", ["run", "serve", "worker"])
@pytest.mark.parametrize(
    "section",
    [
        "escalation:\n  P1: {remind_every: soon}\n",
        "cloudtrail:\n  watch: [{event: DeleteTrail, when: sometimes}]\n",
        "escalaton:\n  P1: {remind_every: 15m}\n",
    ],
)
def test_start_up_refuses_what_check_rejects_with_the_same_message(
    tmp_path: Path, command: str, section: str
) -> None:
    _, _, checked, check_code = check(tmp_path, BASE + section)
    _, _, started, start_code = check(tmp_path, BASE + section, command)
    assert check_code == start_code == 2
    assert started == checked and "listening" not in started
    assert not (tmp_path / "o.db").exists()  # stopped before the schema was touched
