"""Sign SNS messages locally, for tests, `opsbot simulate` and the benchmark.

This is not a way around verification: the signer's certificate is written
into the pinned certificate directory (OPSBOT_SNS_CERT_DIR) under
LOCAL_CERT_NAME, and opsbot verifies what it signs exactly as it verifies
Amazon SNS, by the file name of SigningCertURL. Whoever can read the private
key beside it can sign messages opsbot accepts, so it is written mode 0600.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import tempfile
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from opsbot.sns.verify import (
    NOTIFICATION,
    SIGNATURE_HASHES,
    SUBSCRIPTION_CONFIRMATION,
    string_to_sign,
    topic_region,
)

log = logging.getLogger(__name__)

LOCAL_CERT_NAME = "SimpleNotificationService-opsbot-local.pem"
LOCAL_KEY_NAME = "opsbot-local-signer.key"
VALID_FROM = datetime(2020, 1, 1, tzinfo=UTC)
VALID_UNTIL = datetime(2030, 1, 1, tzinfo=UTC)

_cache: dict[Path, tuple[rsa.RSAPrivateKey, bytes]] = {}
_cache_lock = threading.Lock()


@dataclass
class LocalSigner:
    key: rsa.RSAPrivateKey
    cert_pem: bytes
    region: str = "us-east-1"

    @classmethod
    def load_or_create(cls, cert_dir: Path, region: str = "us-east-1") -> LocalSigner:
        """Return the signer whose key and certificate live in cert_dir, creating them once."""
        cert_dir = Path(cert_dir).resolve()
        with _cache_lock:
            if cert_dir not in _cache:
                _cache[cert_dir] = _load(cert_dir) or _create(cert_dir)
            key, cert_pem = _cache[cert_dir]
            if not (cert_dir / LOCAL_CERT_NAME).is_file():
                _write(cert_dir / LOCAL_CERT_NAME, cert_pem, 0o644)
        return cls(key=key, cert_pem=cert_pem, region=region)

    @property
    def cert_url(self) -> str:
        return f"{_endpoint(self.region)}/{LOCAL_CERT_NAME}"

    def sign(self, fields: dict[str, Any], version: str = "2") -> dict[str, Any]:
        """Return a copy of fields with SignatureVersion, SigningCertURL and Signature set."""
        if version not in SIGNATURE_HASHES:
            raise ValueError(f"SignatureVersion must be one of {sorted(SIGNATURE_HASHES)}")
        signed = {**fields, "SignatureVersion": version, "SigningCertURL": self.cert_url}
        signature = self.key.sign(
            string_to_sign(signed), padding.PKCS1v15(), SIGNATURE_HASHES[version]()
        )
        signed["Signature"] = base64.b64encode(signature).decode("ascii")
        return signed

    def notification(
        self,
        message: str,
        *,
        topic_arn: str,
        subject: str | None = None,
        message_id: str | None = None,
        timestamp: datetime | None = None,
        version: str = "2",
    ) -> dict[str, Any]:
        """Return a complete signed Notification envelope."""
        fields: dict[str, Any] = {
            "Type": NOTIFICATION,
            "MessageId": message_id or str(uuid.uuid4()),
            "TopicArn": topic_arn,
        }
        if subject is not None:
            fields["Subject"] = subject
        fields["Message"] = message
        fields["Timestamp"] = format_timestamp(timestamp or datetime.now(UTC))
        signed = self.sign(fields, version)
        subscription_arn = f"{topic_arn}:{uuid.uuid4()}"
        signed["UnsubscribeURL"] = (
            f"{_endpoint(self._region_of(topic_arn))}/?Action=Unsubscribe"
            f"&SubscriptionArn={subscription_arn}"
        )
        return signed

    def subscription_confirmation(
        self,
        *,
        topic_arn: str,
        token: str | None = None,
        timestamp: datetime | None = None,
        version: str = "2",
    ) -> dict[str, Any]:
        """Return a complete signed SubscriptionConfirmation envelope."""
        token = token or secrets.token_hex(64)
        subscribe_url = (
            f"{_endpoint(self._region_of(topic_arn))}/?Action=ConfirmSubscription"
            f"&TopicArn={quote(topic_arn, safe=':')}&Token={quote(token, safe='')}"
        )
        fields = {
            "Type": SUBSCRIPTION_CONFIRMATION,
            "MessageId": str(uuid.uuid4()),
            "Token": token,
            "TopicArn": topic_arn,
            "Message": (
                f"You have chosen to subscribe to the topic {topic_arn}.\n"
                "To confirm the subscription, visit the SubscribeURL included in this message."
            ),
            "SubscribeURL": subscribe_url,
            "Timestamp": format_timestamp(timestamp or datetime.now(UTC)),
        }
        return self.sign(fields, version)

    def _region_of(self, topic_arn: str) -> str:
        return topic_region(topic_arn) or self.region


def format_timestamp(moment: datetime) -> str:
    """Format a datetime the way SNS does: UTC, milliseconds, trailing Z."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def _endpoint(region: str) -> str:
    suffix = ".cn" if region.startswith("cn-") else ""
    return f"https://sns.{region}.amazonaws.com{suffix}"


def _load(cert_dir: Path) -> tuple[rsa.RSAPrivateKey, bytes] | None:
    key_path, cert_path = cert_dir / LOCAL_KEY_NAME, cert_dir / LOCAL_CERT_NAME
    if not (key_path.is_file() and cert_path.is_file()):
        return None
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    cert_pem = cert_path.read_bytes()
    cert = x509.load_pem_x509_certificate(cert_pem)
    if not isinstance(key, rsa.RSAPrivateKey) or cert.public_key() != key.public_key():
        log.warning("sns signer: key and certificate in %s do not match; recreating", cert_dir)
        return None
    return key, cert_pem


def _create(cert_dir: Path) -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "opsbot local SNS signer")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(VALID_FROM)
        .not_valid_after(VALID_UNTIL)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_dir.mkdir(parents=True, exist_ok=True)
    _write(cert_dir / LOCAL_KEY_NAME, key_pem, 0o600)
    _write(cert_dir / LOCAL_CERT_NAME, cert_pem, 0o644)
    log.info("sns signer: created a local signing key and certificate in %s", cert_dir)
    return key, cert_pem


def _write(path: Path, data: bytes, mode: int) -> None:
    # Write beside, then rename: a concurrent reader sees the old file or the new one.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
