"""SQS pull intake: ``opsbot worker --sqs QUEUE_URL``.

A queue subscribed to the SNS topics (or targeted by an EventBridge rule) is
the buffer: each worker long-polls it, takes up to 10 messages, records them
in ONE transaction and deletes them only after the commit. A worker killed
between the commit and the delete leaves messages that come back and are then
recognised as duplicates (each is keyed exactly like ``POST /sns``), so nothing
is lost and nothing is doubled.

A message body is one of:

- an SNS envelope (SNS → SQS without raw delivery): verified like ``/sns``
  (signature, topic allow-list) unless ``OPSBOT_SQS_TRUST_SNS_ENVELOPE`` says
  SQS's IAM control is trust enough; recorded in namespace "sns" under the SNS
  ``MessageId``, so the same message via push and via SQS is one delivery;
- an EventBridge event (raw delivery, or a rule targeting the queue): namespace
  "eventbridge", keyed by the event ``id``;
- anything else (raw delivery of a text or alarm message): namespace "sqs",
  keyed by the SQS ``MessageId``.

A message that cannot be accepted (bad signature, topic not allowed) is left
on the queue, with the reason logged, for its redrive policy to dead-letter
after ``maxReceiveCount`` receives. A batch slower than half the visibility
timeout has its visibility extended while it is worked on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import handlers
from handlers.base import Inbound, clean, storable
from opsbot.core.alert import Alert
from opsbot.incidents import service
from opsbot.intake.inbound import certificates, delivery_of, inbound_of
from opsbot.runtime import Runtime
from opsbot.sns import verify as sns

log = logging.getLogger(__name__)

MAX_BATCH = 10
BATCHES_IN_FLIGHT = 3  # polling threads per queue in one worker
# SQS keeps a message for up to 14 days; an SNS envelope may wait that long in the queue.
SQS_MAX_AGE = timedelta(days=14)
MAX_ID = 128
EVENTBRIDGE_KEYS = frozenset({"id", "detail-type", "source", "detail"})


@dataclass(frozen=True)
class Decoded:
    """One received message, ready to record (or refused, with the reason)."""

    message_id: str
    receipt_handle: str
    delivery: service.DeliveryIn | None = None
    alerts: tuple[Alert, ...] = ()
    refused: str = ""
    skipped: str = ""


@dataclass
class BatchResult:
    """What one poll did: received, recorded, duplicates, left on the queue, deleted."""

    received: int = 0
    recorded: int = 0
    duplicates: int = 0
    left: list[str] = field(default_factory=list)
    deleted: int = 0


def make_client(queue_url: str) -> Any:
    """Return an SQS client from boto3's standard chain (AWS_ENDPOINT_URL honoured)."""
    import boto3

    session = boto3.session.Session()
    region = session.region_name or region_of(queue_url) or "us-east-1"
    return session.client("sqs", region_name=region)


def region_of(queue_url: str) -> str:
    """Return the region in an SQS queue URL ("https://sqs.eu-west-1.amazonaws.com/…"), or ""."""
    host = urlsplit(queue_url).hostname or ""
    parts = host.split(".")
    return parts[1] if len(parts) > 3 and parts[0] == "sqs" else ""


