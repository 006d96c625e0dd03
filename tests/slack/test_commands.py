"""``/ops`` and the card's buttons end to end: signed requests, roles, audit, dedup."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from opsbot.db.models import AuditEntry, Incident, OutboxRow, SilenceRow
from tests.support.outbox import drain
from tests.support.slack import button_body, command_body, ops, signed_post
from tests.support.sns import alarm_message, notify


@pytest.fixture
def incident_id(srt, sclient, fake, signer, clock) -> int:
    r = notify(sclient, signer, clock, alarm_message())
    drain(srt)
    return int(r.json["alerts"][0]["incident_id"])


def audit(rt) -> list[tuple[str, str, str]]:
    with rt.sessions() as s:
        rows = s.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()
        return [(r.actor, r.action, r.subject_id) for r in rows]


def outbox(rt, incident_id: int) -> list[tuple[str, str, dict]]:
    with rt.sessions() as s:
        rows = s.execute(
            select(OutboxRow).where(OutboxRow.incident_id == incident_id).order_by(OutboxRow.id)
        ).scalars()
        return [(r.target, r.kind, r.payload) for r in rows]


def status(rt, incident_id: int) -> str:
    with rt.sessions() as s:
        return s.get(Incident, incident_id).status


# --- request verification -------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "expected"),
    [("unsigned", 401), ("wrong secret", 401), ("stale", 401), ("foreign workspace", 403)],
)
def test_unverified_requests_are_refused_and_change_nothing(
    srt, sclient, fake, incident_id, how, expected
) -> None:
    before = audit(srt)
    body = command_body(fake, f"ack {incident_id}", team="T0OTHER" if "foreign" in how else None)
    if how == "unsigned":
        response = sclient.post(
            "/slack/events",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    elif how == "wrong secret":
        response = signed_post(sclient, body, secret="not-the-secret")
    elif how == "stale":
        response = signed_post(sclient, body, timestamp=int(time.time()) - 301)
    else:
        response = signed_post(sclient, body)
    assert response.status_code == expected
    assert status(srt, incident_id) == "open"
    assert audit(srt) == before


def test_foreign_workspace_button_is_refused(srt, sclient, fake, incident_id) -> None:
    body = button_body(fake, "incident_resolve", str(incident_id), team="T0OTHER")
    assert signed_post(sclient, body).status_code == 403
    assert status(srt, incident_id) == "open"


def test_a_retried_command_does_not_act_twice(srt, sclient, fake, incident_id) -> None:
    body = command_body(fake, f"resolve {incident_id} rebooted", trigger="42.42.retry")
    first = signed_post(sclient, body)
    again = signed_post(
        sclient, body, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    )
    assert first.status_code == again.status_code == 200
    assert "resolved" in first.get_json()["text"]
    assert again.get_json()["text"] == "That request was already handled."
    assert [a for _, a, _ in audit(srt)].count("incident.resolve") == 1


# --- /ops subcommands -----------------------------------------------------------


def test_help_lists_every_command_and_unknown_words_get_a_hint(sclient, fake) -> None:
    reply = ops(sclient, fake, "help")
    assert reply["response_type"] == "ephemeral"
    for word in (
        "incidents",
        "show",
        "ack",
        "resolve",
        "assign",
        "silence",
        "silences",
        "unsilence",
        "whoami",
    ):
        assert f"`/ops {word}" in reply["text"]
    assert ops(sclient, fake, "")["text"] == reply["text"]
    unknown = ops(sclient, fake, "reboot everything")
    assert unknown == {
        "text": "I don't know `reboot`. Try `/ops help`.",
        "response_type": "ephemeral",
    }


def test_whoami_tells_each_role(sclient, fake) -> None:
    assert ": viewer." in ops(sclient, fake, "whoami", user="U0VIEW")["text"]
    assert "ana (U0OPS): operator." in ops(sclient, fake, "whoami", user="U0OPS")["text"]
    assert ": admin." in ops(sclient, fake, "whoami", user="U0ADMIN")["text"]
    # gus is an operator through the user group S0OPERATORS (usergroups.users.list)
    assert "gus (U0GROUPIE): operator." in ops(sclient, fake, "whoami", user="U0GROUPIE")["text"]
    assert fake.called("usergroups.users.list")[0]["usergroup"] == "S0OPERATORS"


def test_incidents_lists_with_filters(srt, sclient, fake, signer, clock, incident_id) -> None:
    listed = ops(sclient, fake, "incidents", user="U0VIEW")
    assert listed["response_type"] == "ephemeral"
    assert listed["text"].startswith(f"#{incident_id} ") and "High-CPU" in listed["text"]
    assert ops(sclient, fake, "incidents resolved")["text"] == "No incidents match."
    assert ops(sclient, fake, "incidents all P5 sandbox")["text"] == "No incidents match."
    assert (
        f"#{incident_id}" in ops(sclient, fake, "incidents open prod")["text"]
        or f"#{incident_id}" in ops(sclient, fake, "incidents open")["text"]
    )
    bad = ops(sclient, fake, "incidents loud")["text"]
    assert bad.startswith("`loud` is not a status, priority or environment. Usage: `/ops incidents")


def test_show_and_its_errors(sclient, fake, incident_id) -> None:
    shown = ops(sclient, fake, f"show #{incident_id}", user="U0VIEW")["text"]
    assert "High-CPU" in shown and "first seen 2026-11-29 08:00 UTC" in shown
    usage = "Usage: `/ops show <incident>"  # the runbooks group adds "| show run <run>"
    assert ops(sclient, fake, "show")["text"].startswith(f"Which incident? {usage}")
    assert ops(sclient, fake, "show 999")["text"].startswith(f"There is no incident 999. {usage}")
    assert ops(sclient, fake, "show abc")["text"].startswith("`abc` is not an incident number.")


def test_ack_acknowledges_publicly_and_updates_the_card(srt, sclient, fake, incident_id) -> None:
    reply = ops(sclient, fake, f"ack {incident_id}")
    assert reply == {"text": f"Incident {incident_id} acknowledged.", "response_type": "in_channel"}
    assert status(srt, incident_id) == "acknowledged"
    drain(srt)
    (card,) = fake.cards()
    assert card.updates == 1 and "Acknowledged by ana (U0OPS)" in str(card.blocks)
    assert "Acknowledged by ana (U0OPS)." in fake.thread(card.ts)
    again = ops(sclient, fake, f"ack {incident_id}")
    assert again["response_type"] == "ephemeral" and "nothing to acknowledge" in again["text"]
    assert ops(sclient, fake, "ack 999")["text"] == (
        "There is no incident 999. Usage: `/ops ack <incident>`"
    )


def test_resolve_with_a_note_and_assign(srt, sclient, fake, incident_id) -> None:
    assigned = ops(sclient, fake, f"assign {incident_id} <@U0ADMIN|ada>")
    assert assigned["text"] == f"Incident {incident_id} assigned to ada."
    assert ops(sclient, fake, f"assign {incident_id}")["text"] == (
        "Whom should I assign it to? Usage: `/ops assign <incident> @user`"
    )
    by_id = ops(sclient, fake, f"assign {incident_id} <@U0OPS>")
    assert by_id["text"] == f"Incident {incident_id} assigned to ana."  # name via users.info
    assert ops(sclient, fake, f"assign {incident_id} bob")["text"].startswith("`bob` is not a user")
    reply = ops(sclient, fake, f"resolve {incident_id} rebooted the box")
    assert reply["response_type"] == "in_channel"
    assert status(srt, incident_id) == "resolved"
    jira = [p for t, k, p in outbox(srt, incident_id) if t == "jira" and k == "resolve"]
    assert jira == [
        {
            "text": "Resolved by ana (U0OPS). rebooted the box",
            "reason": "Resolved by ana (U0OPS). rebooted the box",
        }
    ]
    assert ops(sclient, fake, "resolve")["text"].startswith("Which incident?")


def test_silence_silences_and_unsilence(srt, sclient, fake, signer, clock, incident_id) -> None:
    reply = ops(sclient, fake, "silence alarm=High-CPU* account=111122223333 for 2h because deploy")
    assert reply["response_type"] == "in_channel"
    assert reply["text"].startswith("Silence 1 (alarm_name=High-CPU* account=111122223333) for 2h")
    with srt.sessions() as s:
        row = s.get(SilenceRow, 1)
    assert row.matcher == {"alarm_name": "High-CPU*", "account": "111122223333"}
    assert (row.ends_at - clock.now).total_seconds() == 7200 and row.reason == "deploy"
    assert row.created_by == "ana (U0OPS)"
    fresh = notify(sclient, signer, clock, alarm_message(name="High-CPU-2"))
    assert fresh.json["alerts"][0]["action"] == "silenced"  # applies at once (cache invalidated)
    listed = ops(sclient, fake, "silences", user="U0VIEW")["text"]
    assert listed.startswith("1: ") and "deploy" in listed
    assert ops(sclient, fake, "unsilence 1")["text"] == "Silence 1 ended."
    assert ops(sclient, fake, "silences")["text"] == "No silences in force."
    assert ops(sclient, fake, "unsilence 1")["text"] == "Silence 1 has already ended."
    assert ops(sclient, fake, "unsilence 9")["text"].startswith("There is no silence 9.")
    assert ops(sclient, fake, "unsilence x")["text"].startswith("Which silence?")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("silence alarm=X", "Say how long: `for 2h`."),
        ("silence for 2h", "Say what to silence, like `alarm=High-CPU*`."),
        ("silence alarm=X for", "Say how long: `for 2h`."),
        ("silence colour=red for 1h", "`colour` is not a matcher key"),
        ("silence alarm for 1h", "`alarm` is not a matcher: write key=value."),
        ("silence alarm=X for soon", "'soon' is not a duration"),
        ("silence alarm=X for 1h since monday", "Unexpected `since monday`"),
        ("silence env=staging for 1h", "Bad silence matcher"),
        ("silence account=nobody for 1h", "Bad silence matcher"),
    ],
)
def test_silence_errors_explain_and_show_usage(srt, sclient, fake, text, error) -> None:
    reply = ops(sclient, fake, text)
    assert reply["response_type"] == "ephemeral"
    assert error in reply["text"]
    assert reply["text"].endswith(
        "Usage: `/ops silence <matcher…> for <duration> [because <reason>]`"
    )
    with srt.sessions() as s:
        assert s.execute(select(SilenceRow)).first() is None


# --- roles and buttons ----------------------------------------------------------


def test_viewer_is_refused_state_changes_and_audited(srt, sclient, fake, incident_id) -> None:
    reply = ops(sclient, fake, f"resolve {incident_id}", user="U0VIEW")
    assert reply == {
        "text": "Refused: resolve needs the operator role; you are a viewer.",
        "response_type": "ephemeral",
    }
    assert ops(sclient, fake, "silence alarm=X for 1h", user="U0VIEW")["text"].startswith("Refused")
    assert status(srt, incident_id) == "open"
    assert ("vic (U0VIEW)", "slack.refused", str(incident_id)) in audit(srt)


def test_viewer_pressing_resolve_is_refused_and_audited(srt, sclient, fake, incident_id) -> None:
    response = signed_post(
        sclient, button_body(fake, "incident_resolve", str(incident_id), user="U0VIEW")
    )
    assert response.status_code == 200
    assert status(srt, incident_id) == "open"
    assert fake.responses[-1] == {
        "text": "Refused: resolve needs the operator role; you are a viewer.",
        "response_type": "ephemeral",
        "replace_original": False,
    }
    with srt.sessions() as s:
        entry = s.execute(
            select(AuditEntry).where(AuditEntry.action == "slack.refused")
        ).scalar_one()
    assert entry.actor == "vic (U0VIEW)" and entry.subject_id == str(incident_id)
    assert entry.detail == {
        "user_id": "U0VIEW",
        "role": "viewer",
        "action": "resolve",
        "needs": "operator",
    }


def test_operator_pressing_resolve_resolves_updates_card_and_comments_on_jira(
    srt, sclient, fake, incident_id
) -> None:
    body = button_body(fake, "incident_resolve", str(incident_id), user="U0GROUPIE")
    assert signed_post(sclient, body).status_code == 200
    assert status(srt, incident_id) == "resolved"
    assert fake.responses[-1]["text"] == f"Incident {incident_id} resolved."
    assert ("gus (U0GROUPIE)", "incident.resolve", str(incident_id)) in audit(srt)
    jira = [p.get("text") for t, k, p in outbox(srt, incident_id) if (t, k) == ("jira", "resolve")]
    assert jira == ["Resolved by gus (U0GROUPIE)."]
    drain(srt)
    (card,) = fake.cards()
    assert card.updates == 1 and "Resolved" in str(card.blocks)
    assert "Resolved by gus (U0GROUPIE)." in fake.thread(card.ts)
    # the same press delivered again changes nothing
    assert signed_post(sclient, body).status_code == 200
    assert [a for _, a, _ in audit(srt)].count("incident.resolve") == 1


def test_ack_and_silence_buttons(srt, sclient, fake, signer, clock, incident_id) -> None:
    signed_post(sclient, button_body(fake, "incident_ack", str(incident_id)))
    assert status(srt, incident_id) == "acknowledged"
    signed_post(sclient, button_body(fake, "incident_silence", str(incident_id)))
    assert fake.responses[-1]["text"].startswith("Silence 1 keeps incident")
    with srt.sessions() as s:
        matcher = s.get(SilenceRow, 1).matcher
    assert matcher["source"] == "aws.cloudwatch" and matcher["account"] == "111122223333"
    for _ in range(3):  # thread replies go out at most one per second per channel
        drain(srt)
        clock.advance(seconds=1)
    (card,) = fake.cards()
    assert any(t.startswith("Silenced for 1 h by ana (U0OPS)") for t in fake.thread(card.ts))
    signed_post(sclient, button_body(fake, "incident_ack", "999"))
    assert fake.responses[-1]["text"] == "There is no incident 999."


# --- the card's "Silence 1 h" button silences the alert it was pressed on ----------------


def _press_silence(srt, sclient, fake, incident_id: int) -> dict:
    signed_post(sclient, button_body(fake, "incident_silence", str(incident_id)))
    assert fake.responses[-1]["text"].startswith("Silence 1 keeps incident")
    with srt.sessions() as s:
        return s.get(SilenceRow, 1).matcher


def test_silence_button_silences_the_next_delivery_of_the_same_alarm(
    srt, sclient, fake, signer, clock, incident_id
) -> None:
    with srt.sessions() as s:
        fingerprint = s.get(Incident, incident_id).fingerprint
    matcher = _press_silence(srt, sclient, fake, incident_id)
    assert matcher["fingerprint"] == fingerprint and "alarm_name" not in matcher
    clock.advance(minutes=5)
    again = notify(sclient, signer, clock, alarm_message(when=clock.now))
    assert again.json["alerts"][0]["action"] == "silenced"
    other = notify(sclient, signer, clock, alarm_message("High-Memory", when=clock.now))
    assert other.json["alerts"][0]["action"] == "open"  # only that alarm is quiet
    clock.advance(hours=1)
    after = notify(sclient, signer, clock, alarm_message(when=clock.now))
    assert after.json["alerts"][0]["action"] != "silenced"  # the silence lasted 1 h


def test_silence_button_silences_an_alert_without_a_resource(
    srt, sclient, fake, signer, clock
) -> None:
    text = "ALARM: nightly backup of the billing database failed"
    first = notify(sclient, signer, clock, text)
    (alert,) = first.json["alerts"]
    with srt.sessions() as s:
        row = s.get(Incident, alert["incident_id"])
        assert row.resource == "" and row.title != ""
    _press_silence(srt, sclient, fake, alert["incident_id"])
    clock.advance(minutes=1)
    again = notify(sclient, signer, clock, text)
    assert again.json["alerts"][0]["action"] == "silenced"
