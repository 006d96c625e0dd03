"""Who reads the dashboard: an API token (kept in a session cookie), the ALB's header, or loopback.

The scheme is the API's (``opsbot.web.request.authenticate`` with the
``read`` scope): a request is let in when it carries a token that has the
read scope, or (with no token configured) when it comes from loopback. An
``Authorization: Bearer`` header works as on the API. Browsers do not send
one by themselves, so ``/ui/login`` takes the token once in a POSTed form
and answers with a session cookie: the token encrypted and authenticated
(Fernet) under the session key, HttpOnly, ``SameSite=Strict``, ``Path=/ui``, Secure when the
request came over HTTPS, valid for ``SESSION_LIFETIME``. The token is checked
again on every request, so a rotated token ends every session made with it.
The token is never put in a URL, a page or a log line.

``SameSite=Strict`` means a link followed from Jira or Slack arrives without
the cookie; such a cross-site navigation gets a page that reloads itself from
opsbot's own origin (a meta refresh, no script), and that request carries it.

With ``OPSBOT_UI_TRUSTED_HEADER`` set (e.g. ``x-amzn-oidc-identity``), the
value of that header is taken as the reader's identity without a token. That
is only safe when opsbot is reachable solely through an ALB whose listener
rule authenticates every request (authenticate-oidc or authenticate-cognito)
and sets the header itself: anyone who can reach opsbot directly can send it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from flask import Flask, Request
from werkzeug.wrappers import Response

from opsbot.runtime import Runtime
from opsbot.web.errors import ApiError
from opsbot.web.request import LOOPBACK, authenticate, runtime_of, tokens_of
from opsbot.web.tokens import MAX_TOKEN_LENGTH

log = logging.getLogger(__name__)

COOKIE = "opsbot_ui"
COOKIE_PATH = "/ui"
SESSION_LIFETIME = timedelta(hours=12)
MAX_IDENTITY_LENGTH = 256
KEY_FILE = "ui-session.key"
SESSION_KEY = "ui.session"
READ = "read"


@dataclass(frozen=True)
class Reader:
    """Someone allowed to read the dashboard, and how they proved it."""

    name: str
    how: str  # session (a signed-in token), bearer, header, loopback


class Refused(Exception):
    """The request names someone who may not read the dashboard: a 4xx page says why."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def token_reader(app: Flask, token: str) -> Reader | None:
    """Return the reader of a token with the read scope; None for no such token.

    Raises Refused (403) for a known token without the read scope.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    found = tokens_of(app).match(token)
    if found is None:
        return None
    if READ not in found.scopes:
        raise Refused(403, f"The token {found.name!r} lacks the {READ} scope.")
    return Reader(found.name, "session")


def request_reader(app: Flask, req: Request, now: datetime) -> Reader | None:
    """Return who is reading, or None when they must sign in; raise Refused for a bad caller.

    In order: the trusted header (when configured and present), a bearer token
    (the API's own check), the session cookie; with no token configured at all,
    the API's rule (loopback only).
    """
    rt = runtime_of(app)
    header = rt.settings.ui_trusted_header
    if header:
        value = req.headers.get(header)
        if value is not None:
            return Reader(_identity(value), "header")
    if "Authorization" in req.headers or not tokens_of(app):
        try:
            principal = authenticate(req, READ)
        except ApiError as exc:
            raise Refused(exc.status, exc.detail) from None
        return Reader(principal.name, "loopback" if principal.name == LOOPBACK else "bearer")
    cookie = req.cookies.get(COOKIE)
    return session_reader(app, cookie, now) if cookie else None


def _identity(value: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_IDENTITY_LENGTH or not value.isprintable():
        raise Refused(400, "The trusted identity header is empty, too long or not printable.")
    return value


def session_reader(app: Flask, cookie: str, now: datetime) -> Reader | None:
    """Return the reader of an authentic, fresh session cookie whose token still works."""
    try:
        raw = session_cipher(runtime_of(app)).decrypt_at_time(
            cookie.encode(),
            ttl=int(SESSION_LIFETIME.total_seconds()),
            current_time=int(now.timestamp()),
        )
        token = json.loads(raw)["t"]
    except (InvalidToken, ValueError, KeyError, TypeError, UnicodeError):
        return None
    return token_reader(app, token) if isinstance(token, str) else None


def start_session(rt: Runtime, response: Response, token: str, now: datetime, secure: bool) -> None:
    """Set the session cookie of a token on the response."""
    value = session_cipher(rt).encrypt_at_time(
        json.dumps({"t": token}).encode(), int(now.timestamp())
    )
    response.set_cookie(
        COOKIE,
        value.decode(),
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path=COOKIE_PATH,
        secure=secure,
        httponly=True,
        samesite="Strict",
    )


def end_session(response: Response, secure: bool) -> None:
    """Clear the session cookie."""
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, secure=secure, httponly=True, samesite="Strict"
    )


def session_cipher(rt: Runtime) -> Fernet:
    """Return this process's cipher of session cookies, built once."""
    cipher = rt.integrations.get(SESSION_KEY)
    if cipher is None:
        cipher = Fernet(session_key(rt))
        rt.integrations[SESSION_KEY] = cipher
    return cipher  # type: ignore[no-any-return]


def session_key(rt: Runtime) -> bytes:
    """Return the Fernet key: from OPSBOT_UI_SESSION_SECRET, else data_dir's key file."""
    secret = rt.settings.ui_session_secret
    if secret is not None:
        digest = hashlib.sha256(b"opsbot-ui-session\0" + secret.get_secret_value().encode())
        return base64.urlsafe_b64encode(digest.digest())
    path = rt.settings.data_dir / KEY_FILE
    try:
        return _key_file(path)
    except OSError as exc:
        log.warning(
            "no session key file at %s (%s): dashboard sessions last only as long as this "
            "process; set OPSBOT_UI_SESSION_SECRET",
            path,
            exc.strerror or exc,
        )
        return Fernet.generate_key()


def _key_file(path: Path) -> bytes:
    """Return the key kept in ``path``, creating it (0600) once for all processes of the host."""
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # Written aside, then linked into place: a process never reads a half-written key.
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key + b"\n")
    try:
        os.link(aside, path)
    except FileExistsError:
        return _read_key(path)  # another process made it first
    finally:
        aside.unlink(missing_ok=True)
    return key


def _read_key(path: Path) -> bytes:
    key = path.read_bytes().strip()
    try:
        Fernet(key)
    except (ValueError, binascii.Error):
        raise OSError(f"{path} does not hold a session key") from None
    return key


def is_https(req: Request, public_url: str | None) -> bool:
    """Return whether the browser reached opsbot over HTTPS (directly or through the ALB)."""
    forwarded = req.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return req.is_secure or forwarded == "https" or (public_url or "").startswith("https://")
