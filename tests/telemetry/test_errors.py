"""Error reports (opsbot[sentry]): an exception reaches Sentry (a fake ingest endpoint receiving
the SDK's envelopes) with no alert body in it; and without the extras opsbot runs as before and
says once that what OTEL_* and OPSBOT_SENTRY_DSN ask for is unavailable."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
import sentry_sdk
from pydantic import SecretStr
from sqlalchemy import create_engine, text

from opsbot.telemetry import errors
from tests.support.sns import alarm_message, notify

MARKER = "Body-Marker-7f3a9c"


def test_an_exception_reaches_sentry_without_the_alert_body(
    sentry, settings, make_app, signer, clock
) -> None:
    configured = settings.model_copy(update={"sentry_dsn": SecretStr(sentry.dsn)})
    assert errors.start(configured)
    client = make_app(configured).test_client()
    broken = create_engine(settings.database_url)
    with broken.begin() as conn:
        conn.execute(text("DROP TABLE outbox"))  # ingest fails when it queues the calls
    broken.dispose()
    message = alarm_message(f"Disk-{MARKER}", description=f"the body says {MARKER}")
    answer = notify(client, signer, clock, message)
    assert answer.status_code in (500, 503)
    sentry_sdk.flush(timeout=10)
    (event, *_) = sentry.wait_for_events(1)
    assert event["level"] == "error" and event["logger"] == "opsbot.web.errors"
    reported = json.dumps(event)
    assert "outbox" in reported  # what failed is there
    assert all(MARKER.encode() not in envelope.raw for envelope in sentry.envelopes)
    assert "Signature" not in reported and "SigningCertURL" not in reported


def test_scrubbing_removes_bodies_parameters_variables_and_headers() -> None:
    body = json.dumps({"Message": f"alarm {MARKER}"})
    event = {
        "request": {
            "method": "POST",
            "url": "http://opsbot/sns",
            "data": body,
            "cookies": {"session": "s"},
            "query_string": f"secret={MARKER}",
            "headers": {
                "User-Agent": "Amazon Simple Notification Service Agent",
                "Authorization": "Bearer t0ken",
                "X-Amz-Sns-Topic-Arn": MARKER,
            },
        },
        "exception": {
            "values": [
                {
                    "type": "NotNullViolation",
                    "value": 'null value in column "title" of relation "incidents"\n'
                    f"DETAIL:  Failing row contains (1, {MARKER}).\n"
                    f"[SQL: INSERT INTO incidents ...]\n[parameters: {{'title': '{MARKER}'}}]",
                    "stacktrace": {"frames": [{"function": "ingest", "vars": {"m": MARKER}}]},
                }
            ]
        },
        "logentry": {"message": "failed: %s", "params": [MARKER]},
        "breadcrumbs": {"values": [{"message": "ok", "data": {"body": MARKER}}]},
        "extra": {"payload": MARKER},
    }
    scrubbed = errors.scrub_event(event)
    assert MARKER not in json.dumps(scrubbed)
    exception = scrubbed["exception"]["values"][0]
    assert exception["type"] == "NotNullViolation"
    assert exception["value"].startswith('null value in column "title" of relation "incidents"')
    assert scrubbed["request"]["headers"] == {
        "User-Agent": "Amazon Simple Notification Service Agent"
    }
    assert scrubbed["request"]["method"] == "POST"


def test_a_long_message_is_cut_at_the_limit() -> None:
    assert len(errors.scrub_text("x" * 1000)) == errors.MESSAGE_LIMIT
    assert errors.scrub_text("y" * errors.MESSAGE_LIMIT) == "y" * errors.MESSAGE_LIMIT


BLOCKED = "import sys; sys.modules.update(dict.fromkeys(['opentelemetry', 'sentry_sdk'])); "


def test_without_the_extras_serve_runs_and_says_so_once(database_url, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["serve", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)]
    code = BLOCKED + f"sys.argv = ['opsbot', *{args!r}]; from opsbot.cli import main; main()"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSBOT_", "OTEL_"))}
    env |= {
        "OPSBOT_DATABASE_URL": database_url,
        "OPSBOT_SENTRY_DSN": "http://0123456789abcdef@127.0.0.1:1/1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
        "PYTHONPATH": str(Path(__file__).parents[2]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for _ in range(300):
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                    break
            except requests.RequestException:  # not listening yet, or a worker still booting
                if proc.poll() is not None:
                    break
                time.sleep(0.05)
        answer = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert answer.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output
    assert output.count("tracing unavailable") == 1, output
    assert output.count("error reports unavailable") == 1, output
    assert "Traceback" not in output
