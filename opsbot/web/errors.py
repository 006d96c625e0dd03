"""JSON errors for every HTTP failure: ``{"error": code, "detail": sentence}``."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    """An error answer with a machine code, a human sentence and a 4xx status."""

    def __init__(self, code: str, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.code, self.detail, self.status = code, detail, status


def error_response(code: str, detail: str, status: int) -> tuple[Response, int]:
    """Return the JSON error answer."""
    return jsonify(error=code, detail=detail), status


def register(app: Flask) -> None:
    """Answer every error as JSON and log it."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> tuple[Response, int]:
        log.warning("%s %s refused: %s (%s)", request.method, request.path, exc.code, exc.detail)
        return error_response(exc.code, exc.detail, exc.status)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        code = HTTP_CODES.get(status, "http_error")
        log.warning("%s %s refused: %s", request.method, request.path, code)
        return error_response(code, exc.description or code, status)

    @app.errorhandler(OperationalError)
    def _database_down(exc: OperationalError) -> tuple[Response, int]:
        log.error("database unavailable on %s %s: %s", request.method, request.path, exc.orig)
        return error_response("database_unavailable", "The database is unreachable; retry.", 503)

    @app.errorhandler(DBAPIError)
    def _database_error(exc: DBAPIError) -> tuple[Response, int]:
        log.exception("database error on %s %s", request.method, request.path)
        return error_response("internal_error", "opsbot failed; the request was not applied.", 500)

    @app.errorhandler(Exception)
    def _internal(exc: Exception) -> tuple[Response, int]:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response("internal_error", "opsbot failed; the request was not applied.", 500)
