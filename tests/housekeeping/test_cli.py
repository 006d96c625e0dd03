"""``opsbot db current|history|prune`` on a real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from opsbot.cli import main
from opsbot.db import migrate
from opsbot.runtime import Runtime
from tests.housekeeping.conftest import Rows


def run(*args: str, url: str, tmp_path: Path) -> tuple[int, str]:
    env = {"OPSBOT_DATABASE_URL": url, "OPSBOT_CONFIG": str(tmp_path / "none.yaml")}
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output


def test_db_current_says_head_behind_or_never(database_url: str, tmp_path: Path) -> None:
    head = migrate.head_revision()
    assert run("db", "current", url=database_url, tmp_path=tmp_path) == (0, f"{head} (head)\n")
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    code, out = run("db", "current", url=fresh, tmp_path=tmp_path)
    assert (code, out) == (0, f"none (never migrated; run opsbot db upgrade to reach {head})\n")
    migrate.upgrade(fresh, "0007")
    code, out = run("db", "current", url=fresh, tmp_path=tmp_path)
    assert out == f"0007 (behind head {head}: run opsbot db upgrade)\n"


def test_db_history_lists_every_revision_newest_first(database_url: str, tmp_path: Path) -> None:
    code, out = run("db", "history", url=database_url, tmp_path=tmp_path)
    lines = out.splitlines()
    assert code == 0
    assert lines[-1] == (
        "<base> -> 0001: Create the initial schema: deliveries, incidents, alerts, outbox, "
        "silences, audit log."
    )
    assert "0007 -> 0008: Heartbeats and housekeeping (issue 12)." in lines
    assert "(head, current)" in lines[0]


def test_db_current_names_an_unreachable_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/missing-dir/x.db"
    code, out = run("db", "current", url=url, tmp_path=tmp_path)
    assert code == 2 and out.startswith("opsbot: error: cannot read sqlite:///")


def test_db_prune_prints_what_it_did(rt: Runtime, database_url: str, tmp_path: Path) -> None:
    rows = Rows(rt)
    rows.slack_retry_key(datetime.now(UTC) - timedelta(days=3))
    code, out = run("db", "prune", url=database_url, tmp_path=tmp_path)
    assert code == 0, out
    assert out.splitlines() == [
        "delivery_bodies: 0 emptied",
        "slack_dedup: 1 deleted",
        "alerts: 0 deleted",
        "deliveries: 0 deleted",
        "outbox: 0 deleted",
        "audit: 0 deleted",
    ]
