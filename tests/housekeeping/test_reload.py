"""``POST /-/reload``: write scope, validate before swapping; an invalid file keeps the old one."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from opsbot.config import Settings
from opsbot.db.models import AuditEntry
from opsbot.runtime import Runtime
from tests.support.hostile import row_counts

WRITER = "writer-token-0123456789abcdef"
READER = "reader-token-0123456789abcdef"
CONFIG = f"""
api_tokens:
  reader: {{scopes: [read], sha256: "{hashlib.sha256(READER.encode()).hexdigest()}"}}
  ops: {{scopes: [read, write], sha256: "{hashlib.sha256(WRITER.encode()).hexdigest()}"}}
"""
NEW_RULES = """rules:
  - match: {source: aws.guardduty}
    priority: P1
heartbeats:
  - name: watchdog
    match: {source: cron, resource: canary}
    every: 5m
"""


@pytest.fixture
def served(
    settings: Settings, config_path: Path, make_app: Callable[[Settings], Flask]
) -> tuple[Flask, Runtime]:
    config_path.write_text(CONFIG)
    app = make_app(settings)
    return app, app.extensions["opsbot"]


def reload(app: Flask, token: str | None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = app.test_client().post("/-/reload", headers=headers)
    return response.status_code, response.get_json()


def test_a_valid_file_is_swapped_in_and_audited(
    served: tuple[Flask, Runtime], config_path: Path
) -> None:
    app, rt = served
    assert rt.policy.rules == ()
    config_path.write_text(CONFIG + NEW_RULES)

    status, body = reload(app, WRITER)

    assert status == 200, body
    assert (body["reloaded"], body["rules"], body["workers"]) == (True, 1, "this process")
    assert rt.policy.rules[0].priority == "P1"
    assert [s.id for s in rt.policy.silences] == ["heartbeat:watchdog"]  # heartbeats follow
    with rt.sessions() as session:
        entry = session.execute(select(AuditEntry)).scalar_one()
    assert (entry.actor, entry.action) == ("api:ops", "config.reloaded")


def test_an_invalid_file_is_refused_with_its_lines_and_the_old_one_stays(
    served: tuple[Flask, Runtime], config_path: Path
) -> None:
    app, rt = served
    before, counts = rt.policy, row_counts(rt)
    config_path.write_text(CONFIG + "rules:\n  - match: {sauce: x}\n    priority: P9\n")

    status, body = reload(app, WRITER)

    assert status == 422
    assert body["error"] == "invalid_configuration"
    assert f"{config_path}:6: rules[0].match.sauce: unknown key" in body["detail"]
    assert f"{config_path}:7: rules[0].priority: 'P9' is not one of" in body["detail"]
    assert rt.policy is before
    assert row_counts(rt) == counts  # refused: nothing stored


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("wrong" * 6, 401), (READER, 403)])
def test_reload_needs_the_write_scope(
    served: tuple[Flask, Runtime], config_path: Path, token: str | None, status: int
) -> None:
    app, rt = served
    before = rt.policy
    config_path.write_text(CONFIG + NEW_RULES)
    code, body = reload(app, token)
    assert code == status and "error" in body
    assert rt.policy is before
