"""Signing in to the dashboard, and what every dashboard answer carries (see ``auth`` for why).

``mount(bp)`` adds ``/ui/login`` (GET: the form; POST: the token, once) and
``/ui/logout`` (POST), the check in front of every other page, and the
security headers after every answer.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from opsbot.ui import auth
from opsbot.ui.errors import TITLES, UiError
from opsbot.web.request import runtime
from opsbot.web.tokens import MAX_TOKEN_LENGTH

log = logging.getLogger(__name__)

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PUBLIC_ENDPOINTS = {"ui.static", "ui.login"}
MAX_NEXT = 2048


def mount(bp: Blueprint) -> None:
    """Add sign-in, sign-out, the reader check and the security headers to the dashboard."""
    bp.add_url_rule("/login", "login", login, methods=["GET", "POST"])
    bp.add_url_rule("/logout", "logout", logout, methods=["POST"])
    bp.before_request(admit)
    bp.after_request(secure_headers)


def admit() -> BaseResponse | None:
    """Let a reader through; send anyone else to sign in (or bounce a cross-site link)."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    try:
        reader = auth.request_reader(current_app, request, runtime().clock())
    except auth.Refused as exc:
        raise UiError(exc.status, TITLES.get(exc.status, "Refused"), exc.detail) from None
    if reader is not None:
        g.ui_reader = reader
        return None
    if request.method == "GET" and request.headers.get("Sec-Fetch-Site") == "cross-site":
        # A link from Jira or Slack: the Strict cookie was not sent; reload from our own origin.
        return Response(render_template("ui/bounce.html", target=here()), 200)
    return redirect(url_for("ui.login", next=here()), 303)


def here() -> str:
    """Return the path and query of this request."""
    query = request.query_string.decode("ascii", "replace")
    return request.path + (f"?{query}" if query else "")


def secure_headers(response: Response) -> Response:
    """Set the strict Content-Security-Policy and its companions on every dashboard answer."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "ui.static":
        response.headers["Cache-Control"] = "no-store"
    return response


def login() -> BaseResponse | str | tuple[str, int]:
    """Take an API token once and answer with a session cookie."""
    rt = runtime()
    target = safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("ui/login.html", next=target, error=None)
    same_origin()
    token = request.form.get("token", "").strip()
    if len(token) > MAX_TOKEN_LENGTH:
        raise UiError(400, "Token too long", f"A token has at most {MAX_TOKEN_LENGTH} characters.")
    try:
        reader = auth.token_reader(current_app, token)
    except auth.Refused as exc:
        page = render_template("ui/login.html", next=target, error=exc.detail)
        return page, exc.status
    if reader is None:
        log.warning("dashboard sign-in refused from %s: not a valid token", request.remote_addr)
        page = render_template("ui/login.html", next=target, error="That token is not valid.")
        return page, 401
    response = redirect(target, 303)
    auth.start_session(
        rt, response, token, rt.clock(), auth.is_https(request, rt.settings.public_url)
    )
    log.info("dashboard sign-in with token %s from %s", reader.name, request.remote_addr)
    return response


def logout() -> BaseResponse:
    """End the session."""
    same_origin()
    response = redirect(url_for("ui.login"), 303)
    auth.end_session(response, auth.is_https(request, runtime().settings.public_url))
    return response


def same_origin() -> None:
    """Refuse a form posted from another site (login CSRF)."""
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if site in ("cross-site", "same-site") or (
        origin is not None and origin != "null" and origin != request.host_url.rstrip("/")
    ):
        raise UiError(403, "Forbidden", "The form was posted from another site.")


def safe_next(value: str | None) -> str:
    """Return a local dashboard path to go to after sign-in (never another site)."""
    default = url_for("ui.incidents")
    if not value or len(value) > MAX_NEXT or "\\" in value or not value.isprintable():
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui") or value.startswith("//"):
        return default
    return value