class SqsIntake:
    """Pulls one queue: long poll, decode, record a batch in one transaction, delete."""

    def __init__(
        self,
        rt: Runtime,
        queue_url: str,
        client: Any = None,
        *,
        wait_seconds: int = 20,
        visibility_timeout: int = 60,
        heartbeat_seconds: float | None = None,
    ) -> None:
        self.rt = rt
        self.queue_url = queue_url
        self.client = client if client is not None else make_client(queue_url)
        self.wait_seconds = wait_seconds
        self.visibility_timeout = visibility_timeout
        self.heartbeat_seconds = max(heartbeat_seconds or visibility_timeout / 2, 0.05)

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; the batch in hand is always finished first."""
        log.info("SQS intake polling %s", self.queue_url)
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception:
                log.exception("SQS intake: polling %s failed; retrying", self.queue_url)
                stop.wait(5)
        log.info("SQS intake stopped for %s", self.queue_url)

    def poll_once(self) -> BatchResult:
        """Receive one batch, record it, delete what was recorded; return what happened."""
        reply = self.client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=MAX_BATCH,
            WaitTimeSeconds=self.wait_seconds,
            VisibilityTimeout=self.visibility_timeout,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        messages = reply.get("Messages", [])
        result = BatchResult(received=len(messages))
        if not messages:
            return result
        handles = [m["ReceiptHandle"] for m in messages] if self.visibility_timeout else []
        with self.heartbeat(handles):
            decoded = [self.decode(m) for m in messages]
            done = self.record(decoded, result)
        self.delete(done, result)
        return result

    def decode(self, message: dict[str, Any]) -> Decoded:
        """Return what one SQS message holds, or why it is refused."""
        body = message.get("Body", "")
        ids = (message["MessageId"], message["ReceiptHandle"])
        now = self.rt.clock()
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if isinstance(document, dict) and document.get("Type") and "TopicArn" in document:
            return self._decode_sns(document, ids, now)
        if isinstance(document, dict) and document.keys() >= EVENTBRIDGE_KEYS:
            return self._decode_event(document, body, ids, now)
        delivery = service.DeliveryIn(
            namespace="sqs",
            message_id=bounded_id(message["MessageId"]),
            channel="sqs",
            message_type="Raw",
            body=clean(body),
        )
        inbound = Inbound(
            text=body, message_id=message["MessageId"], received_at=now, sources=self.rt.sources
        )
        return Decoded(*ids, delivery=delivery, alerts=tuple(handlers.parse(inbound)))

    def _decode_sns(self, fields: dict[str, Any], ids: tuple[str, str], now: datetime) -> Decoded:
        try:
            message = self._sns_message(fields, now)
        except sns.SnsError as exc:
            return Decoded(*ids, refused=f"{exc.code}: {exc.detail}")
        if message.type != sns.NOTIFICATION:
            return Decoded(*ids, skipped=f"SNS {message.type} arrives by SQS; nothing to do")
        delivery = delivery_of(message, "sqs")
        inbound = inbound_of(message, self.rt.sources)
        return Decoded(*ids, delivery=delivery, alerts=tuple(handlers.parse(inbound)))

    def _sns_message(self, fields: dict[str, Any], now: datetime) -> sns.SnsMessage:
        settings = self.rt.settings
        allowed = frozenset(settings.sns_topic_arns)
        if not settings.sqs_trust_sns_envelope:
            return sns.verify(
                fields, certificates(self.rt), now=now, max_age=SQS_MAX_AGE, allowed_topics=allowed
            )
        message = trusted_message(fields)
        if allowed and message.topic_arn not in allowed:
            raise sns.SnsError("topic_not_allowed", f"topic {message.topic_arn} is not allowed")
        return message

    def _decode_event(
        self, event: dict[str, Any], body: str, ids: tuple[str, str], now: datetime
    ) -> Decoded:
        event_id = str(event.get("id") or ids[0])
        delivery = service.DeliveryIn(
            namespace="eventbridge",
            message_id=bounded_id(event_id),
            channel="sqs",
            message_type="EventBridge",
            body=clean(body),
        )
        inbound = Inbound(text=body, message_id=event_id, received_at=now, sources=self.rt.sources)
        return Decoded(*ids, delivery=delivery, alerts=tuple(handlers.parse(inbound)))

    def record(self, decoded: Sequence[Decoded], result: BatchResult) -> list[Decoded]:
        """Record the batch in one transaction; on failure, one by one. Return what to delete."""
        for item in decoded:
            if item.refused:
                log.warning(
                    "SQS message %s left for the redrive policy: %s", item.message_id, item.refused
                )
                result.left.append(item.message_id)
                self.rt.metrics.inc("opsbot_deliveries_total", channel="sqs", outcome="refused")
            elif item.skipped:
                log.info("SQS message %s: %s", item.message_id, item.skipped)
        todo = [d for d in decoded if d.delivery is not None]
        try:
            outcomes = self._record_all(todo)
        except Exception:
            log.exception("SQS batch of %d failed as a whole; recording one by one", len(todo))
            return [d for d in decoded if d.skipped] + self._record_each(todo, result)
        self._count(outcomes, result)
        return [d for d in decoded if d.skipped] + todo

    def _record_all(self, items: Sequence[Decoded]) -> list[service.IngestResult]:
        rt = self.rt
        work = [(item.delivery, item.alerts) for item in items if item.delivery is not None]
        return service.ingest_batch(
            rt.sessions, work, policy=rt.policy, now=rt.clock(), silences=rt.silences
        )

    def _record_each(self, items: Sequence[Decoded], result: BatchResult) -> list[Decoded]:
        recorded = []
        for item in items:
            try:
                self._count(self._record_all([item]), result)
            except Exception as exc:
                log.error(
                    "SQS message %s left for the redrive policy: %s",
                    item.message_id,
                    f"{type(exc).__name__}: {exc}"[:300],
                )
                result.left.append(item.message_id)
                self.rt.metrics.inc("opsbot_deliveries_total", channel="sqs", outcome="failed")
            else:
                recorded.append(item)
        return recorded

    def _count(self, outcomes: Sequence[service.IngestResult], result: BatchResult) -> None:
        for outcome in outcomes:
            name = "duplicate" if outcome.duplicate else "recorded"
            result.duplicates += outcome.duplicate
            result.recorded += not outcome.duplicate
            self.rt.metrics.inc("opsbot_deliveries_total", channel="sqs", outcome=name)

    def delete(self, done: Sequence[Decoded], result: BatchResult) -> None:
        """Delete the recorded messages (after the commit)."""
        if not done:
            return
        entries = [{"Id": str(i), "ReceiptHandle": d.receipt_handle} for i, d in enumerate(done)]
        reply = self.client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        result.deleted += len(reply.get("Successful", []))
        for failure in reply.get("Failed", []):
            # The message comes back after its visibility timeout and is then a duplicate.
            log.warning(
                "SQS delete failed for entry %s: %s", failure.get("Id"), failure.get("Code")
            )

    @contextmanager
    def heartbeat(self, receipt_handles: Sequence[str]) -> Iterator[None]:
        """Extend the batch's visibility every ``heartbeat_seconds`` while it is worked on."""
        done = threading.Event()
        if not receipt_handles:
            yield
            return

        def beat() -> None:
            while not done.wait(self.heartbeat_seconds):
                self.extend_visibility(receipt_handles)

        thread = threading.Thread(target=beat, name="sqs-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def extend_visibility(self, receipt_handles: Sequence[str]) -> None:
        """Give the batch another full visibility timeout."""
        entries = [
            {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": self.visibility_timeout}
            for i, h in enumerate(receipt_handles)
        ]
        try:
            self.client.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
        except Exception as exc:
            log.warning("SQS visibility extension failed: %s", exc)


def trusted_message(fields: dict[str, Any]) -> sns.SnsMessage:
    """Return an SNS envelope's message without checking its signature (trusted by config)."""
    needed = ("Type", "MessageId", "TopicArn", "Timestamp")
    missing = [name for name in needed if not isinstance(fields.get(name), str)]
    if missing or not isinstance(fields.get("Message", ""), str):
        raise sns.SnsError(
            "bad_envelope", f"SNS envelope without {', '.join(missing) or 'Message'}"
        )
    sns.check_text(fields)
    try:
        timestamp = datetime.fromisoformat(fields["Timestamp"].replace("Z", "+00:00"))
    except ValueError as exc:
        raise sns.SnsError("bad_envelope", f"bad Timestamp: {exc}") from None
    return sns.SnsMessage(
        type=fields["Type"],
        message_id=fields["MessageId"],
        topic_arn=fields["TopicArn"],
        timestamp=timestamp,
        message=fields.get("Message", ""),
        subject=fields.get("Subject") if isinstance(fields.get("Subject"), str) else None,
        subscribe_url=fields.get("SubscribeURL"),
        token=fields.get("Token"),
        raw=fields,
    )


def bounded_id(value: str) -> str:
    """Return an id that fits the deliveries table: itself, or a digest when too long."""
    if len(value) <= MAX_ID and storable(value):
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


class SqsWorkers:
    """``BATCHES_IN_FLIGHT`` polling threads per queue, stopped together.

    A batch spends much of its time waiting (on SQS, on the database); while one waits, the
    others decode and decide, so a worker keeps both cores' share busy.
    """

    def __init__(self, rt: Runtime, queue_urls: Sequence[str]) -> None:
        self.intakes = [SqsIntake(rt, url) for url in queue_urls for _ in range(BATCHES_IN_FLIGHT)]
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start polling every queue."""
        for intake in self.intakes:
            thread = threading.Thread(target=intake.run, args=(self.stop_event,), name="sqs")
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        """Stop after the batches in hand are recorded and deleted."""
        self.stop_event.set()
        for thread in self.threads:
            thread.join()
