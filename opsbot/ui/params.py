"""The dashboard's query arguments: filters and pages, checked (a 400 page otherwise)."""

from __future__ import annotations

import re
from typing import Any

from flask import request, url_for

from handlers.base import parse_int
from opsbot.core.accounts import ENVIRONMENTS
from opsbot.core.rules import PRIORITIES
from opsbot.db import store
from opsbot.ui.errors import UiError
from opsbot.ui.queries import IncidentQuery, Page

STATUSES = ("active", "open", "acknowledged", "resolved")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_ID = 2**63 - 1
ACCOUNT = re.compile(r"[A-Za-z0-9._-]{1,64}")
SOURCE = re.compile(r"[A-Za-z0-9._:/-]{1,128}")


def incident_query(rt: Any) -> IncidentQuery:
    """Return the incident filters of the request (an account by id or name)."""
    account = _arg("account", ACCOUNT)
    if account is not None:
        found = rt.policy.accounts.find(account)
        account = found.id if found else account
    return IncidentQuery(
        status=_choice("status", STATUSES),
        priority=_choice("priority", PRIORITIES),
        environment=_choice("environment", ENVIRONMENTS),
        account_id=account,
        source=_arg("source", SOURCE),
    )


def _choice(name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(name)
    if not value:
        return None
    if value not in allowed:
        raise UiError(400, "Bad filter", f"{name} must be one of {', '.join(allowed)}.")
    return value


def _arg(name: str, shape: re.Pattern[str]) -> str | None:
    value = request.args.get(name)
    if not value:
        return None
    if not shape.fullmatch(value):
        raise UiError(400, "Bad filter", f"{name} is not a value opsbot records.")
    return value


def paging() -> tuple[int, int | None, int | None]:
    """Return the page size and the cursor (older than) or before (newer than) id."""
    limit = parse_int(request.args.get("limit") or str(DEFAULT_LIMIT), 1, MAX_LIMIT)
    if limit is None:
        raise UiError(400, "Bad page", f"limit must be a whole number from 1 to {MAX_LIMIT}.")
    older, newer = _cursor("cursor"), _cursor("before")
    if older is not None and newer is not None:
        raise UiError(400, "Bad page", "Give cursor or before, not both.")
    return limit, older, newer


def _cursor(name: str) -> int | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        value: int | None = store.decode_cursor(raw)
    except (ValueError, UnicodeError):
        value = None
    if value is None or not 0 < value <= MAX_ID:
        raise UiError(400, "Bad page", f"{name} is not one this dashboard made.")
    return value


def filter_choices(
    rt: Any, query: IncidentQuery, sources: list[str], seen: list[tuple[str, str]]
) -> dict[str, list[tuple[str, str]]]:
    """Return the choices of each filter: fixed lists, configured and seen accounts, sources."""
    accounts = {a.id: f"{a.name} ({a.id})" for a in rt.policy.accounts}
    for account_id, name in seen:
        accounts.setdefault(account_id, f"{name} ({account_id})" if name else account_id)
    if query.account_id:
        accounts.setdefault(query.account_id, query.account_id)
    if query.source and query.source not in sources:
        sources = [*sources, query.source]
    return {
        "status": [(s, s) for s in STATUSES],
        "priority": [(p, p) for p in PRIORITIES],
        "environment": [(e, e) for e in ENVIRONMENTS],
        "account": sorted(accounts.items(), key=lambda kv: kv[1]),
        "source": [(s, s) for s in sorted(sources)],
    }


def page_links(page: Page[Any], endpoint: str, limit: int) -> dict[str, str | None]:
    """Return the URLs of the pages before and after, keeping the other arguments."""
    keep: dict[str, Any] = {
        k: v for k, v in request.args.items() if k not in ("cursor", "before") and v
    }
    if limit == DEFAULT_LIMIT:
        keep.pop("limit", None)

    def at(**cursor: Any) -> str:
        return url_for(endpoint, **keep, **cursor)

    return {
        "older": at(cursor=store.encode_cursor(page.older)) if page.older else None,
        "newer": at(before=store.encode_cursor(page.newer)) if page.newer else None,
        "first": url_for(endpoint, **keep) if (page.newer or request.args.get("cursor")) else None,
    }
