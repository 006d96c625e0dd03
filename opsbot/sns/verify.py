"""Verify Amazon SNS HTTP/S deliveries before anything else reads them.

Checks, in order: body size and JSON shape (`parse_envelope`); the topic
allow-list, the signature version, the timestamp, the signing certificate
(fetched only from an ``sns.<region>.amazonaws.com[.cn]`` HTTPS URL, or pinned
in a local directory by file name), its validity period, the RSA signature
over the AWS string to sign (SignatureVersion 1 = SHA1withRSA,
2 = SHA256withRSA, PKCS#1 v1.5), and for Notifications the message age
(`verify`). `check_subscribe_url` and `confirm_subscription` answer
SubscriptionConfirmations. No Flask, no database.

AWS documentation:
- https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
- https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message-verify-message-signature.html
- https://docs.aws.amazon.com/sns/latest/dg/http-notification-json.html
- https://docs.aws.amazon.com/sns/latest/dg/http-subscription-confirmation-json.html
- https://docs.aws.amazon.com/sns/latest/dg/http-unsubscribe-confirmation-json.html
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 512 * 1024
MAX_CERT_BYTES = 64 * 1024
MAX_FUTURE_SKEW = timedelta(minutes=5)
MAX_CACHED_CERTS = 64

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"

# Signed fields in the order AWS concatenates them; Subject only when present.
SIGNED_FIELDS = {
    NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    SUBSCRIPTION_CONFIRMATION: (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
    UNSUBSCRIBE_CONFIRMATION: (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
OPTIONAL_SIGNED_FIELDS = frozenset({"Subject"})
ENVELOPE_FIELDS = ("Signature", "SignatureVersion", "SigningCertURL")

SIGNATURE_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "1": hashes.SHA1,
    "2": hashes.SHA256,
}

_REGION = r"[a-z]{2}(?:-[a-z]+){1,3}-\d{1,2}"
SNS_HOST_RE = re.compile(rf"sns\.(?P<region>{_REGION})\.amazonaws\.com(?P<cn>\.cn)?")
TOPIC_ARN_RE = re.compile(
    rf"arn:aws(?:-[a-z]+)*:sns:(?P<region>{_REGION}):\d{{12}}:[A-Za-z0-9_.-]{{1,256}}"
)
CERT_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,200}\.pem")
MAX_URL_CHARS = 4096
# The widths of deliveries.message_id and deliveries.topic_arn: an identifier that does not fit
# is refused, never cut, so two messages can never be taken for one.
MAX_MESSAGE_ID_CHARS = 128
MAX_TOPIC_ARN_CHARS = 256
MAX_CERT_FAILURE_SECONDS = 60.0
UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")
LONE_SURROGATE_RE = re.compile("[\ud800-\udfff]")


class SnsError(Exception):
    """A delivery that opsbot refuses, with a machine code and an HTTP status."""

    def __init__(self, code: str, detail: str, status: int = 400) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.status = status


@dataclass(frozen=True)
class SnsMessage:
    type: str
    message_id: str
    topic_arn: str
    timestamp: datetime
    message: str
    subject: str | None
    subscribe_url: str | None
    token: str | None
    raw: dict[str, Any]


def parse_envelope(body: bytes) -> dict[str, Any]:
    """Parse an SNS POST body into its fields, refusing bad size, JSON or shape."""
    if len(body) > MAX_BODY_BYTES:
        raise SnsError("body_too_large", f"body is over {MAX_BODY_BYTES} bytes", 413)
    try:
        fields = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise SnsError("malformed_json", "body is not valid UTF-8 JSON") from exc
    if not isinstance(fields, dict):
        raise SnsError("malformed_json", "body is not a JSON object")
    _check_shape(fields)
    check_text(fields)
    return fields


def string_to_sign(fields: Mapping[str, Any]) -> bytes:
    """Build the bytes AWS signs for this message type ("Name\\nvalue\\n" per field)."""
    kind = fields.get("Type")
    names = SIGNED_FIELDS.get(kind) if isinstance(kind, str) else None
    if names is None:
        raise SnsError("unknown_message_type", f"unknown Type {_short(fields.get('Type'))}")
    parts: list[str] = []
    for name in names:
        value = fields.get(name)
        if value is None and name in OPTIONAL_SIGNED_FIELDS:
            continue
        if not isinstance(value, str):
            raise SnsError("missing_field", f"{name} is missing or not a string")
        parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode("utf-8")


def check_cert_url(url: str) -> None:
    """Refuse a SigningCertURL that is not an SNS-hosted HTTPS .pem file."""
    parts = _split_sns_url(url, "bad_cert_url", "SigningCertURL")
    if parts.query or parts.fragment or not CERT_NAME_RE.fullmatch(_file_name(parts.path)):
        raise SnsError("bad_cert_url", "SigningCertURL must name a .pem file", 403)


def check_subscribe_url(url: str, topic_arn: str) -> None:
    """Refuse a SubscribeURL that is not the SNS endpoint of the topic's own region."""
    parts = _split_sns_url(url, "bad_subscribe_url", "SubscribeURL")
    region = topic_region(topic_arn)
    host = SNS_HOST_RE.fullmatch(parts.netloc)
    if region is None or host is None or host["region"] != region:
        raise SnsError("bad_subscribe_url", "SubscribeURL is not in the topic's region", 403)
    query = parse_qs(parts.query)
    if query.get("Action") != ["ConfirmSubscription"] or query.get("TopicArn") != [topic_arn]:
        raise SnsError("bad_subscribe_url", "SubscribeURL does not confirm this topic", 403)


