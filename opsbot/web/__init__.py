"""The web face: JSON errors, health and metrics, the incident API, request helpers."""

from flask import Flask

from opsbot.web import api, api_write, context, errors, health
from opsbot.web.errors import ApiError, error_response
from opsbot.web.request import Principal, authenticate, require, runtime, runtime_of

__all__ = [
    "ApiError",
    "Principal",
    "authenticate",
    "error_response",
    "register",
    "require",
    "runtime",
    "runtime_of",
]


def register(app: Flask) -> None:
    """Mount the request id, the JSON error handlers, the health routes and the REST API."""
    context.register(app)
    errors.register(app)
    health.register(app)
    api.register(app)
    api_write.register(app)
