"""schemathesis against the app (WSGI), with a token of each scope: never a 5xx, every status
documented, every body as the document says.

Bounded for CI: ``EXAMPLES`` per operation and generation mode (positive and negative); a long
run by hand with ``OPSBOT_FUZZ_EXAMPLES=1000 pytest tests/web/test_schemathesis.py``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from opsbot.db import store
from opsbot.db.session import transaction
from opsbot.incidents import actions
from tests.support.runbooks import CONFIG
from tests.support.sns import alarm_message, notify
from tests.support.tokens import bearer, install_tokens

EXAMPLES = int(os.environ.get("OPSBOT_FUZZ_EXAMPLES", "15"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# The token used for each scope (tests/support/tokens.py): one scope each.
TOKEN_OF = {"read": "reader", "write": "writer", "events": "feeder"}

pytestmark = pytest.mark.timeout(max(120, EXAMPLES * 4))


@pytest.fixture
def app(settings, make_app, config_path, monkeypatch):
    install_tokens(monkeypatch, config_path, CONFIG)
    return make_app(settings)


def seed(client: Any, rt: Any, signer: Any, clock: Any) -> None:
    """Give ids 1 and 2 something to find: incidents, a silence, a dead outbox row."""
    for name in ("High-CPU", "Disk-Full"):
        clock.advance(seconds=1)
        assert notify(client, signer, clock, alarm_message(name=name)).status_code == 200
    with transaction(rt.sessions) as s:
        actions.create_silence(s, {"alarm_name": "Test-*"}, ends_at=clock.now + timedelta(days=1),
                               reason="lab", actor="seed", now=clock.now)  # fmt: skip
        store.insert_outbox(s, [{
            "target": "jira", "kind": "comment", "incident_id": 1, "payload": {"text": "x"},
            "coalesce_key": None, "state": "dead", "attempts": 3, "due_at": clock.now,
            "locked_until": None, "last_error": "HTTP 500", "created_at": clock.now,
            "updated_at": clock.now,
        }])  # fmt: skip


def fuzz(operation: Any, mode: GenerationMode, headers: dict[str, str], **fixed: Any) -> None:
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


@pytest.mark.parametrize("scope", sorted(TOKEN_OF))
def test_the_api_keeps_its_document(app, client, rt, signer, clock, scope) -> None:
    seed(client, rt, signer, clock)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    fuzzed = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.definition.raw.get("x-opsbot-scope", "read") != scope:
            continue
        headers = bearer(TOKEN_OF[scope])
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode, headers)
        names = [p.name for p in operation.path_parameters]
        if names:  # and at the seeded rows, so the bodies reach the actions themselves
            fuzz(
                operation, GenerationMode.POSITIVE, headers, path_parameters=dict.fromkeys(names, 1)
            )
        fuzzed.append(operation.label)
    assert fuzzed, scope
