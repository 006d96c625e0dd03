"""Durations written the way operators write them: ``24h``, ``90m``, ``1h30m``."""

from __future__ import annotations

import re
from datetime import timedelta

UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}

_DURATION = re.compile(r"(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?")


def parse_duration(text: str) -> timedelta:
    """Return the timedelta for a duration such as ``7d``, ``24h``, ``90m``, ``30s`` or ``1h30m``.

    Units are days, hours, minutes and seconds, largest first, each at most once.
    Raises ValueError naming the text and the expected form.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected a duration like 24h, 90m or 1h30m, got {text!r}")
    found = _DURATION.fullmatch(text.strip().lower())
    if not text.strip() or found is None:
        raise ValueError(
            f"{text!r} is not a duration: use whole numbers with units d, h, m or s, "
            "largest first, like 7d, 24h, 90m, 30s or 1h30m"
        )
    seconds = sum(int(n) * UNIT_SECONDS[unit] for unit, n in found.groupdict().items() if n)
    return timedelta(seconds=seconds)
