"""One SNS message → its delivery record and its handler input; shared by push and SQS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handlers.base import Inbound, bound, clean
from opsbot.incidents.service import DeliveryIn
from opsbot.runtime import Runtime
from opsbot.sns.verify import CertificateStore, SnsMessage

SUBJECT_LIMIT = 256


def delivery_of(message: SnsMessage, channel: str) -> DeliveryIn:
    """Return how an SNS message is recorded in ``deliveries`` (namespace "sns", its MessageId)."""
    return DeliveryIn(
        namespace="sns",
        message_id=message.message_id,
        channel=channel,
        message_type=message.type,
        body=clean(message.message),
        topic_arn=message.topic_arn,
        subject=bound(clean(message.subject or ""), SUBJECT_LIMIT) or None,
        sent_at=message.timestamp,
    )


def inbound_of(message: SnsMessage, sources: Mapping[str, Any]) -> Inbound:
    """Return the handlers' input for an SNS notification, with the per-source configuration."""
    return Inbound(
        text=message.message,
        subject=message.subject,
        topic_arn=message.topic_arn,
        message_id=message.message_id,
        received_at=message.timestamp,
        sources=sources,
    )


def certificates(rt: Runtime) -> CertificateStore:
    """Return this process's cache of SNS signing certificates."""
    store = rt.integrations.get("sns.certs")
    if store is None:
        store = rt.integrations["sns.certs"] = CertificateStore(rt.settings.effective_cert_dir)
    assert isinstance(store, CertificateStore)
    return store
