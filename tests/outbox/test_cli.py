"""``opsbot outbox list [--dead]`` and ``opsbot outbox retry ID|--all-dead``, and the dead gauge."""

from __future__ import annotations

from datetime import UTC, datetime

from click.testing import CliRunner
from sqlalchemy import select

from opsbot.cli import main
from opsbot.db.models import OutboxRow
from opsbot.outbox.ports import PermanentFailure
from tests.outbox.test_worker import RecordingSender, worker
from tests.support.sns import alarm_message, notify


def invoke(settings, *args: str):
    env = {"OPSBOT_DATABASE_URL": settings.database_url, "OPSBOT_CONFIG": str(settings.config)}
    return CliRunner().invoke(main, ["outbox", *args], env=env, catch_exceptions=False)


def test_dead_rows_are_listed_counted_and_replayed(client, signer, clock, rt, settings) -> None:
    for name in ("A", "B"):
        notify(client, signer, clock, alarm_message(name))
    refusal = PermanentFailure("Slack post failed: channel_not_found")
    slack = RecordingSender("slack", refusal, refusal)
    worker(rt, clock, slack, RecordingSender("jira")).run_once()
    assert invoke(settings, "list").output.count(" dead ") == 2
    listed = invoke(settings, "list", "--dead").output.splitlines()
    assert len(listed) == 2 and all("channel_not_found" in line for line in listed)
    assert 'opsbot_outbox_dead{target="slack"} 2' in client.get("/metrics").text
    assert client.get("/status").get_json()["outbox"]["slack"] == {"dead": 2}

    with rt.sessions() as s:
        first, second = s.scalars(select(OutboxRow.id).where(OutboxRow.state == "dead"))
    assert invoke(settings, "retry", str(first)).output == f"replayed 1 dead rows: [{first}]\n"
    again = invoke(settings, "retry", str(first))
    assert again.exit_code == 2 and f"outbox row {first} is not dead" in again.output
    assert invoke(settings, "retry", "--all-dead").output == f"replayed 1 dead rows: [{second}]\n"
    assert invoke(settings, "list", "--dead").output == "no dead rows\n"
    clock.now = datetime.now(UTC)  # the command replays on the wall clock
    worker(rt, clock, RecordingSender("slack")).run_once()
    assert 'opsbot_outbox_dead{target="slack"} 0' in client.get("/metrics").text
    assert invoke(settings, "list").output == "the outbox is empty\n"


def test_retry_wants_exactly_one_of_an_id_or_all_dead(settings, rt) -> None:
    for args in ((), ("1", "--all-dead")):
        answer = invoke(settings, "retry", *args)
        assert answer.exit_code == 2 and "give either a row ID or --all-dead" in answer.output
    assert invoke(settings, "retry", "x").exit_code == 2  # click: not an integer
