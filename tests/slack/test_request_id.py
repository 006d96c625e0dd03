"""A Slack request is named by its trigger_id in the log and in X-Request-Id."""

from __future__ import annotations

from tests.support.slack import command_body, signed_post


def test_a_command_echoes_its_trigger_id(sclient, fake) -> None:
    response = signed_post(sclient, command_body(fake, "help", trigger="1234.5678.abcdef"))
    assert response.status_code == 200
    assert response.headers["X-Request-Id"] == "1234.5678.abcdef"


def test_a_hostile_trigger_id_is_not_echoed(sclient, fake) -> None:
    hostile = "1234." + "x" * 300
    response = signed_post(sclient, command_body(fake, "help", trigger=hostile))
    assert response.status_code == 200
    assert response.headers["X-Request-Id"] != hostile
