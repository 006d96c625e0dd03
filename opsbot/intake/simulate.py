"""``opsbot simulate``: sign a bundled sample and push it through a running opsbot's ``POST /sns``.

The signature is real: a local key whose certificate sits in the cert dir the
running opsbot pins (``OPSBOT_SNS_CERT_DIR``, else ``<data dir>/sns-certs``),
so the sample takes exactly the verified path an AWS delivery takes.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import requests

from opsbot.config import Settings
from opsbot.sns.sign import LocalSigner

DEFAULT_TOPIC = "arn:aws:sns:us-east-1:111122223333:opsbot-simulate"

# name -> (file in opsbot/samples, SNS subject, description)
SAMPLES: dict[str, tuple[str, str | None, str]] = {
    "cloudwatch-alarm": (
        "cloudwatch-alarm.json",
        'ALARM: "High-CPU" in EU (Ireland)',
        "CloudWatch metric alarm entering ALARM",
    ),
    "cloudwatch-ok": (
        "cloudwatch-ok.json",
        'OK: "High-CPU" in EU (Ireland)',
        "the same alarm returning to OK",
    ),
    "codepipeline-failed": (
        "codepipeline-failed.json",
        None,
        "EventBridge: CodePipeline execution FAILED",
    ),
    "ecs-deployment-failed": (
        "ecs-deployment-failed.json",
        None,
        "EventBridge: ECS service deployment failed",
    ),
    "text": ("text.txt", "Backup job failed on db-01", "plain-text SNS message"),
}


class SimulateError(Exception):
    """A precise reason why the sample could not be pushed."""


def available() -> dict[str, str]:
    """Return the bundled sample names and what each shows."""
    return {name: description for name, (_, _, description) in SAMPLES.items()}


def load_sample(name: str) -> tuple[str, str | None]:
    """Return the message text and subject of a bundled sample."""
    if name not in SAMPLES:
        raise SimulateError(f"unknown sample {name!r}; choose one of: {', '.join(SAMPLES)}")
    file, subject, _ = SAMPLES[name]
    text = resources.files("opsbot.samples").joinpath(file).read_text(encoding="utf-8")
    if file.endswith(".json"):
        text = _refresh_times(json.loads(text))
    return text, subject


def _refresh_times(event: dict[str, Any]) -> str:
    """Stamp the sample with the current time so that it reads as news."""
    now = datetime.now(UTC)
    if "StateChangeTime" in event:
        event["StateChangeTime"] = now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    if "time" in event:
        event["time"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if "id" in event:
        event["id"] = str(uuid.uuid4())
    return json.dumps(event)


def push(settings: Settings, name: str, url: str, timeout: float = 10.0) -> tuple[int, Any]:
    """Sign the sample and POST it to ``<url>/sns``; return the HTTP status and JSON body."""
    text, subject = load_sample(name)
    signer = LocalSigner.load_or_create(settings.effective_cert_dir)
    topic = settings.sns_topic_arns[0] if settings.sns_topic_arns else DEFAULT_TOPIC
    envelope = signer.notification(text, topic_arn=topic, subject=subject)
    try:
        response = requests.post(
            url.rstrip("/") + "/sns",
            data=json.dumps(envelope).encode(),
            headers={
                "Content-Type": "text/plain; charset=UTF-8",
                "x-amz-sns-message-type": "Notification",
                "x-amz-sns-message-id": envelope["MessageId"],
                "x-amz-sns-topic-arn": topic,
            },
            timeout=timeout,
        )
    except requests.RequestException as exc:
        raise SimulateError(f"could not reach opsbot at {url}: {exc}") from exc
    try:
        body = response.json()
    except ValueError:
        body = {"raw": response.text[:500]}
    return response.status_code, body
