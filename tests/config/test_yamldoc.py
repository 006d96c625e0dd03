"""The YAML sections other packages parse report FILE:LINE: key.path: problem, like the policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsbot.config import ConfigError, load_policy
from opsbot.config.yamldoc import dotted, keypath, split_problem
from opsbot.incidents.escalation import parse_escalation
from opsbot.intake.sources_config import parse_sources
from opsbot.jira.config import jira_config
from opsbot.runbooks.patch_windows import parse_windows

BROKEN = """\
rules:
  - match: {source: aws.guardduty}
    components: [1]
jira:
  priorities: {P6: Huge}
escalation:
  P1: {remind_every: soon}
  P9: {}
cloudtrail:
  watch:
    - {event: DeleteTrail, when: sometimes}
patch_windows:
  - {name: w, cron: "0 3 * *", targets: {PatchGroup: a}, operation: Scan}
"""


def problems(parse, path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(load_policy(path))
    return [e.split(": ", 2)[0] + ": " + e.split(": ", 2)[1] for e in caught.value.errors]


def test_every_section_names_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "opsbot.yaml"
    path.write_text(BROKEN)
    assert problems(jira_config, path) == [
        f"{path}:3: rules[0].components",
        f"{path}:5: jira.priorities.P6",
    ]
    assert problems(lambda policy: parse_escalation(policy.extra), path) == [
        f"{path}:7: escalation.P1.remind_every",
        f"{path}:8: escalation.P9",
    ]
    assert problems(parse_sources, path) == [f"{path}:11: cloudtrail.watch[0].when"]
    assert problems(parse_windows, path) == [f"{path}:13: patch_windows[0].cron"]


def test_a_plain_mapping_is_reported_without_a_file() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_escalation({"escalation": {"P9": {}}})
    assert caught.value.errors == [
        "escalation.P9: unknown key; expected one of mention, channel, P1, P2, P3, P4, P5"
    ]


@pytest.mark.parametrize("text", ["cloudtrail.watch[0].when", "a['x y'][2].b", "ec2"])
def test_keypath_is_the_inverse_of_dotted(text: str) -> None:
    path = keypath(text)
    assert path is not None and dotted(path) == text


def test_split_problem_keeps_a_message_without_a_key_path_whole() -> None:
    assert split_problem("ec2: unknown key 'x'") == (("ec2",), "unknown key 'x'")
    assert split_problem("no path here: at all") == ((), "no path here: at all")
