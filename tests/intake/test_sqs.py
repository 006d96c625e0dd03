"""SQS pull intake against moto's SQS server: SNS envelopes, raw events, crashes, redrive."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import event as sa_event
from sqlalchemy import func, select

from opsbot.cli import main
from opsbot.config import Settings
from opsbot.db.models import AlertRow, Delivery, Incident
from opsbot.intake import sqs
from opsbot.runtime import Runtime
from opsbot.sns.sign import LocalSigner
from tests.support.clock import Clock
from tests.support.sns import TOPIC, alarm_message, notify

EVENT = (
    Path(__file__).parents[1]
    / "fixtures"
    / "events"
    / ("eventbridge-guardduty-finding-constructed.json")
)


@pytest.fixture
def endpoint(moto_url: str) -> str:
    return moto_url


@pytest.fixture
def client(endpoint: str) -> Iterator[Any]:
    sqs_client = boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    yield sqs_client
    sqs_client.close()


@pytest.fixture
def queue(client: Any) -> str:
    url: str = client.create_queue(QueueName=f"opsbot-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    return url


def intake(rt: Runtime, queue: str, client: Any, **options: Any) -> sqs.SqsIntake:
    options.setdefault("wait_seconds", 0)
    options.setdefault("visibility_timeout", 0)
    return sqs.SqsIntake(rt, queue, client, **options)


def send(client: Any, queue: str, *bodies: str) -> None:
    for body in bodies:
        client.send_message(QueueUrl=queue, MessageBody=body)


def enveloped(signer: LocalSigner, clock: Clock, message: str, message_id: str = "") -> str:
    envelope = signer.notification(
        message, topic_arn=TOPIC, message_id=message_id or str(uuid.uuid4()), timestamp=clock.now
    )
    return json.dumps(envelope)


def counts(rt: Runtime) -> tuple[int, int, int]:
    with rt.sessions() as s:
        return tuple(  # type: ignore[return-value]
            s.scalar(select(func.count()).select_from(model))
            for model in (Delivery, AlertRow, Incident)
        )


def left_on_queue(client: Any, queue: str) -> int:
    attributes = client.get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_sns_envelopes_raw_events_and_text_are_recorded_and_deleted(
    rt: Runtime, client: Any, queue: str, signer: LocalSigner, clock: Clock
) -> None:
    send(
        client,
        queue,
        enveloped(signer, clock, alarm_message("High-CPU")),
        EVENT.read_text(),
        "disk full on db-01",
    )
    result = intake(rt, queue, client).poll_once()

    assert (result.received, result.recorded, result.deleted, result.left) == (3, 3, 3, [])
    assert left_on_queue(client, queue) == 0
    with rt.sessions() as s:
        deliveries = {(d.namespace, d.channel) for d in s.scalars(select(Delivery))}
        sources = sorted(i.source for i in s.scalars(select(Incident)))
    assert deliveries == {("sns", "sqs"), ("eventbridge", "sqs"), ("sqs", "sqs")}
    assert sources == ["aws.cloudwatch", "aws.guardduty", "generic"]


def test_one_batch_is_one_transaction(
    rt: Runtime, client: Any, queue: str, signer: LocalSigner, clock: Clock
) -> None:
    send(client, queue, *(enveloped(signer, clock, alarm_message(f"A-{i}")) for i in range(10)))
    commits: list[int] = []

    def count_commit(conn: Any) -> None:
        commits.append(1)

    sa_event.listen(rt.engine, "commit", count_commit)
    try:
        result = intake(rt, queue, client).poll_once()
    finally:
        sa_event.remove(rt.engine, "commit", count_commit)
    assert result.recorded == 10
    assert len(commits) == 1
    assert counts(rt) == (10, 10, 10)


def test_same_sns_message_by_push_and_by_sqs_is_one_delivery(
    rt: Runtime,
    app: Flask,
    client: Any,
    queue: str,
    signer: LocalSigner,
    clock: Clock,
) -> None:
    message_id = str(uuid.uuid4())
    pushed = notify(app.test_client(), signer, clock, alarm_message(), message_id=message_id)
    send(client, queue, enveloped(signer, clock, alarm_message(), message_id))
    result = intake(rt, queue, client).poll_once()

    assert pushed.json["status"] == "recorded"
    assert (result.recorded, result.duplicates, result.deleted) == (0, 1, 1)
    assert counts(rt) == (1, 1, 1)


def test_a_raw_eventbridge_event_twice_is_recorded_once(
    rt: Runtime, client: Any, queue: str
) -> None:
    send(client, queue, EVENT.read_text(), EVENT.read_text())
    work = intake(rt, queue, client)
    first = work.poll_once()
    second = work.poll_once()

    assert first.recorded + second.recorded == 1
    assert first.duplicates + second.duplicates == 1
    assert counts(rt) == (1, 1, 1)


def test_bad_signature_is_left_for_the_redrive_policy(
    rt: Runtime,
    client: Any,
    signer: LocalSigner,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = f"opsbot-{uuid.uuid4().hex[:12]}"
    dlq = client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    queue = client.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    forged = json.loads(enveloped(signer, clock, alarm_message()))
    forged["Message"] = alarm_message("Forged")
    send(client, queue, json.dumps(forged))
    caplog.set_level(logging.WARNING, logger="opsbot.intake.sqs")
    work = intake(rt, queue, client)
    results = [work.poll_once() for _ in range(3)]

    assert [r.received for r in results] == [1, 1, 0]
    assert all(r.deleted == 0 for r in results)
    assert "left for the redrive policy: bad_signature" in caplog.text
    assert counts(rt) == (0, 0, 0)
    assert client.receive_message(QueueUrl=dlq).get("Messages")


def test_trusted_envelopes_skip_the_signature_check(
    settings: Settings,
    make_app: Callable[[Settings], Flask],
    client: Any,
    queue: str,
    signer: LocalSigner,
    clock: Clock,
) -> None:
    trusting = make_app(settings.model_copy(update={"sqs_trust_sns_envelope": True}))
    rt: Runtime = trusting.extensions["opsbot"]
    unsigned = json.loads(enveloped(signer, clock, alarm_message()))
    unsigned["Signature"] = "not a signature"
    send(client, queue, json.dumps(unsigned))

    assert intake(rt, queue, client).poll_once().recorded == 1


def test_killed_after_commit_before_delete_loses_and_doubles_nothing(
    rt: Runtime,
    client: Any,
    queue: str,
    signer: LocalSigner,
    clock: Clock,
) -> None:
    send(client, queue, enveloped(signer, clock, alarm_message("Disk")), EVENT.read_text())
    crashing = intake(rt, queue, client)

    def killed(**_: Any) -> None:
        raise SystemExit("worker killed between commit and delete")

    # At the network edge: the DeleteMessageBatch call never leaves this process.
    client.meta.events.register("before-call.sqs.DeleteMessageBatch", killed)
    with pytest.raises(SystemExit):
        crashing.poll_once()
    client.meta.events.unregister("before-call.sqs.DeleteMessageBatch", killed)
    after_crash = counts(rt)
    again = intake(rt, queue, client).poll_once()

    assert after_crash == (2, 2, 2)
    assert (again.received, again.duplicates, again.recorded, again.deleted) == (2, 2, 0, 2)
    assert counts(rt) == (2, 2, 2)
    assert left_on_queue(client, queue) == 0


@contextmanager
def on_statement(rt: Runtime, act: Callable[[str, Any], None]) -> Iterator[None]:
    """Run ``act(statement, parameters)`` as each statement leaves for the database (the driver
    edge: how a dying connection, a refusing server or a slow one looks to opsbot)."""

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        act(statement, parameters)

    sa_event.listen(rt.engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        sa_event.remove(rt.engine, "before_cursor_execute", before)


def test_killed_before_commit_records_the_batch_on_redelivery(
    rt: Runtime, client: Any, queue: str
) -> None:
    send(client, queue, EVENT.read_text())
    crashing = intake(rt, queue, client)

    def killed(statement: str, _parameters: Any) -> None:
        if statement.startswith("INSERT INTO alerts"):
            raise SystemExit("worker killed inside the transaction")

    with on_statement(rt, killed), pytest.raises(SystemExit):
        crashing.poll_once()
    assert counts(rt) == (0, 0, 0)

    again = intake(rt, queue, client).poll_once()
    assert (again.recorded, again.deleted) == (1, 1)
    assert counts(rt) == (1, 1, 1)


def test_a_message_failing_to_record_does_not_block_its_batch(
    rt: Runtime, client: Any, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    send(client, queue, EVENT.read_text(), "poison pill", "disk full")

    def picky(statement: str, parameters: Any) -> None:
        if statement.startswith("INSERT INTO deliveries") and "poison pill" in str(parameters):
            raise RuntimeError("database refused the row")

    with on_statement(rt, picky):
        result = intake(rt, queue, client, visibility_timeout=30).poll_once()

    assert (result.recorded, result.deleted, len(result.left)) == (2, 2, 1)
    assert "database refused the row" in caplog.text
    assert left_on_queue(client, queue) == 1


def test_a_slow_batch_has_its_visibility_extended(rt: Runtime, client: Any, queue: str) -> None:
    send(client, queue, EVENT.read_text())
    extended: list[str] = []
    client.meta.events.register(
        "before-call.sqs.ChangeMessageVisibilityBatch", lambda **kw: extended.append("x")
    )

    def slow(statement: str, _parameters: Any) -> None:
        if statement.startswith("INSERT INTO deliveries"):
            time.sleep(0.35)  # a database that takes its time (the heartbeat runs meanwhile)

    with on_statement(rt, slow):
        result = intake(rt, queue, client, visibility_timeout=30, heartbeat_seconds=0.1).poll_once()

    assert result.recorded == 1
    assert len(extended) >= 2


def test_stop_finishes_the_batch_in_hand(
    rt: Runtime, client: Any, queue: str, signer: LocalSigner, clock: Clock
) -> None:
    send(client, queue, *(enveloped(signer, clock, alarm_message(f"S-{i}")) for i in range(5)))
    work = intake(rt, queue, client, wait_seconds=1, visibility_timeout=30)
    stop = threading.Event()
    thread = threading.Thread(target=work.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 5
    while counts(rt)[0] < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(5)

    assert not thread.is_alive()
    assert counts(rt) == (5, 5, 5)
    assert left_on_queue(client, queue) == 0


def test_make_client_follows_the_standard_chain_and_endpoint(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    made = sqs.make_client("https://sqs.eu-west-1.amazonaws.com/123456789012/q")
    try:
        assert made.meta.region_name == "eu-west-1"
        url = made.create_queue(QueueName=f"chain-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        attributes = made.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        assert attributes["Attributes"]["QueueArn"].startswith("arn:aws:sqs:eu-west-1:")
    finally:
        made.close()


def test_settings_and_cli_take_queue_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSBOT_SQS_QUEUE_URLS", "https://sqs.eu-west-1.amazonaws.com/1/a, b")
    result = CliRunner().invoke(main, ["worker", "--help"])

    assert Settings().sqs_queue_urls == ["https://sqs.eu-west-1.amazonaws.com/1/a", "b"]
    assert "--sqs QUEUE_URL" in result.output
