"""What every view asks of the request: the process's runtime and who is calling (API tokens).

``authenticate(request, scope)`` is the one check of ``/api/*`` (and of any
page that shows the same data): it returns the ``Principal`` a bearer token
names, or raises the JSON 401 (no or unknown token) or 403 (the token lacks
the scope). With no token configured at all (neither ``OPSBOT_API_TOKEN`` nor
``api_tokens:``) only loopback callers are served, as the principal
``loopback`` with every scope — the embedded default of earlier releases.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app
from flask import request as current_request
from werkzeug.wrappers import Request

from opsbot.runtime import Runtime
from opsbot.web.errors import ApiError
from opsbot.web.tokens import MAX_TOKEN_LENGTH, SCOPES, TokenTable, load_tokens

log = logging.getLogger(__name__)

LOOPBACK = "loopback"
TOKENS_KEY = "opsbot.api_tokens"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's name and its scopes."""

    name: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        """Return how the audit log names this caller: ``api:<token name>``."""
        return f"api:{self.name}"


def runtime() -> Runtime:
    """Return the runtime of the current Flask app."""
    return runtime_of(current_app)


def runtime_of(app: Flask) -> Runtime:
    """Return the runtime an app was built with."""
    rt: Runtime = app.extensions["opsbot"]
    return rt


def tokens_of(app: Flask) -> TokenTable:
    """Return the app's token table, rebuilt when its settings or policy object is replaced."""
    rt = runtime_of(app)
    cached = app.extensions.get(TOKENS_KEY)
    # Held, not just their ids: a reloaded policy must never match a freed one's id.
    if cached is None or cached[0] is not rt.settings or cached[1] is not rt.policy:
        cached = (rt.settings, rt.policy, load_tokens(rt.settings, rt.policy))
        app.extensions[TOKENS_KEY] = cached
    table: TokenTable = cached[2]
    return table


def authenticate(req: Request, scope: str) -> Principal:
    """Return who sent the request if its bearer token has ``scope``; raise a 401 or 403."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    table = tokens_of(current_app)
    if not table:
        if not _is_loopback(req.remote_addr):
            raise _unauthorized("No API token is configured: the API answers only on loopback.")
        return Principal(LOOPBACK, frozenset(SCOPES))
    scheme, _, value = req.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    token = None
    if scheme.lower() == "bearer" and 0 < len(value) <= MAX_TOKEN_LENGTH:
        token = table.match(value)
    if token is None:
        raise _unauthorized("A valid 'Authorization: Bearer <token>' is required.")
    if scope not in token.scopes:
        log.warning("API token %s lacks the %s scope for %s %s", token.name, scope,
                    req.method, req.path)  # fmt: skip
        challenge = f'Bearer error="insufficient_scope", scope="{scope}"'
        detail = f"The token {token.name!r} lacks the {scope} scope."
        raise ApiError("forbidden", detail, 403, {"WWW-Authenticate": challenge})
    return Principal(token.name, token.scopes)


def require(scope: str) -> Callable[[], None]:
    """Return a ``before_request`` hook that refuses callers without ``scope``."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def check() -> None:
        authenticate(current_request, scope)

    return check


def _unauthorized(detail: str) -> ApiError:
    return ApiError("unauthorized", detail, 401, {"WWW-Authenticate": 'Bearer realm="opsbot"'})


def _is_loopback(addr: str | None) -> bool:
    try:
        return addr is not None and ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False
