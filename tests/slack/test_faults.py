"""Slack faults reported clearly: bad token on /readyz, missing channels dead-lettered."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from opsbot.core import roles
from opsbot.db.models import OutboxRow
from tests.support.outbox import drain
from tests.support.slack import ops, slack_settings
from tests.support.sns import alarm_message, notify


def rows(rt) -> list[tuple[str, str, str | None]]:
    with rt.sessions() as s:
        found = s.execute(select(OutboxRow).where(OutboxRow.target == "slack")).scalars()
        return [(r.kind, r.state, r.last_error) for r in found]


def test_an_invalid_token_holds_the_cards_until_it_works_and_readyz_stays_up(
    settings, fake, make_app, signer, clock
) -> None:
    app = make_app(slack_settings(settings, fake, slack_bot_token=SecretStr("xoxb-revoked")))
    rt, client = app.extensions["opsbot"], app.test_client()
    notify(client, signer, clock, alarm_message())
    drain(rt)
    [(kind, state, error)] = rows(rt)
    assert (kind, state) == ("post", "pending") and "invalid_auth" in (error or "")
    assert client.get("/readyz").status_code == 200
    status = client.get("/status").get_json()
    assert status["integrations"]["slack"]["state"] == "stopped"
    assert "xoxb" not in str(status) and status["outbox"]["slack"] == {"pending": 1}
    assert rt.metrics.value("opsbot_slack_errors_total", error="invalid_auth") == 1
    fake.token = "xoxb-revoked"  # a working token: the workspace re-installed the app
    clock.advance(minutes=1)
    drain(rt)
    assert [(k, s) for k, s, _ in rows(rt)] == [("post", "done")] and len(fake.cards()) == 1
    assert client.get("/status").get_json()["integrations"]["slack"]["state"] == "ok"


@pytest.mark.parametrize(
    ("channel", "error"), [("#nowhere", "channel_not_found"), ("#ops", "not_in_channel")]
)
def test_missing_channel_is_dead_lettered_not_retried(
    settings, fake, make_app, signer, clock, channel, error
) -> None:
    fake.not_member.add("C0OPS")
    app = make_app(slack_settings(settings, fake, slack_channel=channel))
    rt = app.extensions["opsbot"]
    notify(app.test_client(), signer, clock, alarm_message())
    drain(rt)
    assert rows(rt) == [("post", "dead", f"Slack post failed: {error}")]
    assert app.test_client().get("/readyz").status_code == 200  # not an auth problem


def test_update_waits_for_the_post(srt, sclient, fake, signer, clock) -> None:
    fake.rate_limit("chat.postMessage", times=1, retry_after=60)
    notify(sclient, signer, clock, alarm_message())
    clock.advance(seconds=1)
    notify(sclient, signer, clock, alarm_message(state="OK", old="ALARM"))
    drain(srt)
    assert sorted((k, s) for k, s, _ in rows(srt)) == [
        ("post", "pending"),
        ("thread", "pending"),
        ("update", "pending"),
    ]
    clock.advance(seconds=61)
    for _ in range(3):
        drain(srt)
        clock.advance(seconds=6)
    assert {s for _, s, _ in rows(srt)} == {"done"}
    (card,) = fake.cards()
    assert card.updates == 1 and "Resolved" in str(card.blocks)


def test_the_command_name_is_configurable(settings, fake, make_app, config_path) -> None:
    app = make_app(slack_settings(settings, fake, slack_command="/opsdesk"))
    reply = ops(app.test_client(), fake, "help", command="/opsdesk")
    assert "`/opsdesk whoami`" in reply["text"]


def test_slack_off_means_no_route(client) -> None:
    assert client.post("/slack/events", data="x").status_code == 404


def test_roles_are_pure_and_ordered() -> None:
    mapping = {"admin": ("U1",), "approver": ("S9",), "operator": ("U2", "S9")}
    assert roles.role_of("U1", set(), mapping) == "admin"
    assert roles.role_of("U3", {"S9"}, mapping) == "approver"
    assert roles.role_of("U2", set(), mapping) == "operator"
    assert roles.role_of("U4", set(), mapping) == "viewer"
    assert roles.group_ids(mapping) == {"S9"}
    assert roles.allowed("operator", "resolve") and not roles.allowed("operator", "approve")
    assert roles.allowed("approver", "approve") and not roles.allowed("viewer", "acknowledge")
    assert roles.allowed("admin", "anything-new") and not roles.allowed("approver", "anything-new")
