"""The ``heartbeats:`` section: strict, each problem as FILE:LINE: path: message; limits."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from opsbot.cli import main
from opsbot.config import ConfigError, parse_policy
from opsbot.core.alert import Severity
from opsbot.heartbeats import parse_heartbeats, with_heartbeats

ACCOUNTS = """accounts:
  "111122223333": {name: prod-cim, environment: prod}
"""


def beats(section: str) -> tuple:
    return parse_heartbeats(parse_policy(ACCOUNTS + section, "opsbot.yaml"))


def problems(section: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        beats(section)
    return exc.value.errors


def one(**fields: str) -> str:
    values = {
        "name": "watchdog",
        "match": '{source: aws.events, detail_type: "Scheduled Event", account: prod-cim}',
        "every": "5m",
    } | fields
    lines = [f"    {key}: {value}" for key, value in values.items() if value != "-"]
    return "heartbeats:\n  -" + "\n".join(lines)[3:] + "\n"


def test_a_valid_section_reads_into_heartbeats() -> None:
    [beat] = beats(one(grace="1m", severity="critical"))
    assert (beat.name, beat.every, beat.grace, beat.severity) == (
        "watchdog",
        timedelta(minutes=5),
        timedelta(minutes=1),
        Severity.CRITICAL,
    )
    assert beat.account_id == "111122223333"  # the account's name resolved to its id
    assert beat.match.detail_type == "Scheduled Event"


def test_each_heartbeat_is_a_silence_ahead_of_the_configured_ones() -> None:
    text = (
        ACCOUNTS + one() + 'silences:\n  - {match: {alarm_name: "Test-*"}, until: "2030-01-01"}\n'
    )
    policy = with_heartbeats(parse_policy(text, "opsbot.yaml"))
    assert [s.id for s in policy.silences] == ["heartbeat:watchdog", "config-0"]


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("every", "1m", True),
        ("every", "59s", False),
        ("every", "7d", True),
        ("every", "7d1s", False),
        ("grace", "0s", True),
        ("grace", "1d", True),
        ("grace", "1d1s", False),
    ],
)
def test_every_and_grace_at_and_past_their_limits(field: str, value: str, ok: bool) -> None:
    section = one(**{field: value})
    if ok:
        assert len(beats(section)) == 1
    else:
        [message] = problems(section)
        line = 3 + section.split("\n").index(f"    {field}: {value}")
        assert message.startswith(f"opsbot.yaml:{line}: heartbeats[0].{field}: must be from")


def test_a_name_of_48_characters_is_accepted_and_49_refused() -> None:
    assert beats(one(name="a" * 48))[0].name == "a" * 48
    [message] = problems(one(name="a" * 49))
    assert "heartbeats[0].name:" in message and "at most 48" in message


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"evrey": "5m"}, "heartbeats[0].evrey: unknown key; did you mean 'every'?"),
        ({"every": "-"}, "heartbeats[0]: missing required key 'every'"),
        ({"every": "soon"}, "heartbeats[0].every: 'soon' is not a duration"),
        ({"severity": "urgent"}, "heartbeats[0].severity: 'urgent' is not one of"),
        ({"name": "Watch Dog"}, "heartbeats[0].name: 'Watch Dog' is not a heartbeat name"),
        ({"match": "{detail_type: x}"}, "heartbeats[0].match: needs a source"),
        ({"match": "{source: cron}"}, "heartbeats[0].match: needs one of alarm_name"),
        (
            {"match": "{source: opsbot.heartbeat, resource: x}"},
            "heartbeats[0].match.source: 'opsbot.heartbeat' is the source of",
        ),
        ({"match": "{source: cron, resource: x, colour: red}"}, "match.colour: unknown key"),
        ({"match": "{source: cron, alarm_name: x, account: nope}"}, "'nope' is not a configured"),
    ],
)
def test_problems_name_file_line_and_path(fields: dict[str, str], expected: str) -> None:
    found = problems(one(**fields))
    assert any(expected in message for message in found), found
    assert all(message.startswith("opsbot.yaml:") for message in found)


def test_the_section_must_be_a_list_and_names_unique() -> None:
    [message] = problems("heartbeats: {name: x}\n")
    assert message == "opsbot.yaml:3: heartbeats: expected a list of heartbeats, got a mapping"
    [message] = problems(one() + one()[len("heartbeats:\n") :])
    assert message.startswith("opsbot.yaml:7: heartbeats[1].name: 'watchdog' is already")


def test_opsbot_check_refuses_a_bad_section_with_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "opsbot.yaml"
    config.write_text(ACCOUNTS + one(every="30s"))
    result = CliRunner().invoke(main, ["check"], env={"OPSBOT_CONFIG": str(config)})
    assert result.exit_code == 2
    assert f"{config}:6: heartbeats[0].every: must be from 1m to 7d, got 30s" in result.output
