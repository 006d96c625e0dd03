"""Named API tokens with scopes: the ``api_tokens:`` section of the YAML and ``OPSBOT_API_TOKEN``.

```yaml
api_tokens:
  ci-deploy:                       # the token's name: audit "api:ci-deploy", log lines
    scopes: [read, events]         # read, write, events
    secret_env: OPSBOT_TOKEN_CI    # the environment variable holding the token, or
  grafana:
    scopes: [read]
    sha256: "5e884898da28...42d8"  # the SHA-256 (hex) of the token
```

The YAML never holds a token itself: a token is named by the variable that
holds it or by its SHA-256. ``OPSBOT_API_TOKEN``, when set, is the token named
``default`` with every scope (the name is reserved for it). A presented token
is hashed and compared with every known hash in constant time, so neither the
answer nor its timing tells which token came close.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opsbot.config import Settings
from opsbot.config.yamldoc import ConfigError, Document, KeyPath, describe, document_for, keys
from opsbot.core.policy import Policy

log = logging.getLogger(__name__)

SECTION = "api_tokens"
SCOPES = ("read", "write", "events")
TOKEN_KEYS = ("scopes", "secret_env", "sha256")
DEFAULT_NAME = "default"  # OPSBOT_API_TOKEN's name
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
MIN_SECRET_LENGTH = 16  # a named token read from the environment; hashes cannot be checked
MAX_TOKEN_LENGTH = 1024  # a longer Authorization value is not hashed at all


@dataclass(frozen=True)
class ApiToken:
    """One named token: its scopes and the SHA-256 of its secret (never the secret)."""

    name: str
    scopes: frozenset[str]
    digest: bytes


@dataclass(frozen=True)
class TokenSpec:
    """A token as the YAML names it: where its secret is, not the secret."""

    name: str
    scopes: frozenset[str]
    secret_env: str | None = None
    sha256: str | None = None


class TokenTable:
    """The tokens one process accepts."""

    def __init__(self, tokens: tuple[ApiToken, ...], *, closed: bool = False) -> None:
        self.tokens = tokens
        self.closed = closed or bool(tokens)

    def __bool__(self) -> bool:
        """Return whether callers need a token (False only when none is configured at all)."""
        return self.closed

    def match(self, presented: str) -> ApiToken | None:
        """Return the token whose secret this is, comparing with every token in constant time."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        found = None
        for token in self.tokens:  # no early exit: every hash is compared
            if hmac.compare_digest(digest, token.digest):
                found = token
        return found


def digest_of(secret: str) -> bytes:
    """Return the SHA-256 of a token, as the table stores it."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def _scopes(doc: Document, value: Any, path: KeyPath) -> frozenset[str]:
    if not isinstance(value, list) or not value:
        doc.error(path, f"expected a non-empty list of {', '.join(SCOPES)}, got {describe(value)}")
        return frozenset()
    found = set()
    for i, item in enumerate(value):
        if item not in SCOPES:
            doc.error((*path, i), f"{describe(item)} is not one of {', '.join(SCOPES)}")
        elif item in found:
            doc.error((*path, i), f"{item!r} is listed twice")
        found.add(item)
    return frozenset(found & set(SCOPES))


def _spec(doc: Document, name: Any, value: Any) -> TokenSpec | None:
    path: KeyPath = (SECTION, name)
    before = len(doc.found)
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        doc.error(path, "a token name is 1-64 of a-z 0-9 _ . - (starting with a letter or digit)")
    elif name == DEFAULT_NAME:
        doc.error(path, f"{DEFAULT_NAME!r} is the name of OPSBOT_API_TOKEN; choose another")
    if not isinstance(value, dict):
        doc.error(path, f"expected a mapping with scopes and secret_env or sha256, got "
                  f"{describe(value)}")  # fmt: skip
        return None
    keys(doc, value, path, TOKEN_KEYS, ("scopes",))
    scopes = _scopes(doc, value["scopes"], (*path, "scopes")) if "scopes" in value else frozenset()
    env, sha = value.get("secret_env"), value.get("sha256")
    if (env is None) == (sha is None):
        doc.error(path, "give exactly one of secret_env (a variable name) or sha256 (a hex digest)")
    if env is not None and not (isinstance(env, str) and ENV_NAME_RE.fullmatch(env)):
        doc.error((*path, "secret_env"), f"{describe(env)} is not an environment variable name")
    if sha is not None and not (isinstance(sha, str) and SHA256_RE.fullmatch(sha)):
        doc.error((*path, "sha256"), "expected 64 hex digits (the SHA-256 of the token)")
    if len(doc.found) > before:
        return None
    return TokenSpec(name, scopes, env, sha.lower() if isinstance(sha, str) else None)


def parse_tokens(policy: Policy, environ: Mapping[str, str] | None = None) -> tuple[TokenSpec, ...]:
    """Return the tokens ``api_tokens:`` names; raise ConfigError (FILE:LINE: path: problem).

    With ``environ``, a ``secret_env`` variable that is set must hold
    MIN_SECRET_LENGTH to MAX_TOKEN_LENGTH characters. An unset one is not an
    error here (a worker has no use for API secrets): its token is refused.
    """
    section = policy.extra.get(SECTION)
    if section is None:
        return ()
    doc = document_for(policy.extra, "configuration")
    if not isinstance(section, dict):
        doc.error((SECTION,), f"expected a mapping of token name to token, got {describe(section)}")
        doc.check()
    specs = [spec for name, value in section.items() if (spec := _spec(doc, name, value))]
    for spec in specs if environ is not None else ():
        secret = environ.get(spec.secret_env) if environ and spec.secret_env else None
        if secret and not MIN_SECRET_LENGTH <= len(secret) <= MAX_TOKEN_LENGTH:
            doc.error(
                (SECTION, spec.name, "secret_env"),
                f"{spec.secret_env} must hold {MIN_SECRET_LENGTH} to {MAX_TOKEN_LENGTH} characters",
            )
    doc.check()
    return tuple(specs)


def load_tokens(
    settings: Settings, policy: Policy, environ: Mapping[str, str] | None = None
) -> TokenTable:
    """Return the tokens this process accepts: OPSBOT_API_TOKEN as ``default``, then the YAML's.

    A configuration ``opsbot check`` would refuse gives a table that refuses
    every token (never the loopback-only default of a tokenless install).
    """
    env = os.environ if environ is None else environ
    tokens = []
    if settings.api_token is not None:
        default = settings.api_token.get_secret_value()
        tokens.append(ApiToken(DEFAULT_NAME, frozenset(SCOPES), digest_of(default)))
    try:
        specs = parse_tokens(policy, env)
    except ConfigError as exc:
        log.error("API tokens refused until the configuration is fixed: %s", "; ".join(exc.errors))
        return TokenTable(tuple(tokens), closed=True)
    for spec in specs:
        if spec.sha256:
            tokens.append(ApiToken(spec.name, spec.scopes, bytes.fromhex(spec.sha256)))
        elif secret := env.get(spec.secret_env or ""):
            tokens.append(ApiToken(spec.name, spec.scopes, digest_of(secret)))
        else:
            log.error("API token %s is refused: %s is not set", spec.name, spec.secret_env)
    return TokenTable(tuple(tokens), closed=bool(specs))


def check_tokens(policy: Policy) -> tuple[TokenSpec, ...]:
    """Parse the tokens section for ``opsbot check`` (variables that are set checked too)."""
    return parse_tokens(policy, os.environ)
