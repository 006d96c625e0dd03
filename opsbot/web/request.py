"""What every view asks of the request: the process's runtime and the API token check."""

from __future__ import annotations

import hmac
import ipaddress

from flask import Flask, current_app, request

from opsbot.runtime import Runtime
from opsbot.web.errors import ApiError


def runtime() -> Runtime:
    """Return the runtime of the current Flask app."""
    return runtime_of(current_app)


def runtime_of(app: Flask) -> Runtime:
    """Return the runtime an app was built with."""
    rt: Runtime = app.extensions["opsbot"]
    return rt


def authenticate() -> None:
    """Refuse the request unless it carries the API token (or, with none set, is local)."""
    token = runtime().settings.api_token
    if token is None:
        if not _is_loopback(request.remote_addr):
            raise ApiError(
                "unauthorized",
                "OPSBOT_API_TOKEN is not set: the API answers only on loopback.",
                401,
            )
        return
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), expected):
        raise ApiError("unauthorized", "A valid 'Authorization: Bearer <token>' is required.", 401)


def _is_loopback(addr: str | None) -> bool:
    try:
        return addr is not None and ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False
