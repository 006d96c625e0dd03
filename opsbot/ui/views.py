"""The read-only dashboard at ``/ui``: incidents, an incident's timeline, silences, runs, windows.

Server-rendered HTML (Jinja2, autoescaped), no script at all: filters are a
GET form, paging is links. Every page carries a strict Content-Security-Policy
(``signin``). Bad input is a 400 page, an unknown id a 404 page, never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, render_template

from handlers.base import parse_int
from opsbot.config.yamldoc import ConfigError
from opsbot.db import store
from opsbot.db.session import transaction
from opsbot.runbooks.patch_windows import parse_windows
from opsbot.slack.client import jira_link
from opsbot.ui import params, queries, signin, timeline
from opsbot.ui.errors import UiError, register_errors
from opsbot.web.request import runtime

log = logging.getLogger(__name__)

bp = Blueprint(
    "ui",
    __name__,
    url_prefix="/ui",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
NEXT_RUNS = 3
signin.mount(bp)
register_errors(bp)


@bp.get("")
@bp.get("/")
def incidents() -> str:
    """Show incidents, newest first, filtered and paged."""
    rt = runtime()
    query = params.incident_query(rt)
    limit, older, newer = params.paging()
    with transaction(rt.sessions) as session:
        page = queries.incident_page(session, query, limit=limit, older=older, newer=newer)
        sources = queries.incident_sources(session)
        seen_accounts = queries.incident_accounts(session)
        return render_template(
            "ui/incidents.html",
            page=page,
            query=query,
            filters=params.filter_choices(rt, query, sources, seen_accounts),
            links=params.page_links(page, "ui.incidents", limit),
        )


@bp.get("/incidents/<raw_id>")
def incident(raw_id: str) -> str:
    """Show one incident: its facts, links and timeline."""
    rt = runtime()
    incident_id = parse_int(raw_id, 1, params.MAX_ID)
    if incident_id is None:
        raise UiError(404, "Not found", "There is no such incident.")
    with transaction(rt.sessions) as session:
        row = store.get_incident(session, incident_id)
        if row is None:
            raise UiError(404, "Not found", f"There is no incident {incident_id}.")
        alerts = queries.incident_alerts(session, incident_id)
        entries = queries.incident_audit(session, incident_id)
        runs = queries.incident_runs(session, incident_id)
        settings = rt.settings
        jira = (
            jira_link(settings.jira_url, row.jira_key)
            if row.jira_key and settings.jira_url
            else None
        )
        return render_template(
            "ui/incident.html",
            incident=row,
            events=timeline.events(alerts, entries, runs),
            runs=runs,
            jira_url=jira,
            slack_url=timeline.slack_url(row.slack_channel, row.slack_ts),
            console_url=timeline.safe_href(row.console_url),
            alerts_cut=len(alerts) >= queries.TIMELINE_ALERTS,
        )


@bp.get("/silences")
def silences() -> str:
    """Show stored silences (operators', patch windows') and the configured ones."""
    rt = runtime()
    limit, older, newer = params.paging()
    with transaction(rt.sessions) as session:
        page = queries.silence_page(session, limit=limit, older=older, newer=newer)
        return render_template(
            "ui/silences.html",
            page=page,
            now=rt.clock(),
            configured=rt.policy.silences,
            links=params.page_links(page, "ui.silences", limit),
        )


@bp.get("/runs")
def runs() -> str:
    """Show runbook runs, newest first."""
    rt = runtime()
    limit, older, newer = params.paging()
    with transaction(rt.sessions) as session:
        page = queries.run_page(session, limit=limit, older=older, newer=newer)
        return render_template(
            "ui/runs.html", page=page, links=params.page_links(page, "ui.runs", limit)
        )


@bp.get("/patch-windows")
def patch_windows() -> str:
    """Show the configured patch windows, their next starts and their latest runs."""
    rt = runtime()
    now = rt.clock()
    try:
        windows = parse_windows(rt.policy)
        problem = None
    except ConfigError as exc:
        windows, problem = [], str(exc)
    with transaction(rt.sessions) as session:
        shown = [
            {
                "window": w,
                "next": w.next_runs(now, NEXT_RUNS),
                "runs": queries.window_runs(session, w.name),
            }
            for w in windows
        ]
        return render_template("ui/patch_windows.html", windows=shown, problem=problem, now=now)


@bp.get("/outbox")
def outbox() -> str:
    """Show dead-lettered outbox rows: the calls opsbot gave up on."""
    rt = runtime()
    limit, older, newer = params.paging()
    with transaction(rt.sessions) as session:
        page = queries.dead_page(session, limit=limit, older=older, newer=newer)
        return render_template(
            "ui/outbox.html", page=page, links=params.page_links(page, "ui.outbox", limit)
        )


@bp.route("/<path:rest>")
def unknown(rest: str) -> str:
    """Answer an unknown dashboard path with the 404 page."""
    raise UiError(404, "Not found", "There is no such page.")


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _local(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%a %Y-%m-%d %H:%M %Z")


def _duration(value: timedelta) -> str:
    minutes = int(value.total_seconds()) // 60
    hours, minutes = divmod(minutes, 60)
    return (
        " ".join(p for p in (f"{hours}h" if hours else "", f"{minutes}m" if minutes else "") if p)
        or "0m"
    )


FILTERS: dict[str, Callable[..., Any]] = {
    "when": _when,
    "local": _local,
    "duration": _duration,
    "safe_href": timeline.safe_href,
    "brief": timeline.brief,
}
for _name, _function in FILTERS.items():
    bp.add_app_template_filter(_function, f"ui_{_name}")


def register(app: Flask) -> None:
    """Mount the dashboard."""
    app.register_blueprint(bp)
