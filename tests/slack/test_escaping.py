"""Untrusted text reaches Slack escaped; opsbot's own links and mentions still work.

Every assertion is on the exact text the fake Slack Web API received.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from opsbot.config import Settings
from opsbot.db.models import Incident
from opsbot.runtime import Runtime
from tests.fakes.slack_api import FakeSlack
from tests.support.outbox import drain
from tests.support.slack import ROLES_YAML, ops, slack_settings
from tests.support.sns import alarm_message, notify

JIRA = "https://jira.example.com"
HERE = "<!here>"
DISGUISED = "<https://evil.example|the runbook>"
REASON = f"CPU high {HERE} see {DISGUISED} & act"
ESCAPED_REASON = "CPU high &lt;!here&gt; see &lt;https://evil.example|the runbook&gt; &amp; act"


@pytest.fixture
def jrt(settings: Settings, fake: FakeSlack, config_path: Any, make_app: Callable) -> Runtime:
    config_path.write_text(ROLES_YAML)
    app: Flask = make_app(slack_settings(settings, fake, jira_url=JIRA))
    runtime: Runtime = app.extensions["opsbot"]
    runtime.client = app.test_client()  # type: ignore[attr-defined]
    return runtime


def hostile_alarm(clock: Any, name: str = "High-CPU <!channel>") -> str:
    message = json.loads(alarm_message(name, when=clock.now))
    message["NewStateReason"] = REASON
    return json.dumps(message)


def open_card(rt: Runtime, fake: FakeSlack, signer: Any, clock: Any) -> tuple[int, Any]:
    opened = notify(rt.client, signer, clock, hostile_alarm(clock))  # type: ignore[attr-defined]
    drain(rt)
    (card,) = fake.cards()
    return int(opened.json["alerts"][0]["incident_id"]), card


def mrkdwn_texts(blocks: list[dict[str, Any]]) -> list[str]:
    texts = []
    for block in blocks:
        if block["type"] == "section":
            texts += [f["text"] for f in block.get("fields", [])]
            texts += [block["text"]["text"]] if "text" in block else []
        if block["type"] == "context":
            texts += [e["text"] for e in block["elements"]]
    return texts


def settle(rt: Runtime, clock: Any) -> None:
    for _ in range(3):  # thread replies go out at most one per second per channel
        drain(rt)
        clock.advance(seconds=1)


def test_here_in_an_alarm_pings_no_one_and_a_disguised_link_shows_literally(
    jrt, fake, signer, clock
) -> None:
    _, card = open_card(jrt, fake, signer, clock)
    texts = mrkdwn_texts(card.blocks)
    assert texts[-2].endswith(f" {ESCAPED_REASON}")  # the reason section, as written
    assert card.text.startswith("P") and "High-CPU &lt;!channel&gt; " in card.text
    everything = card.text + "".join(texts)
    assert "<!" not in everything and "<https://evil" not in everything
    header = card.blocks[0]["text"]
    assert header["type"] == "plain_text" and "High-CPU <!channel>" in header["text"]


def test_opsbots_own_jira_link_still_renders_beside_escaped_names(jrt, fake, signer, clock) -> None:
    incident_id, card = open_card(jrt, fake, signer, clock)
    with jrt.sessions.begin() as s:
        row = s.get(Incident, incident_id)
        row.jira_key, row.account_name = "OPS-7", "prod <cim> & co"
    ops(jrt.client, fake, f"ack {incident_id}")
    settle(jrt, clock)
    texts = mrkdwn_texts(card.blocks)
    assert f"*Jira*\n<{JIRA}/browse/OPS-7|OPS-7>" in texts
    assert "*Environment*\nprod · prod &lt;cim&gt; &amp; co (111122223333)" in texts


def test_thread_notes_and_replies_show_operator_and_alert_text_as_written(
    jrt, fake, signer, clock
) -> None:
    incident_id, card = open_card(jrt, fake, signer, clock)
    ops(jrt.client, fake, f"resolve {incident_id} done {HERE} {DISGUISED}")
    settle(jrt, clock)
    notes = [t for t in fake.thread(card.ts) if t.startswith("Resolved by")]
    assert notes == [
        "Resolved by ana (U0OPS). done &lt;!here&gt; &lt;https://evil.example|the runbook&gt;"
    ]
    shown = ops(jrt.client, fake, f"show {incident_id}")["text"]
    assert ESCAPED_REASON in shown and "High-CPU &lt;!channel&gt;" in shown
    assert "<!" not in shown
    listed = ops(jrt.client, fake, "incidents all")["text"]
    assert "High-CPU &lt;!channel&gt;" in listed and "<!" not in listed


def test_silence_replies_echo_matchers_and_reasons_escaped(jrt, fake) -> None:
    reply = ops(jrt.client, fake, "silence alarm=<!here>* for 1h because <!channel> maintenance")
    assert reply["text"] == "Silence 1 (alarm_name=&lt;!here&gt;*) for 1h by ana."
    listed = ops(jrt.client, fake, "silences")["text"]
    assert "&lt;!channel&gt; maintenance" in listed and "<!" not in listed
