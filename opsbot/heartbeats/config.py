"""The YAML ``heartbeats:`` section: events expected every so often (a dead-man's switch).

```yaml
heartbeats:
  - name: prod-watchdog                  # lower-case, digits, . _ -; at most 48
    match: {source: aws.events, detail_type: "Scheduled Event", account: prod-cim}
    every: 5m                            # 1m .. 7d
    grace: 1m                            # optional, 0s .. 1d (default 0s)
    severity: high                       # optional (default high)
```

``match`` takes the keys of a rule's ``match`` and needs a ``source`` plus one
of ``alarm_name``, ``detail_type``, ``resource``, ``labels`` or
``fingerprint``. A heartbeat's events are expected, not problems: each
heartbeat is also a silence (id ``heartbeat:NAME``, first in the policy's
silences), so its events are stored with that silence id and open no
incident. When none has arrived for ``every`` + ``grace`` the heartbeat job
opens an incident (source ``opsbot.heartbeat``), and the next event resolves it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from opsbot.config import ConfigError
from opsbot.config.policy import SEVERITIES, parse_match
from opsbot.config.yamldoc import Document, KeyPath, choice, describe, document_for, keys, mapping
from opsbot.config.yamldoc import duration as read_duration
from opsbot.config.yamldoc import text as read_text
from opsbot.core.accounts import AccountMap
from opsbot.core.alert import Severity, make_fingerprint
from opsbot.core.policy import Policy
from opsbot.core.rules import Match
from opsbot.core.silences import Silence

log = logging.getLogger(__name__)

SOURCE = "opsbot.heartbeat"
SILENCE_PREFIX = "heartbeat:"
HEARTBEAT_KEYS = ("name", "match", "every", "grace", "severity")
REQUIRED_KEYS = ("name", "match", "every")
# Besides its source, what names the one expected event (a source alone would silence it all).
IDENTIFYING_KEYS = ("alarm_name", "detail_type", "resource", "labels", "fingerprint")
NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,47}")
MIN_EVERY = timedelta(minutes=1)  # the job looks once a minute
MAX_EVERY = timedelta(days=7)
MAX_GRACE = timedelta(days=1)
FOREVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Heartbeat:
    """An event expected at least every ``every`` (plus ``grace``), and what its absence is."""

    name: str
    match: Match
    every: timedelta
    grace: timedelta = timedelta(0)
    severity: Severity = Severity.HIGH
    account_id: str = ""  # the account of the match, so the incident routes like its events

    @property
    def silence_id(self) -> str:
        """The id its events are stored with (``alerts.silence_id``)."""
        return silence_id(self.name)

    @property
    def fingerprint(self) -> str:
        """The identity of its incident."""
        return fingerprint(self.name)

    @property
    def limit(self) -> timedelta:
        """How long it may stay silent before it is missing."""
        return self.every + self.grace


def silence_id(name: str) -> str:
    """Return the silence id of a heartbeat's events."""
    return SILENCE_PREFIX + name


def fingerprint(name: str) -> str:
    """Return the fingerprint of a heartbeat's incident."""
    return make_fingerprint(SOURCE, name)


def parse_heartbeats(policy: Policy) -> tuple[Heartbeat, ...]:
    """Return the heartbeats of the policy's ``heartbeats:`` section; ConfigError lists problems."""
    value = policy.extra.get("heartbeats")
    if value is None:
        return ()
    doc = document_for(policy.extra)
    if not isinstance(value, list):
        doc.error(("heartbeats",), f"expected a list of heartbeats, got {describe(value)}")
        doc.check()
    found: list[Heartbeat] = []
    first: dict[str, int] = {}
    for index, item in enumerate(value):
        beat = _heartbeat(doc, item, ("heartbeats", index), policy.accounts)
        if beat is None:
            continue
        if beat.name in first:
            where = f"heartbeats[{first[beat.name]}]"
            doc.error(
                ("heartbeats", index, "name"), f"{beat.name!r} is already the name of {where}"
            )
            continue
        first[beat.name] = index
        found.append(beat)
    doc.check()
    return tuple(found)


def with_heartbeats(policy: Policy) -> Policy:
    """Return the policy with a silence per heartbeat ahead of its own silences.

    An invalid section leaves the policy as it is (``opsbot check`` refuses it
    before any process starts; this keeps a library caller running).
    """
    try:
        beats = parse_heartbeats(policy)
    except ConfigError as exc:
        log.error("heartbeats are off: %s", exc)
        return policy
    if not beats:
        return policy
    return replace(policy, silences=tuple(_silence(b) for b in beats) + policy.silences)


def _silence(beat: Heartbeat) -> Silence:
    reason = f"heartbeat {beat.name}: its events are expected, not incidents"
    return Silence(beat.silence_id, beat.match, None, FOREVER, reason, "config")


def _heartbeat(doc: Document, value: Any, path: KeyPath, accounts: AccountMap) -> Heartbeat | None:
    data = mapping(doc, value, path, "a mapping with name, match and every")
    if data is None:
        return None
    before = len(doc.found)
    keys(doc, data, path, HEARTBEAT_KEYS, REQUIRED_KEYS)
    name = read_text(doc, data["name"], (*path, "name")) if "name" in data else None
    if name is not None and not NAME.fullmatch(name):
        doc.error(
            (*path, "name"),
            f"{name[:60]!r} is not a heartbeat name: lower-case letters, digits, '.', '_' "
            "and '-', at most 48",
        )
    match = parse_match(doc, data["match"], (*path, "match"), accounts) if "match" in data else None
    if match is not None:
        _check_match(doc, match, (*path, "match"))
    every = _length(doc, data, (*path, "every"), MIN_EVERY, MAX_EVERY)
    grace = _length(doc, data, (*path, "grace"), timedelta(0), MAX_GRACE)
    severity = choice(doc, data.get("severity", "high"), (*path, "severity"), SEVERITIES)
    if len(doc.found) > before or name is None or match is None or every is None:
        return None
    account = accounts.find(match.account) if match.account else None
    account_id = account.id if account else (match.account or "")
    return Heartbeat(
        name, match, every, grace or timedelta(0), Severity(severity or "high"), account_id
    )


def _check_match(doc: Document, match: Match, path: KeyPath) -> None:
    if match.source is None:
        doc.error(path, "needs a source: a heartbeat is an event one source sends")
    elif match.source == SOURCE:
        doc.error((*path, "source"), f"{SOURCE!r} is the source of opsbot's heartbeat incidents")
    if not any(getattr(match, key) for key in IDENTIFYING_KEYS):
        doc.error(
            path,
            f"needs one of {', '.join(IDENTIFYING_KEYS)} besides source: a heartbeat's "
            "events are silenced, and a source alone would silence every alert it sends",
        )


def _length(
    doc: Document, data: dict[str, Any], path: KeyPath, least: timedelta, most: timedelta
) -> timedelta | None:
    key = path[-1]
    if key not in data:
        return None
    length = read_duration(doc, data[key], path)
    if length is not None and not least <= length <= most:
        doc.error(path, f"must be from {_human(least)} to {_human(most)}, got {data[key]}")
        return None
    return length


def _human(length: timedelta) -> str:
    seconds = int(length.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
