"""Named API tokens for tests: the ``api_tokens:`` YAML, secrets in the environment, headers."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# name -> scopes; every test app built with ``install_tokens`` accepts these.
TOKENS: Mapping[str, tuple[str, ...]] = {
    "reader": ("read",),
    "writer": ("write",),
    "feeder": ("events",),
    "ops-ci": ("read", "write", "events"),
}
HASHED = "grafana"  # named by its SHA-256 in the YAML, not by a variable


def secret_of(name: str) -> str:
    """Return the test secret of a token (16+ characters, as the YAML requires)."""
    return f"test-token-{name}-0123456789abcdef"


def env_name(name: str) -> str:
    """Return the variable holding a token's secret."""
    return "OPSBOT_TEST_TOKEN_" + name.upper().replace("-", "_")


def tokens_yaml(tokens: Mapping[str, tuple[str, ...]] = TOKENS) -> str:
    """Return the api_tokens: section for the tokens (plus the hashed read-only one)."""
    lines = ["api_tokens:"]
    for name, scopes in tokens.items():
        lines += [
            f"  {name}:",
            f"    scopes: [{', '.join(scopes)}]",
            f"    secret_env: {env_name(name)}",
        ]
    digest = hashlib.sha256(secret_of(HASHED).encode()).hexdigest()
    lines += [f"  {HASHED}:", "    scopes: [read]", f"    sha256: {digest}"]
    return "\n".join(lines) + "\n"


def install_tokens(monkeypatch: Any, config_path: Path, config: str = "") -> None:
    """Write the YAML (``config`` plus the tokens) and put every token's secret in the env."""
    config_path.write_text(config + tokens_yaml())
    for name in TOKENS:
        monkeypatch.setenv(env_name(name), secret_of(name))


def bearer(name: str) -> dict[str, str]:
    """Return the Authorization header of a named test token."""
    return {"Authorization": f"Bearer {secret_of(name)}"}
