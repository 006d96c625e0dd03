"""Traces (opsbot[otel]): a delivery's span links to the outbox sends it caused, each send's span
has the Jira or Slack HTTP call below it, ids are X-Ray's and an ALB's X-Amzn-Trace-Id is
continued. Spans go to opentelemetry-sdk's in-memory exporter."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import select

from opsbot.db.models import OutboxRow
from opsbot.telemetry import tracing
from tests.support.outbox import app_worker, drain
from tests.support.sns import TOPIC, alarm_message, notify

# An X-Ray trace header as an ALB adds it (Root=1-<8 hex epoch seconds>-<24 hex>), per
# https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader
ALB_ROOT = "1-67891233-abcdef012345678912345678"
ALB_HEADER = f"Root={ALB_ROOT};Parent=53995c3f42cd8ad8;Sampled=1"
# the call each send makes: (method, URL path) of the Jira REST and Slack Web APIs
CALLS = {"jira": ("POST", "/rest/api/2/issue"), "slack": ("POST", "/api/chat.postMessage")}


def test_a_delivery_links_to_the_sends_it_caused_down_to_the_http_calls(
    spans, integrated, signer, clock
) -> None:
    app = integrated()
    envelope = signer.notification(
        alarm_message(), topic_arn=TOPIC, message_id=str(uuid.uuid4()), timestamp=clock.now
    )
    answer = app.test_client().post(
        "/sns",
        data=json.dumps(envelope),
        headers={"Content-Type": "text/plain; charset=UTF-8", "X-Amzn-Trace-Id": ALB_HEADER},
    )
    assert answer.status_code == 200
    drain(app.extensions["opsbot"])
    finished = spans.get_finished_spans()

    (delivery,) = [s for s in finished if s.kind is SpanKind.SERVER]
    assert delivery.attributes["http.route"] == "/sns"
    assert f"{delivery.context.trace_id:032x}" == ALB_ROOT[2:].replace("-", "")
    statements = [s for s in finished if s.attributes.get("db.system")]
    assert any(s.parent and s.parent.span_id == delivery.context.span_id for s in statements)

    sends = {
        s.attributes["opsbot.outbox.target"]: s for s in finished if s.name.startswith("outbox ")
    }
    assert set(sends) == {"jira", "slack"}
    for target, send in sends.items():
        (link,) = send.links
        cause = (link.context.trace_id, link.context.span_id)
        assert cause == (delivery.context.trace_id, delivery.context.span_id), target
        assert send.parent is None and send.kind is SpanKind.CONSUMER
        assert send.name == f"outbox {target} {send.attributes['opsbot.outbox.kind']}"
        calls = {
            (s.attributes["http.method"], s.attributes["http.url"].split("/", 3)[3])
            for s in finished
            if s.kind is SpanKind.CLIENT
            and "http.url" in s.attributes
            and s.parent is not None
            and s.parent.span_id == send.context.span_id
        }
        method, path = CALLS[target]
        assert (method, path.lstrip("/")) in calls, f"{target}: {calls}"
        # X-Ray trace ids begin with the epoch seconds of the trace's start
        assert abs((send.context.trace_id >> 96) - time.time()) < 600


def test_a_failed_send_marks_its_span_failed(spans, integrated, fake_jira, signer, clock) -> None:
    app = integrated()
    fake_jira.fail(503)
    notify(app.test_client(), signer, clock, alarm_message())
    app_worker(app.extensions["opsbot"]).run_once()
    sends = {s.name: s for s in spans.get_finished_spans() if s.name.startswith("outbox ")}
    assert sends["outbox jira create"].status.status_code is StatusCode.ERROR
    assert sends["outbox slack post"].status.status_code is StatusCode.UNSET


def test_nothing_is_stored_or_traced_when_tracing_is_off(client, signer, clock, rt) -> None:
    assert not tracing.started()
    assert tracing.current_trace_parent() is None
    notify(client, signer, clock, alarm_message())
    with rt.sessions() as session:
        assert set(session.scalars(select(OutboxRow.trace_parent))) == {None}


@pytest.mark.parametrize(
    ("env", "asked"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "opsbot"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
    ],
)
def test_the_otel_variables_decide_whether_traces_are_asked_for(env, asked) -> None:
    assert tracing.requested(env) is asked