def topic_region(topic_arn: str) -> str | None:
    """Return the region of an SNS topic ARN, or None if it is not one."""
    match = TOPIC_ARN_RE.fullmatch(topic_arn)
    return match["region"] if match else None


def fetch_certificate(url: str, *, timeout: float = 5.0) -> bytes:
    """Download a signing certificate, capped at MAX_CERT_BYTES, without redirects."""
    try:
        with requests.get(url, timeout=timeout, stream=True, allow_redirects=False) as resp:
            if resp.status_code != 200:
                raise SnsError(
                    "certificate_unavailable", f"certificate download got {resp.status_code}", 503
                )
            body = b""
            for chunk in resp.iter_content(chunk_size=8192):
                body += chunk
                if len(body) > MAX_CERT_BYTES:
                    raise SnsError("bad_certificate", "certificate download is too large", 403)
            return body
    except requests.RequestException as exc:
        raise SnsError("certificate_unavailable", "certificate download failed", 503) from exc


class CertificateStore:
    """Signing certificates by URL: memory cache, then pinned directory, then download."""

    def __init__(
        self,
        cert_dir: Path | None,
        *,
        fetch: Callable[[str], bytes] | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.cert_dir = cert_dir
        self.timeout = timeout
        self._fetch = fetch
        self._cache: dict[str, x509.Certificate] = {}
        # Failed downloads by URL: a forged SigningCertURL must not cost a fetch per request.
        self._failed: dict[str, tuple[float, SnsError]] = {}
        self._lock = threading.Lock()

    def get(self, url: str) -> x509.Certificate:
        """Return the certificate at an allowed SigningCertURL."""
        check_cert_url(url)
        with self._lock:
            cached = self._cache.get(url)
        if cached is not None:
            return cached
        self._raise_recent_failure(url)
        try:
            cert = _load_certificate(self._read(url))
        except SnsError as exc:
            with self._lock:
                if len(self._failed) >= MAX_CACHED_CERTS:
                    self._failed.pop(next(iter(self._failed)))
                self._failed[url] = (time.monotonic(), exc)
            raise
        with self._lock:
            if len(self._cache) >= MAX_CACHED_CERTS:
                self._cache.pop(next(iter(self._cache)))
            return self._cache.setdefault(url, cert)

    def _raise_recent_failure(self, url: str) -> None:
        with self._lock:
            failed = self._failed.get(url)
        if failed is not None and time.monotonic() - failed[0] < MAX_CERT_FAILURE_SECONDS:
            raise SnsError(failed[1].code, failed[1].detail, failed[1].status)

    def _read(self, url: str) -> bytes:
        name = _file_name(urlsplit(url).path)
        if self.cert_dir is not None and (self.cert_dir / name).is_file():
            log.debug("sns: using pinned certificate %s", name)
            return (self.cert_dir / name).read_bytes()
        log.info("sns: downloading signing certificate %s", url)
        if self._fetch is None:
            return fetch_certificate(url, timeout=self.timeout)
        try:
            return self._fetch(url)
        except (requests.RequestException, OSError) as exc:
            raise SnsError("certificate_unavailable", "certificate download failed", 503) from exc


def verify(
    fields: Mapping[str, Any],
    certs: CertificateStore,
    *,
    now: datetime,
    max_age: timedelta,
    allowed_topics: frozenset[str],
) -> SnsMessage:
    """Verify a parsed SNS message and return it as an SnsMessage, or raise SnsError."""
    topic_arn = fields.get("TopicArn")
    if allowed_topics and topic_arn not in allowed_topics:
        raise SnsError("topic_not_allowed", f"topic {_short(topic_arn)} is not allowed", 403)
    version = fields.get("SignatureVersion")
    if not isinstance(version, str) or version not in SIGNATURE_HASHES:
        raise SnsError(
            "unsupported_signature_version", f"SignatureVersion {_short(version)} unsupported"
        )
    timestamp = _parse_timestamp(fields.get("Timestamp"))
    cert = certs.get(_string(fields, "SigningCertURL"))
    if not cert.not_valid_before_utc <= timestamp <= cert.not_valid_after_utc:
        raise SnsError("certificate_expired", "certificate was not valid at Timestamp", 403)
    _check_signature(fields, cert, SIGNATURE_HASHES[version]())
    if fields["Type"] == NOTIFICATION:
        _check_age(timestamp, now=now, max_age=max_age)
    return _to_message(fields, timestamp)


def confirm_subscription(url: str, *, timeout: float = 5.0) -> int:
    """Visit a SubscribeURL and return the HTTP status SNS answered with."""
    try:
        resp = requests.get(url, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        # The URL carries the confirmation token: log the failure, not the URL.
        log.warning("sns: subscription confirmation failed: %s", type(exc).__name__)
        raise SnsError("confirmation_failed", "could not reach the SubscribeURL", 502) from exc
    log.info("sns: subscription confirmation answered %s", resp.status_code)
    return resp.status_code


def _check_shape(fields: Mapping[str, Any]) -> None:
    kind = fields.get("Type")
    if not isinstance(kind, str):
        raise SnsError("missing_field", "Type is missing or not a string")
    if kind not in SIGNED_FIELDS:
        raise SnsError("unknown_message_type", f"unknown Type {_short(kind)}")
    for name in (*SIGNED_FIELDS[kind], *ENVELOPE_FIELDS):
        if name in OPTIONAL_SIGNED_FIELDS and fields.get(name) is None:
            continue
        _string(fields, name)


def check_text(fields: Mapping[str, Any]) -> None:
    """Refuse lone surrogates anywhere and a MessageId or TopicArn that is empty, long or NUL."""
    # SNS signs UTF-8, so a lone surrogate (a "\ud800" escape) was never signed; identifiers
    # must fit their columns and hold no NUL. Message and Subject may hold NUL: they are text,
    # cleaned where they are stored.
    for name, value in fields.items():
        if isinstance(value, str) and LONE_SURROGATE_RE.search(value):
            raise SnsError("invalid_unicode", f"{_short(name)} holds a lone surrogate")
    for name, limit in (("MessageId", MAX_MESSAGE_ID_CHARS), ("TopicArn", MAX_TOPIC_ARN_CHARS)):
        value = _string(fields, name)
        if not value or len(value) > limit or UNSTORABLE_RE.search(value):
            raise SnsError("bad_identifier", f"{name} must be 1 to {limit} characters, no NUL")


def _string(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str):
        raise SnsError("missing_field", f"{name} is missing or not a string")
    return value


def _parse_timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise SnsError("bad_timestamp", "Timestamp is missing or not a string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise SnsError("bad_timestamp", f"Timestamp {_short(value)} is not ISO 8601") from exc
    if parsed.tzinfo is None:
        raise SnsError("bad_timestamp", "Timestamp has no time zone")
    return parsed.astimezone(UTC)


def _check_signature(
    fields: Mapping[str, Any], cert: x509.Certificate, algorithm: hashes.HashAlgorithm
) -> None:
    if fields.get("Type") not in SIGNED_FIELDS:
        # parse_envelope refuses this earlier; here it only means the signature covers nothing.
        raise SnsError("bad_signature", "Type is not one SNS signs", 403)
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SnsError("bad_certificate", "signing certificate does not hold an RSA key", 403)
    try:
        signature = base64.b64decode(_string(fields, "Signature"), validate=True)
    except (binascii.Error, ValueError) as exc:  # ValueError: a non-ASCII str
        raise SnsError("bad_signature", "Signature is not base64", 403) from exc
    try:
        key.verify(signature, string_to_sign(fields), padding.PKCS1v15(), algorithm)
    except (InvalidSignature, UnicodeEncodeError) as exc:
        raise SnsError("bad_signature", "signature does not match the message", 403) from exc


def _check_age(timestamp: datetime, *, now: datetime, max_age: timedelta) -> None:
    # Only Notifications: replaying one re-opens an alert. A replayed confirmation
    # merely re-confirms (or re-announces) a subscription to an allowed topic, and
    # SNS re-sends confirmations whose token stays valid for days.
    if timestamp - now > MAX_FUTURE_SKEW:
        raise SnsError("timestamp_in_future", "Timestamp is in the future")
    if now - timestamp > max_age:
        raise SnsError("stale_message", f"message is older than {max_age}")


def _load_certificate(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise SnsError(
            "bad_certificate", "signing certificate is not a PEM certificate", 403
        ) from exc


def _split_sns_url(url: str, code: str, name: str) -> SplitResult:
    # Refuse anything urlsplit would silently clean up (whitespace, controls, non-ASCII),
    # so the URL we check is byte for byte the URL requests fetches.
    if len(url) > MAX_URL_CHARS or not url.isascii() or any(c <= " " or c == "\x7f" for c in url):
        raise SnsError(code, f"{name} contains characters a URL must not", 403)
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise SnsError(code, f"{name} must use https", 403)
    # netloc, not hostname: user@, :port and case tricks all fail the exact match.
    match = SNS_HOST_RE.fullmatch(parts.netloc)
    if match is None:
        raise SnsError(code, f"{name} host is not an SNS endpoint", 403)
    if bool(match["cn"]) != match["region"].startswith("cn-"):
        raise SnsError(code, f"{name} host does not match its partition", 403)
    return parts


def _file_name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _to_message(fields: Mapping[str, Any], timestamp: datetime) -> SnsMessage:
    return SnsMessage(
        type=fields["Type"],
        message_id=fields["MessageId"],
        topic_arn=fields["TopicArn"],
        timestamp=timestamp,
        message=fields["Message"],
        subject=fields.get("Subject"),
        subscribe_url=fields.get("SubscribeURL"),
        token=fields.get("Token"),
        raw=dict(fields),
    )
