"""Sentry webhook helpers: the test client secret, signed deliveries, the documented bodies."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

SECRET = "sentry-client-secret-for-tests"
FIXTURES = Path(__file__).parents[1] / "sentry" / "fixtures"
CONFIG = """
accounts:
  "444455556666": {name: web-prod, environment: prod, team: web}
sentry:
  projects:
    front-end: {account: web-prod}
    bar: {environment: nonprod, team: data}
"""


def load(name: str) -> dict[str, Any]:
    value = json.loads((FIXTURES / name).read_text())
    assert isinstance(value, dict)
    return value


def signature(body: bytes, secret: str = SECRET) -> str:
    """Return Sentry-Hook-Signature for a body: the HMAC-SHA256 hex digest with the secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(client: FlaskClient, resource: str, body: object, *, sign: str | None = "yes") -> Any:
    """POST a webhook as Sentry does; ``sign`` None sends no signature, other text sends it."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Sentry-Hook-Resource": resource}
    headers |= {"Request-ID": "9b0b2c1e-6f7d-4b8c-9d3e-1f2a3b4c5d6e"}
    if sign is not None:
        headers["Sentry-Hook-Signature"] = signature(raw) if sign == "yes" else sign
    return client.post("/sentry/webhook", data=raw, headers=headers)
