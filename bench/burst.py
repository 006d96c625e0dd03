"""Burst benchmark: N distinct incidents at default budgets against the Jira and Slack fakes.

Builds the app on a fresh SQLite database (or ``--database-url``), fires N
distinct signed CloudWatch alarms at ``POST /sns`` in one instant, and drains
the outbox with the production worker (default batch and limits) on a
simulated clock that jumps from one due row to the next. The fakes enforce
Jira's and Slack's limits on that clock (Jira at opsbot's default budget,
Slack one message a second per channel), so any call over budget shows as a
429. It prints the simulated time to the last card and the last ticket
against the floor the budgets allow, the 429s, the dead rows and the wall time.

Run by hand (not part of the suite); it prints figures and asserts nothing:
    .venv/bin/python bench/burst.py [-n 500] [--database-url URL]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from opsbot.app import create_app  # noqa: E402
from opsbot.config import Settings  # noqa: E402
from opsbot.db import migrate  # noqa: E402
from opsbot.db.models import OutboxRow  # noqa: E402
from opsbot.sns.sign import LocalSigner  # noqa: E402
from tests.fakes import jira_api, slack_api  # noqa: E402
from tests.support.clock import Clock  # noqa: E402
from tests.support.jira import jira_settings, write_config  # noqa: E402
from tests.support.outbox import app_worker, run_until_idle, states  # noqa: E402
from tests.support.slack import slack_settings  # noqa: E402
from tests.support.sns import alarm_message, notify  # noqa: E402

JIRA_CREATE_COST = 2  # requests opsbot charges a create (opsbot.jira.sync.COST)


def main() -> None:
    """Run one burst and print the figures."""
    args = _arguments()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the fakes' request log
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/burst.db"
        migrate.upgrade(url)
        base = Settings(database_url=url, config=Path(tmp) / "opsbot.yaml", data_dir=Path(tmp))
        write_config(base.config)
        clock = Clock(datetime(2026, 12, 1, 3, 0, tzinfo=UTC))
        jira = jira_api.FakeJira()
        slack = slack_api.FakeSlack(clock=lambda: clock.now.timestamp(), post_limit=True)
        jira.clock = lambda: clock.now.timestamp()
        rate = Settings.model_fields["jira_requests_per_second"].default
        jira.rate_limit = rate
        with jira_api.serve(jira), slack_api.serve(slack):
            settings = slack_settings(
                jira_settings(base, jira, jira_requests_per_second=rate), slack
            )
            _run(settings, clock, jira, slack, args.n, rate)


def _run(settings: Settings, clock: Clock, jira, slack, n: int, rate: float) -> None:  # type: ignore[no-untyped-def]
    app = create_app(settings)
    rt = app.extensions["opsbot"]
    rt.clock = clock
    client, signer = app.test_client(), LocalSigner.load_or_create(settings.effective_cert_dir)
    started, wall = clock.now, time.perf_counter()
    for i in range(n):
        notify(client, signer, clock, alarm_message(f"Burst-{i:05d}"))
    ingest_wall = time.perf_counter() - wall
    run_until_idle(app_worker(rt, batch=20), rt, clock, timedelta(hours=6))
    drain_wall = time.perf_counter() - wall - ingest_wall
    last = _last_done(rt)
    card_floor = max(0, n - 1)  # one message a second in one channel, the first at once
    ticket_floor = max(0.0, (JIRA_CREATE_COST * n - rate) / rate)  # a bucket of `rate` to start
    print(f"burst of {n} distinct incidents at the default budgets ({rate:g} Jira requests/s,")
    print("1 Slack message/s per channel), one channel:")
    print(f"  time to last card:   {(last['slack'] - started).total_seconds():8.1f} s simulated"
          f"   floor {card_floor:8.1f} s")  # fmt: skip
    print(f"  time to last ticket: {(last['jira'] - started).total_seconds():8.1f} s simulated"
          f"   floor {ticket_floor:8.1f} s")  # fmt: skip
    print(f"  cards {len(slack.cards())}, tickets {len(jira.created())}, "
          f"429s from Jira {jira.rate_limited}, from Slack {slack.rate_limited}")  # fmt: skip
    print(f"  outbox rows by state: {dict(states(rt))}")
    print(f"  wall time: ingest {ingest_wall:.1f} s, delivery {drain_wall:.1f} s")
    rt.engine.dispose()


def _last_done(rt) -> dict[str, datetime]:  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        stmt = (
            select(OutboxRow.target, func.max(OutboxRow.updated_at))
            .where(OutboxRow.state == "done")
            .group_by(OutboxRow.target)
        )
        found = session.execute(stmt).all()
    return {t: _aware(at) for t, at in found}


def _aware(moment: datetime | str) -> datetime:
    moment = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500, help="distinct incidents (default 500)")
    parser.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    return parser.parse_args()


if __name__ == "__main__":
    main()
