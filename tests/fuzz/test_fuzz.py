"""Property-based fuzzing of every public endpoint against the real app and database (issue 15).

The property, for every request: no 5xx, no traceback in the answer or the log, and a 4xx
stores nothing. Deterministic (``derandomize``) and bounded for CI; ``OPSBOT_FUZZ_EXAMPLES``
raises the count for a long run by hand.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from pydantic import SecretStr

from opsbot.intake.events_schema import SCHEMA
from tests.fakes.slack_api import FakeSlack, serve
from tests.fuzz.strategies import CHARS, JSON, TEXT, aws_messages, deep, mutated
from tests.support.hostile import row_counts
from tests.support.slack import ROLES_YAML, SECRET, sign, slack_settings
from tests.support.sns import TOPIC, post_sns
from tests.support.stalled import closed_port_url, hanging_server

FUZZ = settings.get_profile("opsbot-fuzz")
JIRA_SECRET = "fuzz-webhook-secret"


def check(response: Any, before: dict[str, int], rt: Any) -> None:
    """Assert the property: no 5xx, no traceback, nothing stored for a 4xx."""
    body = response.get_data(as_text=True)
    assert response.status_code < 500, (response.status_code, body[:500])
    assert "Traceback" not in body
    if response.status_code >= 400:
        assert row_counts(rt) == before, (response.status_code, body[:300])


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.WARNING)
    yield
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert not logged, logged[0].getMessage()


def unsurrogate(text: str) -> str:
    # What SNS signs is UTF-8: a signed field can hold anything but a lone surrogate.
    return text.encode("utf-8", "replace").decode("utf-8") if text else text


# -- POST /sns -------------------------------------------------------------------------------

ENVELOPE_KEYS = ["Type", "MessageId", "TopicArn", "Message", "Timestamp", "Signature",
                 "SignatureVersion", "SigningCertURL", "Subject", "SubscribeURL",
                 "Token"]  # fmt: skip
GARBAGE = st.one_of(
    st.binary(max_size=600),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(ENVELOPE_KEYS), JSON, max_size=11).map(
        lambda d: json.dumps(d).encode()
    ),
    st.sampled_from([40, 1000, 100_000]).map(lambda n: deep(n).encode()),
)


@FUZZ
@given(body=GARBAGE)
def test_sns_unsigned_garbage(client, rt, no_tracebacks, body: bytes) -> None:
    before = row_counts(rt)
    check(client.post("/sns", data=body, content_type="text/plain"), before, rt)


@FUZZ
@given(
    message=aws_messages(),
    message_id=st.one_of(st.none(), st.text(CHARS, min_size=1, max_size=200)),
    subject=st.one_of(st.none(), TEXT),
)
def test_sns_signed_adversarial_content(
    client, signer, clock, rt, no_tracebacks, message, message_id, subject
) -> None:
    envelope = signer.notification(
        unsurrogate(message),
        topic_arn=TOPIC,
        subject=unsurrogate(subject) if subject is not None else None,
        message_id=unsurrogate(message_id) if message_id else str(uuid.uuid4()),
        timestamp=clock.now,
    )
    before = row_counts(rt)
    check(post_sns(client, envelope), before, rt)


# -- POST /api/events and the read API -------------------------------------------------------


@FUZZ
@given(body=from_schema(SCHEMA))
def test_events_api_schema_valid_bodies(client, rt, no_tracebacks, body: Any) -> None:
    before = row_counts(rt)
    check(client.post("/api/events", json=body), before, rt)


@FUZZ
@given(
    body=st.one_of(
        JSON.map(lambda v: json.dumps({"events": [v]})),
        st.builds(lambda e: json.dumps({"events": [e]}), mutated({"id": "x", "source": "s",
                  "resource": "r", "title": "t", "severity": "low", "labels": {"a": "b"}})),
        st.sampled_from([deep(33), deep(100_000), '{"events": [{"id": "\\ud800"}]}']),
        st.text(CHARS, max_size=200),
    )
)  # fmt: skip
def test_events_api_garbage(client, rt, no_tracebacks, body: str) -> None:
    before = row_counts(rt)
    data = body.encode("utf-8", "surrogatepass")
    check(client.post("/api/events", data=data, content_type="application/json"), before, rt)


@FUZZ
@given(
    path=st.one_of(st.just(""), TEXT.map(lambda t: "/" + quote(t.encode("utf-8", "surrogatepass"),
                                                                safe=""))),
    query=st.dictionaries(st.sampled_from(["limit", "cursor", "status", "priority",
                          "environment", "x"]), TEXT, max_size=4),
)  # fmt: skip
def test_read_api(client, rt, no_tracebacks, path: str, query: dict[str, str]) -> None:
    before = row_counts(rt)
    qs = urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in query.items()})
    check(client.get(f"/api/incidents{path}?{qs}"), before, rt)


# -- POST /jira/webhook ------------------------------------------------------------------------

JIRA_EVENT = {
    "webhookEvent": "jira:issue_updated",
    "user": {"accountId": "557058:f5", "displayName": "Dana"},
    "issue": {"key": "OPS-1", "fields": {"status": {"name": "Done", "statusCategory": {
        "key": "done"}}, "resolution": {"name": "Done"}, "assignee": {"displayName": "x"}}},
    "changelog": {"items": [{"field": "status", "toString": "Done"},
                            {"field": "assignee", "toString": "Bob"}]},
}  # fmt: skip


@pytest.fixture
def jira_client(settings, make_app) -> Any:
    app = make_app(settings.model_copy(update={"jira_webhook_secret": SecretStr(JIRA_SECRET)}))
    return app.test_client(), app.extensions["opsbot"]


@FUZZ
@given(
    body=st.one_of(mutated(JIRA_EVENT), JSON).map(json.dumps),
    header=st.one_of(st.none(), TEXT),
)
def test_jira_webhook_signed_and_unsigned(jira_client, no_tracebacks, body, header) -> None:
    client, rt = jira_client
    raw = body.encode("utf-8", "surrogatepass")
    signature = "sha256=" + hmac.new(JIRA_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    if header is not None:
        # A header cannot carry a line break: the HTTP client refuses to send one.
        signature = header.encode("utf-8", "replace").decode("latin-1").replace("\n", " ")
        signature = signature.replace("\r", " ")
    before = row_counts(rt)
    check(
        client.post("/jira/webhook", data=raw, headers={"X-Hub-Signature": signature}), before, rt
    )


# -- POST /slack/events ------------------------------------------------------------------------


def signed(client: Any, body: str) -> Any:
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(body, stamp, SECRET),
    }
    return client.post("/slack/events", data=body.encode("utf-8", "surrogatepass"), headers=headers)


COMMAND_WORDS = ["help", "show", "ack", "resolve", "assign", "silence", "unsilence", "list",
                 "whoami", "run", "approve", "deny", "runs", "note", "silences"]  # fmt: skip
USERS = st.sampled_from(["U0OPS", "U0ADMIN", "U0VIEW", "U0NOBODY"])


# Interaction types opsbot registers no listener for (Slack's documented payload types):
# https://api.slack.com/reference/interaction-payloads
OTHER_TYPES = ["view_submission", "view_closed", "shortcut", "message_action",
               "block_suggestion", "interactive_message", "dialog_submission", "x"]  # fmt: skip


@st.composite
def other_interactions(draw: st.DrawFn, response_url: str) -> Any:
    """Return an interaction payload of a type other than block_actions, often mangled."""
    payload = {"type": draw(st.sampled_from(OTHER_TYPES)), "team": {"id": "T0OPSBOT"},
               "user": {"id": draw(USERS)}, "trigger_id": draw(TEXT),
               "response_url": response_url, "callback_id": draw(TEXT),
               "view": {"id": "V1", "callback_id": draw(TEXT), "state": {"values": {}}},
               "actions": draw(st.one_of(st.none(), st.lists(TEXT, max_size=2)))}  # fmt: skip
    return draw(mutated(payload)) if draw(st.booleans()) else payload


@st.composite
def slack_bodies(draw: st.DrawFn, response_url: str) -> str:
    """Return a signed-to-be form body: a slash command, or an interaction payload of any type."""
    kind = draw(st.integers(0, 2))
    if kind == 2:
        return urlencode({"payload": json.dumps(draw(other_interactions(response_url)))})
    if kind == 0:
        words = [draw(st.sampled_from(COMMAND_WORDS)), *draw(st.lists(TEXT, max_size=3))]
        form = {"team_id": "T0OPSBOT", "user_id": draw(USERS), "user_name": draw(TEXT),
                "command": "/ops", "text": " ".join(words), "channel_id": "C0OPS",
                "response_url": response_url, "trigger_id": draw(TEXT)}  # fmt: skip
        form = draw(mutated(form)) if draw(st.integers(0, 3)) == 0 else form
        return urlencode({str(k): json.dumps(v) if not isinstance(v, str) else v
                          for k, v in form.items()}, errors="surrogatepass")  # fmt: skip
    actions = ["incident_ack", "incident_resolve", "incident_silence", "runbook_run",
               "run_approve", "approval_deny", "x"]  # fmt: skip
    action_id = draw(st.sampled_from(actions))
    payload = {"type": "block_actions", "team": {"id": "T0OPSBOT"},
               "user": {"id": draw(USERS), "username": "ana"}, "trigger_id": draw(TEXT),
               "response_url": response_url, "actions": [{"action_id": action_id,
               "value": draw(TEXT), "action_ts": "1.2"}]}  # fmt: skip
    payload = draw(mutated(payload)) if draw(st.integers(0, 2)) == 0 else payload
    return urlencode({"payload": json.dumps(payload)})


def slack_app(settings, make_app, config_path, url: str) -> tuple[Any, Any]:
    config_path.write_text(ROLES_YAML)
    app = make_app(slack_settings(settings, FakeSlack(url=url), slack_team_id="T0OPSBOT"))
    return app.test_client(), app.extensions["opsbot"]


def fuzz_slack(client: Any, rt: Any, response_url: str) -> None:
    @FUZZ
    @given(body=slack_bodies(response_url))
    def run(body: str) -> None:
        before = row_counts(rt)
        check(signed(client, body), before, rt)

    run()


@pytest.mark.parametrize("sickness", ["up", "down", "hanging"])
def test_slack_signed_commands_and_interactions(
    settings, make_app, config_path, no_tracebacks, sickness
) -> None:
    closed = closed_port_url()
    with serve(FakeSlack()) as fake, hanging_server() as hanging:
        url = {"up": fake.url, "down": closed, "hanging": hanging}[sickness]
        client, rt = slack_app(settings, make_app, config_path, url)
        fuzz_slack(client, rt, f"{fake.url}/response/1" if sickness == "up" else closed)


# -- POST /slack/events, Events API JSON bodies -----------------------------------------------

EVENT_CALLBACK = {"token": "x", "team_id": "T0OPSBOT", "api_app_id": "A0OPS",
                  "type": "event_callback", "event_id": "Ev0001", "event_time": 1700000000,
                  "event": {"type": "app_mention", "user": "U0OPS", "text": "<@U0BOT> help",
                            "ts": "1700000000.000100", "channel": "C0OPS"}}  # fmt: skip


@st.composite
def events_api_bodies(draw: st.DrawFn) -> str:
    """Return a JSON body as the Events API sends one: a URL check, an event callback, or junk."""
    kind = draw(st.integers(0, 4))
    if kind == 0:
        body = {"type": "url_verification", "token": draw(TEXT), "challenge": draw(JSON)}
        return json.dumps(draw(mutated(body)) if draw(st.booleans()) else body)
    if kind == 1:
        return json.dumps(draw(mutated(EVENT_CALLBACK)))
    if kind == 2:
        return json.dumps({"ssl_check": draw(JSON), "token": draw(TEXT)})
    if kind == 3:
        return deep(draw(st.sampled_from([40, 5000, 100_000])))
    return json.dumps(draw(JSON))


def signed_json(client: Any, body: str) -> Any:
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(body, stamp, SECRET),
    }
    return client.post("/slack/events", data=body.encode("utf-8", "surrogatepass"), headers=headers)


@pytest.mark.parametrize("sickness", ["up", "down"])
def test_slack_signed_events_api_json_bodies(
    settings, make_app, config_path, no_tracebacks, sickness
) -> None:
    """Signed Events API bodies of any shape: never a 5xx; a URL check echoes its challenge."""
    with serve(FakeSlack()) as fake:
        url = fake.url if sickness == "up" else closed_port_url()
        client, rt = slack_app(settings, make_app, config_path, url)

        @FUZZ
        @given(body=events_api_bodies())
        def run(body: str) -> None:
            before = row_counts(rt)
            response = signed_json(client, body)
            check(response, before, rt)
            assert row_counts(rt) == before  # opsbot serves no event callback: nothing stored
            try:
                sent = json.loads(body)
            except (ValueError, RecursionError):
                return
            if (
                isinstance(sent, dict)
                and set(sent) == {"type", "token", "challenge"}
                and sent["type"] == "url_verification"
                and isinstance(sent["challenge"], str)
                and isinstance(sent["token"], str)
                and "\x00" not in sent["challenge"]
            ):
                assert response.status_code == 200, response.get_data(as_text=True)[:300]
                assert sent["challenge"] in response.get_data(as_text=True)

        run()
