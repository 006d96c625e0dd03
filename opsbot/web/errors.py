"""JSON errors for every HTTP failure: ``{"error": code, "detail": sentence}``."""

from __future__ import annotations

import logging
import threading
import traceback

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import ClientDisconnected, HTTPException

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


# Exceptions only bad input raises once the edges have checked it: answered 400, not 500.
INPUT_FAULTS = (UnicodeError, RecursionError, OverflowError, DataError)
_logged_sites: set[tuple[str, str]] = set()
_logged_lock = threading.Lock()


class SlowClient(ConnectionResetError):
    """The client did not send its request within the read deadline (raised by the server)."""


class ApiError(Exception):
    """An error answer with a machine code, a human sentence and a 4xx status."""

    def __init__(
        self, code: str, detail: str, status: int = 400, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.code, self.detail, self.status = code, detail, status
        self.headers = headers or {}  # e.g. WWW-Authenticate on a 401


def error_response(code: str, detail: str, status: int) -> tuple[Response, int]:
    """Return the JSON error answer."""
    return jsonify(error=code, detail=detail), status


def register(app: Flask) -> None:
    """Answer every error as JSON and log it."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> tuple[Response, int]:
        log.warning("%s %s refused: %s (%s)", request.method, request.path, exc.code, exc.detail)
        response, status = error_response(exc.code, exc.detail, exc.status)
        response.headers.update(exc.headers)
        return response, status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        code = HTTP_CODES.get(status, "http_error")
        log.warning("%s %s refused: %s", request.method, request.path, code)
        response, status = error_response(code, exc.description or code, status)
        if status == 413 or isinstance(exc, ClientDisconnected):
            # The body was not (fully) read: the connection cannot carry another request.
            response.headers["Connection"] = "close"
        return response, status

    @app.errorhandler(SlowClient)
    def _slow_client(exc: SlowClient) -> tuple[Response, int]:
        log.warning("%s %s refused: the body was not sent in time", request.method, request.path)
        response, status = error_response("request_timeout", "The body came too slowly.", 408)
        response.headers["Connection"] = "close"
        return response, status

    @app.errorhandler(OperationalError)
    @app.errorhandler(PoolTimeout)
    def _database_down(exc: Exception) -> tuple[Response, int]:
        log.error("database unavailable on %s %s: %s", request.method, request.path, _brief(exc))
        return error_response("database_unavailable", "The database is unreachable; retry.", 503)

    for fault in INPUT_FAULTS:
        app.register_error_handler(fault, _input_fault)

    @app.errorhandler(DBAPIError)
    def _database_error(exc: DBAPIError) -> tuple[Response, int]:
        log_once(exc)
        return error_response("internal_error", "opsbot failed; the request was not applied.", 500)

    @app.errorhandler(Exception)
    def _internal(exc: Exception) -> tuple[Response, int]:
        log_once(exc)
        return error_response("internal_error", "opsbot failed; the request was not applied.", 500)


def _input_fault(exc: Exception) -> tuple[Response, int]:
    # The transaction was rolled back before this runs: nothing of the request is stored.
    log.warning("%s %s refused: %s", request.method, request.path, _brief(exc))
    return error_response("bad_input", "The request holds a value opsbot cannot store.", 400)


def log_once(exc: BaseException) -> None:
    """Log an unexpected error: its traceback the first time its site is seen, then one line."""
    frames = traceback.extract_tb(exc.__traceback__)
    site = (type(exc).__name__, f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "")
    with _logged_lock:
        first = site not in _logged_sites
        _logged_sites.add(site)
    if first:
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    else:
        log.error("unhandled error on %s %s: %s", request.method, request.path, _brief(exc))


def _brief(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return f"{type(exc).__name__}: {orig if orig is not None else exc}"[:200]
