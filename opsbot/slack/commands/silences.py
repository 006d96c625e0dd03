"""``/ops silence <matcher…> for <duration> [because <reason>]``, ``silences``, ``unsilence``.

Matchers are ``key=value`` words naming the YAML ``match`` keys, with the
short forms operators type: ``alarm=High-CPU*``, ``account=prod-cim``,
``source=aws.guardduty``, ``severity=critical,high``, ``env=prod``.
"""

from __future__ import annotations

from typing import Any

from opsbot.core.durations import parse_duration
from opsbot.core.slacktext import escape
from opsbot.slack.commands.base import CommandTable, Reply, Request, Usage, number

MATCHER_KEYS = {
    "alarm": "alarm_name",
    "alarm_name": "alarm_name",
    "account": "account",
    "source": "source",
    "severity": "severity",
    "env": "environment",
    "environment": "environment",
    "region": "region",
    "resource": "resource",
    "type": "detail_type",
    "detail_type": "detail_type",
    "fingerprint": "fingerprint",
}


def parse_silence(words: list[str]) -> tuple[dict[str, Any], str, str]:
    """Return (matcher, duration text, reason) from the words after ``silence``."""
    lowered = [w.lower() for w in words]
    if "for" not in lowered:
        raise Usage("Say how long: `for 2h`.")
    at = lowered.index("for")
    matcher = dict(_matcher_word(word) for word in words[:at])
    if not matcher:
        raise Usage("Say what to silence, like `alarm=High-CPU*`.")
    rest = words[at + 1 :]
    if not rest:
        raise Usage("Say how long: `for 2h`.")
    reason = ""
    if len(rest) > 1:
        if rest[1].lower() != "because" or len(rest) < 3:
            raise Usage(f"Unexpected `{' '.join(rest[1:])}`; give a reason with `because …`.")
        reason = " ".join(rest[2:])
    return matcher, rest[0], reason


def _matcher_word(word: str) -> tuple[str, Any]:
    key, sep, value = word.partition("=")
    if not sep or not value:
        raise Usage(f"`{word}` is not a matcher: write key=value.")
    name = MATCHER_KEYS.get(key.lower())
    if name is None:
        raise Usage(f"`{key}` is not a matcher key (use {', '.join(sorted(MATCHER_KEYS))}).")
    return name, value.split(",") if name == "severity" else value


def silence(req: Request) -> Reply:
    """Create a silence."""
    matcher, duration, reason = parse_silence(req.args)
    try:
        length = parse_duration(duration)
    except ValueError as exc:
        raise Usage(str(exc)) from None
    silence_id = req.ops.silence(matcher, req.ops.now() + length, reason, req.user.actor)
    what = escape(" ".join(f"{k}={v}" for k, v in matcher.items()))
    by = escape(req.user.name)
    return Reply(f"Silence {silence_id} ({what}) for {escape(duration)} by {by}.", public=True)


def list_silences(req: Request) -> Reply:
    """List the silences in force."""
    rows = req.ops.silences()
    if not rows:
        return Reply("No silences in force.")
    lines = [
        f"{row.id}: {escape(row.matcher)} until {row.ends_at:%Y-%m-%d %H:%M} UTC by "
        f"{escape(row.created_by)}" + (f" — {escape(row.reason)}" if row.reason else "")
        for row in rows
    ]
    return Reply("\n".join(lines))


def unsilence(req: Request) -> Reply:
    """End a silence now."""
    if not req.args or not req.args[0].isdigit():
        raise Usage("Which silence? Give its number.")
    out = req.ops.end_silence(number(req.args[0], "a silence number"), req.user.actor)
    return Reply(out.message, public=out.changed)


def register(table: CommandTable) -> None:
    """Add the silence commands."""
    table.command(
        "silence",
        usage="silence <matcher…> for <duration> [because <reason>]",
        summary="silence matching alerts",
        action="silence",
        changes=True,
    )(silence)
    table.command("silences", usage="silences", summary="silences in force")(list_silences)
    table.command(
        "unsilence",
        usage="unsilence <id>",
        summary="end a silence",
        action="unsilence",
        changes=True,
    )(unsilence)
