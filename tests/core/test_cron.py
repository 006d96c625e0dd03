"""Crontab expressions read as cron(8) reads them, and the triggers built from them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from opsbot.core.cron import parse_cron
from opsbot.runbooks.patch_windows import cron_trigger

FRIDAY = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def runs(expression: str, count: int = 7, after: datetime = FRIDAY) -> list[str]:
    trigger, found = cron_trigger(expression), []
    for _ in range(count):
        after = trigger.get_next_fire_time(None, after)
        found.append(f"{after:%a %d %H:%M}")
        after = after.replace(second=1)
    return found


@pytest.mark.parametrize("expression", ["0 3 * * 0", "0 3 * * 7", "0 3 * * sun", "0 3 * * SUN"])
def test_zero_seven_and_the_name_are_sunday(expression: str) -> None:
    assert runs(expression, 2) == ["Sun 06 03:00", "Sun 13 03:00"]


def test_one_to_five_is_monday_to_friday() -> None:
    assert [day[:3] for day in runs("0 3 * * 1-5", 7)] == [
        "Mon", "Tue", "Wed", "Thu", "Fri", "Mon", "Tue",
    ]  # fmt: skip
    assert runs("0 3 * * mon-fri", 7) == runs("0 3 * * 1-5", 7)


def test_ranges_ending_on_seven_lists_and_steps() -> None:
    assert [d[:3] for d in runs("0 3 * * 5-7", 3)] == ["Sat", "Sun", "Fri"]
    assert [d[:3] for d in runs("0 3 * * */2", 4)] == ["Sat", "Sun", "Tue", "Thu"]
    assert runs("*/20 12-13 * * *", 4) == ["Fri 04 12:00", "Fri 04 12:20", "Fri 04 12:40",
                                           "Fri 04 13:00"]  # fmt: skip
    assert runs("10/25 12 * * *", 3) == ["Fri 04 12:10", "Fri 04 12:35", "Sat 05 12:10"]
    assert runs("0 3 * * sat,1", 3) == ["Sat 05 03:00", "Mon 07 03:00", "Sat 12 03:00"]


def test_month_names_and_macros() -> None:
    assert runs("0 0 1 jan,jul *", 2, FRIDAY) == ["Fri 01 00:00", "Thu 01 00:00"]
    assert runs("@weekly", 1) == ["Sun 06 00:00"]
    assert runs("@daily", 1) == ["Sat 05 00:00"]


def test_restricted_day_of_month_and_weekday_are_ored() -> None:
    # The 15th of December 2026 is a Tuesday: it runs on the 15th *and* on every Monday.
    assert runs("0 3 15 * mon", 4) == ["Mon 07 03:00", "Mon 14 03:00", "Tue 15 03:00",
                                       "Mon 21 03:00"]  # fmt: skip
    # With a '*' in one of them the other alone decides (cron's rule), so no OR here.
    assert runs("0 3 */1 * mon", 2) == ["Mon 07 03:00", "Mon 14 03:00"]


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 3 * *", "has 4 fields; expected 5"),
        ("0 3 * * 8", "day of week: 8 is out of range 0-7"),
        ("60 3 * * *", "minute: 60 is out of range 0-59"),
        ("0 3 0 * *", "day of month: 0 is out of range 1-31"),
        ("0 3 * 13 *", "month: 13 is out of range 1-12"),
        ("0 3 * * sunday", "day of week: 'sunday' is not a number 0-7 or a name"),
        ("0 3 * foo *", "month: 'foo' is not a number 1-12 or a name"),
        ("0 5-3 * * *", "hour: range '5-3' runs backwards"),
        ("*/0 * * * *", "minute: step '0' in '*/0' is not a whole number >= 1"),
        ("@reboot", "has 1 fields"),
    ],
)
def test_bad_expressions_name_the_field(expression: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_cron(expression)
    assert problem in str(caught.value)


def test_parsed_fields_are_explicit() -> None:
    spec = parse_cron("0 3 * * 0,7")
    assert spec.weekdays == (0,) and spec.triggers() == [
        {"minute": "0", "hour": "3", "month": "*", "day": "*", "day_of_week": "sun"}
    ]
