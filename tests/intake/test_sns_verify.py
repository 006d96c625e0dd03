"""SNS verification: real AWS-signed messages, locally signed ones, and every refusal."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization

from opsbot.sns import verify as sns
from opsbot.sns.sign import LOCAL_CERT_NAME, LocalSigner
from opsbot.sns.verify import CertificateStore, SnsError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sns-signed"
REAL_MESSAGES = sorted(p.name for p in FIXTURES.glob("*.json"))
TOPIC = "arn:aws:sns:us-east-1:111122223333:opsbot-alerts"
NOW = datetime(2026, 3, 6, 20, 0, tzinfo=UTC)
MAX_AGE = timedelta(hours=1)


def no_fetch(url: str) -> bytes:
    raise AssertionError(f"unexpected certificate download: {url}")


def load_real(name: str) -> dict[str, Any]:
    return sns.parse_envelope((FIXTURES / name).read_bytes())


def verify(
    fields: dict[str, Any],
    certs: CertificateStore,
    *,
    now: datetime = NOW,
    allowed: frozenset[str] = frozenset(),
) -> sns.SnsMessage:
    return sns.verify(fields, certs, now=now, max_age=MAX_AGE, allowed_topics=allowed)


def flip_middle(value: str) -> str:
    """Change one byte in the middle of value (its low bit), keeping it ASCII."""
    middle = len(value) // 2
    return value[:middle] + chr(ord(value[middle]) ^ 1) + value[middle + 1 :]


@pytest.fixture
def signer(tmp_path: Path) -> LocalSigner:
    return LocalSigner.load_or_create(tmp_path / "certs")


@pytest.fixture
def pinned(signer: LocalSigner, tmp_path: Path) -> CertificateStore:
    return CertificateStore(tmp_path / "certs", fetch=no_fetch)


def assert_refused(excinfo: pytest.ExceptionInfo[SnsError], code: str, status: int) -> None:
    assert (excinfo.value.code, excinfo.value.status) == (code, status), excinfo.value.detail


# --- real AWS-signed messages ---------------------------------------------------------


@pytest.mark.parametrize("name", REAL_MESSAGES)
def test_real_aws_message_verifies_at_its_timestamp(name: str) -> None:
    fields = load_real(name)
    sent = datetime.fromisoformat(fields["Timestamp"])
    certs = CertificateStore(FIXTURES, fetch=no_fetch)

    msg = verify(fields, certs, now=sent, allowed=frozenset({fields["TopicArn"]}))

    assert (msg.type, msg.message_id, msg.message) == (
        fields["Type"],
        fields["MessageId"],
        fields["Message"],
    )
    assert msg.timestamp == sent and msg.timestamp.tzinfo is not None
    assert msg.subject == fields.get("Subject")
    assert msg.token == fields.get("Token")
    assert msg.raw == fields


def _tamper_cases() -> Iterator[tuple[str, str]]:
    for name in REAL_MESSAGES:
        fields = json.loads((FIXTURES / name).read_bytes())
        for field in sns.SIGNED_FIELDS[fields["Type"]]:
            if field in fields:
                yield name, field


@pytest.mark.parametrize(("name", "field"), list(_tamper_cases()))
def test_real_aws_message_with_one_byte_changed_is_refused(name: str, field: str) -> None:
    fields = load_real(name)
    sent = datetime.fromisoformat(fields["Timestamp"])
    fields[field] = flip_middle(fields[field])

    with pytest.raises(SnsError) as excinfo:
        verify(fields, CertificateStore(FIXTURES, fetch=no_fetch), now=sent)
    assert_refused(excinfo, "bad_signature", 403)


def test_real_subject_is_among_the_tampered_fields() -> None:
    fields = {field for name, field in _tamper_cases() if "with-subject" in name}
    assert "Subject" in fields


# --- string to sign -------------------------------------------------------------------


def test_string_to_sign_without_subject_omits_the_subject_key() -> None:
    fields = load_real("sns-signed-awssdkjavav2-notification-no-subject.json")

    assert sns.string_to_sign(fields) == (
        b"Message\nThis notification has no subject.\n"
        b"MessageId\nc0e5a280-53c9-5a98-93bb-c0a560b3d192\n"
        b"Timestamp\n2026-03-06T19:55:38.903Z\n"
        b"TopicArn\narn:aws:sns:us-west-2:131990247566:dongie-standard-topic\n"
        b"Type\nNotification\n"
    )


def test_string_to_sign_confirmation_covers_subscribe_url_and_token_in_order() -> None:
    fields = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "m",
        "Token": "t",
        "TopicArn": "a",
        "Message": "x\ny",
        "SubscribeURL": "u",
        "Timestamp": "ts",
        "Subject": "ignored",
    }

    assert sns.string_to_sign(fields) == (
        b"Message\nx\ny\nMessageId\nm\nSubscribeURL\nu\nTimestamp\nts\n"
        b"Token\nt\nTopicArn\na\nType\nSubscriptionConfirmation\n"
    )


# --- locally signed messages ----------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
def test_local_signature_verifies(
    signer: LocalSigner, pinned: CertificateStore, version: str
) -> None:
    fields = signer.notification("disk full", topic_arn=TOPIC, subject="Disk", timestamp=NOW)
    fields = signer.sign(fields, version)

    msg = verify(fields, pinned)

    assert (msg.message, msg.subject, msg.topic_arn) == ("disk full", "Disk", TOPIC)
    assert fields["SignatureVersion"] == version


def test_signature_from_another_key_is_refused(pinned: CertificateStore, tmp_path: Path) -> None:
    intruder = LocalSigner.load_or_create(tmp_path / "intruder")
    fields = intruder.notification("disk full", topic_arn=TOPIC, timestamp=NOW)

    with pytest.raises(SnsError) as excinfo:
        verify(fields, pinned)
    assert_refused(excinfo, "bad_signature", 403)


def test_signature_that_is_not_base64_is_refused(
    signer: LocalSigner, pinned: CertificateStore
) -> None:
    fields = signer.notification("x", topic_arn=TOPIC, timestamp=NOW)
    fields["Signature"] = "not*base64!"

    with pytest.raises(SnsError) as excinfo:
        verify(fields, pinned)
    assert_refused(excinfo, "bad_signature", 403)


def test_signature_version_3_is_refused(signer: LocalSigner, pinned: CertificateStore) -> None:
    fields = signer.notification("x", topic_arn=TOPIC, timestamp=NOW)
    fields["SignatureVersion"] = "3"

    with pytest.raises(SnsError) as excinfo:
        verify(fields, pinned)
    assert_refused(excinfo, "unsupported_signature_version", 400)


def test_unparseable_timestamp_is_refused(signer: LocalSigner, pinned: CertificateStore) -> None:
    fields = signer.notification("x", topic_arn=TOPIC, timestamp=NOW)
    fields["Timestamp"] = "yesterday"

    with pytest.raises(SnsError) as excinfo:
        verify(fields, pinned)
    assert_refused(excinfo, "bad_timestamp", 400)


def test_message_outside_certificate_validity_is_refused(
    signer: LocalSigner, pinned: CertificateStore
) -> None:
    later = datetime(2031, 1, 1, tzinfo=UTC)
    fields = signer.notification("x", topic_arn=TOPIC, timestamp=later)

    with pytest.raises(SnsError) as excinfo:
        verify(fields, pinned, now=later)
    assert_refused(excinfo, "certificate_expired", 403)


# --- age ------------------------------------------------------------------------------


def test_stale_notification_is_refused(signer: LocalSigner, pinned: CertificateStore) -> None:
    fields = signer.notification("x", topic_arn=TOPIC, timestamp=NOW - MAX_AGE - timedelta(1))

    with pytest.raises(SnsError) as excinfo:
        verify(fields, pinned)
    assert_refused(excinfo, "stale_message", 400)


def test_notification_just_within_max_age_verifies(
    signer: LocalSigner, pinned: CertificateStore
) -> None:
    fields = signer.notification("x", topic_arn=TOPIC, timestamp=NOW - MAX_AGE)

    assert verify(fields, pinned).message == "x"


def test_future_notification_is_refused(signer: LocalSigner, pinned: CertificateStore) -> None:
    fields = signer.notification("x", topic_arn=TOPIC, timestamp=NOW + timedelta(minutes=6))

    with pytest.raises(SnsError) as excinfo:
        verify(fields, pinned)
    assert_refused(excinfo, "timestamp_in_future", 400)


def test_small_clock_skew_is_tolerated(signer: LocalSigner, pinned: CertificateStore) -> None:
    fields = signer.notification("x", topic_arn=TOPIC, timestamp=NOW + timedelta(minutes=4))

    assert verify(fields, pinned).message == "x"


def test_old_subscription_confirmation_is_not_refused_for_age(
    signer: LocalSigner, pinned: CertificateStore
) -> None:
    # Replaying a confirmation only re-confirms a subscription to an allowed topic,
    # and SNS itself re-sends confirmations: only Notifications get the replay check.
    fields = signer.subscription_confirmation(topic_arn=TOPIC, timestamp=NOW - timedelta(days=2))

    msg = verify(fields, pinned)

    assert msg.type == "SubscriptionConfirmation"
    assert msg.subscribe_url == fields["SubscribeURL"]
    sns.check_subscribe_url(fields["SubscribeURL"], msg.topic_arn)


# --- topic allow-list -----------------------------------------------------------------


def test_topic_not_in_allow_list_is_refused(signer: LocalSigner, pinned: CertificateStore) -> None:
    fields = signer.notification("x", topic_arn=TOPIC, timestamp=NOW)

    with pytest.raises(SnsError) as excinfo:
        verify(fields, pinned, allowed=frozenset({TOPIC + "-other"}))
    assert_refused(excinfo, "topic_not_allowed", 403)


def test_topic_in_allow_list_verifies(signer: LocalSigner, pinned: CertificateStore) -> None:
    fields = signer.notification("x", topic_arn=TOPIC, timestamp=NOW)

    assert verify(fields, pinned, allowed=frozenset({TOPIC})).topic_arn == TOPIC


# --- certificate URL ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
        "https://sns.ap-southeast-2.amazonaws.com/SimpleNotificationService-abc.pem",
    ],
)
def test_cert_url_on_sns_host_is_accepted(url: str) -> None:
    sns.check_cert_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com.evil.com/SimpleNotificationService-abc.pem",
        "https://evil.com/sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com@evil.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.txt",
        "https://sns.us-east-1.amazonaws.com/x.pem?redirect=evil",
        "https://sns.cn-north-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
        "https://sns.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com/x\n.pem",
        "https://sns.us-east-1.amazonaws.com\\@evil.com/x.pem",
    ],
)
def test_cert_url_elsewhere_is_refused(url: str) -> None:
    with pytest.raises(SnsError) as excinfo:
        sns.check_cert_url(url)
    assert_refused(excinfo, "bad_cert_url", 403)


def test_verify_refuses_evil_cert_url_without_fetching(
    signer: LocalSigner, pinned: CertificateStore
) -> None:
    fields = signer.notification("x", topic_arn=TOPIC, timestamp=NOW)
    fields["SigningCertURL"] = f"https://evil.com/{LOCAL_CERT_NAME}"

    with pytest.raises(SnsError) as excinfo:
        verify(fields, pinned)
    assert_refused(excinfo, "bad_cert_url", 403)


# --- certificate store ----------------------------------------------------------------


class CountingFetch:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        return self.body


def test_certificate_is_downloaded_once_and_cached(signer: LocalSigner) -> None:
    fetch = CountingFetch(signer.cert_pem)
    certs = CertificateStore(None, fetch=fetch)

    verify(signer.notification("a", topic_arn=TOPIC, timestamp=NOW), certs)
    verify(signer.notification("b", topic_arn=TOPIC, timestamp=NOW), certs)

    assert fetch.urls == [signer.cert_url]


def test_certificate_is_found_in_cert_dir_by_file_name(tmp_path: Path) -> None:
    certs = CertificateStore(FIXTURES, fetch=no_fetch)
    name = "SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem"

    cert = certs.get(f"https://sns.eu-west-1.amazonaws.com/{name}")

    assert cert.public_bytes(serialization.Encoding.PEM) == (FIXTURES / name).read_bytes()


def test_certificate_download_failure_is_unavailable() -> None:
    def failing(url: str) -> bytes:
        raise requests.ConnectionError("no route")

    certs = CertificateStore(None, fetch=failing)

    with pytest.raises(SnsError) as excinfo:
        certs.get(f"https://sns.us-east-1.amazonaws.com/{LOCAL_CERT_NAME}")
    assert_refused(excinfo, "certificate_unavailable", 503)


def test_certificate_that_does_not_parse_is_refused() -> None:
    certs = CertificateStore(None, fetch=CountingFetch(b"<html>not a certificate</html>"))

    with pytest.raises(SnsError) as excinfo:
        certs.get(f"https://sns.us-east-1.amazonaws.com/{LOCAL_CERT_NAME}")
    assert_refused(excinfo, "bad_certificate", 403)


# --- parse_envelope -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "status"),
    [
        (b"{not json", "malformed_json", 400),
        (b"\xff\xfe", "malformed_json", 400),
        (b"[1, 2]", "malformed_json", 400),
        (b"[" * 100_000, "malformed_json", 400),
        (b'{"Type": "Shout"}', "unknown_message_type", 400),
        (b'{"Message": "no type"}', "missing_field", 400),
        (b" " * (sns.MAX_BODY_BYTES + 1), "body_too_large", 413),
    ],
)
def test_bad_body_is_refused(body: bytes, code: str, status: int) -> None:
    with pytest.raises(SnsError) as excinfo:
        sns.parse_envelope(body)
    assert_refused(excinfo, code, status)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        ("notification", "MessageId"),
        ("notification", "Signature"),
        ("notification", "SigningCertURL"),
        ("notification", "Timestamp"),
        ("subscription_confirmation", "Token"),
        ("subscription_confirmation", "SubscribeURL"),
    ],
)
def test_missing_or_non_string_field_is_named(signer: LocalSigner, make: str, field: str) -> None:
    build: Callable[..., dict[str, Any]] = getattr(signer, make)
    kwargs = {"message": "x"} if make == "notification" else {}
    fields = build(topic_arn=TOPIC, **kwargs)
    for broken in ({k: v for k, v in fields.items() if k != field}, {**fields, field: 7}):
        with pytest.raises(SnsError) as excinfo:
            sns.parse_envelope(json.dumps(broken).encode())
        assert_refused(excinfo, "missing_field", 400)
        assert field in excinfo.value.detail


def test_body_at_the_size_limit_is_parsed(signer: LocalSigner) -> None:
    fields = signer.notification("", topic_arn=TOPIC)
    padding = sns.MAX_BODY_BYTES - len(json.dumps(fields).encode())
    body = json.dumps({**fields, "Message": "x" * padding}).encode()

    assert len(body) == sns.MAX_BODY_BYTES
    assert sns.parse_envelope(body)["Message"] == "x" * padding


# --- subscribe URL and confirmation ---------------------------------------------------


def test_subscribe_url_in_another_region_is_refused() -> None:
    url = (
        f"https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=t"
    )

    with pytest.raises(SnsError) as excinfo:
        sns.check_subscribe_url(url, TOPIC)
    assert_refused(excinfo, "bad_subscribe_url", 403)


@pytest.mark.parametrize(
    "url",
    [
        f"http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=t",
        f"https://sns.us-east-1.amazonaws.com.evil.com/?Action=ConfirmSubscription&TopicArn={TOPIC}",
        f"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&TopicArn={TOPIC}&Token=t",
        "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:other&Token=t",
    ],
)
def test_subscribe_url_that_is_not_this_topics_confirmation_is_refused(url: str) -> None:
    with pytest.raises(SnsError) as excinfo:
        sns.check_subscribe_url(url, TOPIC)
    assert_refused(excinfo, "bad_subscribe_url", 403)


def test_real_subscribe_url_is_accepted() -> None:
    fields = load_real("sns-signed-awssdkjavav2-subscription-confirmation.json")

    sns.check_subscribe_url(fields["SubscribeURL"], fields["TopicArn"])


@pytest.fixture
def local_server() -> Iterator[Callable[[int, bytes], str]]:
    """Serve one canned answer on 127.0.0.1; yields a function that sets it."""
    answer: dict[str, Any] = {"status": 200, "body": b""}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(answer["status"])
            self.send_header("Content-Length", str(len(answer["body"])))
            self.end_headers()
            self.wfile.write(answer["body"])

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def serve(status: int, body: bytes) -> str:
        answer.update(status=status, body=body)
        return f"http://127.0.0.1:{server.server_address[1]}/cert.pem"

    yield serve
    server.shutdown()
    server.server_close()
    thread.join()


def test_confirm_subscription_returns_the_status(
    local_server: Callable[[int, bytes], str],
) -> None:
    assert sns.confirm_subscription(local_server(200, b"<ok/>")) == 200
    assert sns.confirm_subscription(local_server(403, b"")) == 403


def test_confirm_subscription_network_error_is_confirmation_failed(
    local_server: Callable[[int, bytes], str],
) -> None:
    with pytest.raises(SnsError) as excinfo:
        sns.confirm_subscription("http://127.0.0.1:9/", timeout=0.5)
    assert_refused(excinfo, "confirmation_failed", 502)


def test_fetch_certificate_downloads_and_caps_the_size(
    local_server: Callable[[int, bytes], str],
) -> None:
    assert sns.fetch_certificate(local_server(200, b"PEM")) == b"PEM"

    with pytest.raises(SnsError) as excinfo:
        sns.fetch_certificate(local_server(200, b"x" * (sns.MAX_CERT_BYTES + 1)))
    assert_refused(excinfo, "bad_certificate", 403)

    with pytest.raises(SnsError) as excinfo:
        sns.fetch_certificate(local_server(404, b""))
    assert_refused(excinfo, "certificate_unavailable", 503)


# --- the local signer -----------------------------------------------------------------


def test_local_signer_keeps_its_key_private_and_reuses_it(tmp_path: Path) -> None:
    first = LocalSigner.load_or_create(tmp_path, region="eu-west-1")
    second = LocalSigner.load_or_create(tmp_path)

    assert (tmp_path / "opsbot-local-signer.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / LOCAL_CERT_NAME).read_bytes() == first.cert_pem == second.cert_pem
    assert first.cert_url == f"https://sns.eu-west-1.amazonaws.com/{LOCAL_CERT_NAME}"
    cert = CertificateStore(tmp_path, fetch=no_fetch).get(first.cert_url)
    assert cert.not_valid_before_utc.year == 2020
    assert cert.not_valid_after_utc.year == 2030


def test_local_signer_rewrites_a_deleted_certificate(tmp_path: Path) -> None:
    signer = LocalSigner.load_or_create(tmp_path)
    (tmp_path / LOCAL_CERT_NAME).unlink()

    LocalSigner.load_or_create(tmp_path)

    assert (tmp_path / LOCAL_CERT_NAME).read_bytes() == signer.cert_pem
