"""POST /sns under hostile input: every reproduction of issue 15 answers 4xx and stores nothing,
and a validly signed message with content PostgreSQL would refuse is stored cleaned."""

from __future__ import annotations

import json
import uuid

import pytest

from opsbot.db.models import AlertRow, Delivery, Incident
from opsbot.db.session import transaction
from opsbot.sns.verify import CertificateStore, SnsError
from tests.support.hostile import assert_refused, row_counts
from tests.support.sns import TOPIC, alarm_message, notify, post_sns


def raw_post(client, text: str):
    return client.post("/sns", data=text.encode("utf-8", "surrogatepass"))


def test_a_lone_surrogate_in_a_signed_field_is_400_before_any_signature_work(
    client, signer, clock, rt
) -> None:
    before = row_counts(rt)
    envelope = signer.notification("x", topic_arn=TOPIC, timestamp=clock.now)
    envelope["Message"] = "\ud800"
    response = raw_post(client, json.dumps(envelope))  # ensure_ascii: the "\ud800" escape
    assert_refused(response, before, rt)
    assert response.get_json()["error"] == "invalid_unicode"


def test_a_non_ascii_signature_is_a_403_not_a_500(client, signer, clock, rt) -> None:
    before = row_counts(rt)
    envelope = signer.notification("x", topic_arn=TOPIC, timestamp=clock.now)
    envelope["Signature"] = "é"
    response = post_sns(client, envelope)
    assert_refused(response, before, rt)
    assert response.status_code == 403 and response.get_json()["error"] == "bad_signature"


@pytest.mark.parametrize(
    ("field", "value"),
    [("MessageId", "m" * 129), ("MessageId", "a\x00b")],
)
def test_a_message_id_that_does_not_fit_is_refused_not_cut(
    client, signer, clock, rt, field, value
) -> None:
    before = row_counts(rt)
    envelope = signer.notification("x", topic_arn=TOPIC, message_id=value, timestamp=clock.now)
    response = post_sns(client, envelope)
    assert_refused(response, before, rt)
    assert response.get_json()["error"] == "bad_identifier"


def test_a_message_id_of_exactly_128_characters_is_stored(client, signer, clock, rt) -> None:
    message_id = "m" * 128
    assert notify(client, signer, clock, alarm_message(), message_id=message_id).status_code == 200
    with transaction(rt.sessions) as session:
        assert session.query(Delivery).filter_by(message_id=message_id).count() == 1


def test_a_topic_arn_over_256_characters_is_refused(client, signer, clock, rt) -> None:
    before = row_counts(rt)
    topic = "arn:aws:sns:us-east-1:111122223333:" + "t" * 230
    response = notify(client, signer, clock, "x", topic=topic)
    assert_refused(response, before, rt)


def test_nul_and_overlong_values_in_a_signed_message_are_stored_cleaned(
    client, signer, clock, rt
) -> None:
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Something \x00 happened",
        "source": "custom." + "s" * 300,
        "account": "1" * 40,
        "time": "2026-11-29T08:00:00Z",
        "region": "eu-west-1-" + "x" * 40,
        "resources": ["arn:aws:ec2:eu-west-1:111122223333:instance/i-\x00" + "r" * 600],
        "detail": {"note": "nul \x00 here", "\x00key": 1},
    }
    message = json.dumps(event)
    response = notify(client, signer, clock, message, message_id="nul\u2603")
    assert response.status_code == 200, response.get_data(as_text=True)
    with transaction(rt.sessions) as session:
        incident = session.query(Incident).one()
        alert = session.query(AlertRow).one()
        delivery = session.query(Delivery).filter_by(message_id="nul\u2603").one()
        assert len(incident.source) <= 128 and incident.source.endswith("…")
        assert len(incident.account_id) <= 32 and len(incident.region) <= 32
        assert len(alert.resource) <= 512
        assert delivery.body == message  # JSON text: its NULs are "\u0000" escapes
        assert "\x00" not in json.dumps(alert.labels, ensure_ascii=False)


def test_a_nul_in_a_plain_text_message_is_replaced(client, signer, clock, rt) -> None:
    assert notify(client, signer, clock, "disk \x00 full").status_code == 200
    with transaction(rt.sessions) as session:
        assert session.query(Delivery).one().body == "disk \ufffd full"
        assert "\x00" not in session.query(Incident).one().title


def test_a_nul_in_the_subject_is_replaced(client, signer, clock, rt) -> None:
    envelope = signer.notification(
        alarm_message(), topic_arn=TOPIC, subject="a\x00b", timestamp=clock.now
    )
    assert post_sns(client, envelope).status_code == 200
    with transaction(rt.sessions) as session:
        assert session.query(Delivery).one().subject == "a\ufffdb"


@pytest.mark.parametrize("occurred", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-23:59"])
def test_a_time_at_the_edge_of_the_calendar_is_not_an_overflow(
    client, signer, clock, rt, occurred
) -> None:
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Edge",
        "source": "custom.edge",
        "account": "111122223333",
        "time": occurred,
        "region": "eu-west-1",
        "resources": [],
        "detail": {},
    }
    response = notify(client, signer, clock, json.dumps(event))
    assert response.status_code == 200, response.get_data(as_text=True)


def test_a_failed_certificate_download_is_not_repeated_for_each_request(tmp_path) -> None:
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        raise OSError("no such certificate")

    store = CertificateStore(tmp_path, fetch=fetch)
    url = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-forged.pem"
    for _ in range(5):
        with pytest.raises(SnsError) as caught:
            store.get(url)
        assert caught.value.status == 503
    assert fetched == [url]


def test_deep_json_is_a_400(client, rt) -> None:
    before = row_counts(rt)
    response = raw_post(client, "[" * 100_000 + "]" * 100_000)
    assert_refused(response, before, rt)


def test_sender_chosen_sources_do_not_grow_the_metrics(client, signer, clock, rt) -> None:
    for n in range(3):
        event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "X",
                 "source": f"custom.app{n}", "account": "111122223333",
                 "time": "2026-11-29T08:00:00Z", "region": "eu-west-1", "resources": [],
                 "detail": {}}  # fmt: skip
        assert notify(client, signer, clock, json.dumps(event)).status_code == 200
    text = client.get("/metrics").get_data(as_text=True)
    assert "custom.app" not in text
    assert 'source="other"' in text
