"""Standard crontab expressions (``minute hour day-of-month month day-of-week``), read exactly.

The semantics are those of cron(8) and crontab(5), not APScheduler's: day of
week 0 and 7 are Sunday, 1-5 is Monday to Friday; month and weekday names
(``jan``, ``sun``) work, alone and in ranges; ``*``, ``a-b``, lists and steps
(``*/15``, ``1-5/2``, ``10/20``) work in every field; ``@hourly``, ``@daily``,
``@weekly``, ``@monthly`` and ``@yearly`` are shorthands. When both the day
of month and the day of week are restricted (neither starts with ``*``) a
day matches if *either* does, as cron does.

The result names each field as an explicit list, so a scheduler library
never reinterprets a number: ``CronSpec.triggers()`` gives the keyword
arguments of one APScheduler ``CronTrigger`` (two, to be OR-ed, under the
day rule above).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CronSpec", "parse_cron"]

WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun",
               "jul", "aug", "sep", "oct", "nov", "dec")  # fmt: skip
# (name, lowest, highest, names numbered from `lowest`)
FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, MONTH_NAMES),
    ("day of week", 0, 7, WEEKDAY_NAMES),
)
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
APS_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # by cron number 0-6


@dataclass(frozen=True)
class CronSpec:
    """A parsed crontab expression: the matching values of each field, in cron numbering."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]  # 0 = Sunday … 6 = Saturday (7 folded into 0)
    days_restricted: bool
    weekdays_restricted: bool

    def triggers(self) -> list[dict[str, str]]:
        """Return the keyword arguments of the CronTriggers whose union is this schedule."""
        base = {
            "minute": _listed(self.minutes, 0, 59),
            "hour": _listed(self.hours, 0, 23),
            "month": _listed(self.months, 1, 12),
        }
        day = _listed(self.days, 1, 31)
        weekday = ",".join(APS_WEEKDAYS[d] for d in self.weekdays)
        if len(self.weekdays) == 7:
            weekday = "*"
        if self.days_restricted and self.weekdays_restricted:
            return [{**base, "day": day, "day_of_week": "*"},
                    {**base, "day": "*", "day_of_week": weekday}]  # fmt: skip
        return [{**base, "day": day, "day_of_week": weekday}]


def parse_cron(text: str) -> CronSpec:
    """Return the schedule a 5-field crontab expression names; raise ValueError naming the field."""
    expression = MACROS.get(text.strip().lower(), text)
    parts = expression.split()
    if len(parts) != 5:
        raise ValueError(
            f"{text!r} has {len(parts)} fields; expected 5: minute hour day-of-month month "
            "day-of-week (or @hourly, @daily, @weekly, @monthly, @yearly)"
        )
    values = [_field(part, *spec) for part, spec in zip(parts, FIELDS, strict=True)]
    minutes, hours, days, months, weekdays = (tuple(v) for v in values)
    return CronSpec(
        text,
        minutes,
        hours,
        days,
        months,
        tuple(sorted({d % 7 for d in weekdays})),
        days_restricted=not parts[2].startswith("*"),
        weekdays_restricted=not parts[4].startswith("*"),
    )


def _listed(values: tuple[int, ...], low: int, high: int) -> str:
    if values == tuple(range(low, high + 1)):
        return "*"
    return ",".join(str(v) for v in values)


def _field(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> list[int]:
    found: set[int] = set()
    for item in text.split(","):
        found.update(_item(item, name, low, high, names))
    return sorted(found)


def _item(item: str, name: str, low: int, high: int, names: tuple[str, ...]) -> range:
    span, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) < 1:
            raise ValueError(f"{name}: step {step_text!r} in {item!r} is not a whole number >= 1")
        step = int(step_text)
    if span == "*":
        first, last = low, high
    elif "-" in span:
        start, _, end = span.partition("-")
        first, last = _value(start, name, low, high, names), _value(end, name, low, high, names)
        if first > last:
            raise ValueError(f"{name}: range {span!r} runs backwards")
    else:
        first = _value(span, name, low, high, names)
        last = high if slash else first  # cron reads "10/20" as "10-max/20"
    return range(first, last + 1, step)


def _value(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> int:
    word = text.lower()
    if names and word in names:
        return names.index(word) + (1 if names is MONTH_NAMES else 0)
    if not text.isdigit():
        hint = f" or a name ({', '.join(names)})" if names else ""
        raise ValueError(f"{name}: {text!r} is not a number {low}-{high}{hint}")
    if not low <= int(text) <= high:
        raise ValueError(f"{name}: {text} is out of range {low}-{high}")
    return int(text)
