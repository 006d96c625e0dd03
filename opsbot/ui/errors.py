"""The dashboard's error pages: a 4xx page that says why, a 503 when the database is away."""

from __future__ import annotations

import logging

from flask import Blueprint, render_template, request
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from opsbot.web.errors import log_once

log = logging.getLogger(__name__)

TITLES = {400: "Bad request", 401: "Not signed in", 403: "Forbidden", 404: "Not found"}


class UiError(Exception):
    """A page that says what went wrong, with a 4xx status."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


def error_page(status: int, title: str, detail: str) -> tuple[str, int]:
    """Return the HTML error page and its status."""
    return render_template("ui/error.html", status=status, title=title, detail=detail), status


def register_errors(bp: Blueprint) -> None:
    """Answer the blueprint's errors as HTML pages (the API's stay JSON)."""

    @bp.errorhandler(UiError)
    def _ui_error(exc: UiError) -> tuple[str, int]:
        log.warning("%s %s refused: %s (%s)", request.method, request.path, exc.status, exc.detail)
        return error_page(exc.status, exc.title, exc.detail)

    @bp.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[str, int]:
        status = exc.code or 500
        log.warning("%s %s refused: %s", request.method, request.path, status)
        return error_page(status, exc.name, exc.description or exc.name)

    @bp.errorhandler(OperationalError)
    @bp.errorhandler(PoolTimeout)
    def _database_down(exc: Exception) -> tuple[str, int]:
        log.error("database unavailable on %s %s: %s", request.method, request.path,
                  type(exc).__name__)  # fmt: skip
        return error_page(503, "Database unavailable", "The database is unreachable; retry.")

    @bp.errorhandler(Exception)
    def _internal(exc: Exception) -> tuple[str, int]:
        log_once(exc)
        return error_page(500, "opsbot failed", "opsbot failed to show this page.")
