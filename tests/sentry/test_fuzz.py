"""Hostile input to POST /sentry/webhook (the property of tests/fuzz, with its settings profile):
signed or unsigned garbage is never a 5xx, never a traceback, and a 4xx stores nothing."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import TIMEOUT_SECONDS  # registers the "opsbot-fuzz" profile
from tests.fuzz.strategies import JSON, TEXT, mutated
from tests.support.hostile import row_counts
from tests.support.sentry import load, signature

FUZZ = settings.get_profile("opsbot-fuzz")
RESOURCES = st.sampled_from(["issue", "event_alert", "metric_alert", "installation", ""])
BODIES = st.one_of(
    mutated(load("issue-created-sentrydocs.json")),
    mutated(load("metric-alert-resolved-sentrydocs.json")),
    JSON,
).map(json.dumps)


def header_text(value: str) -> str:
    # A header cannot carry a line break or non-Latin-1: the HTTP client refuses to send one.
    text = value.encode("utf-8", "replace").decode("latin-1")
    return text.replace("\n", " ").replace("\r", " ")


@pytest.mark.timeout(TIMEOUT_SECONDS)
@FUZZ
@given(
    body=BODIES,
    resource=st.one_of(RESOURCES, TEXT),
    forged=st.one_of(st.none(), TEXT),
)
def test_sentry_webhook_signed_and_unsigned(
    client: Any, rt: Any, caplog: pytest.LogCaptureFixture, body: str, resource: str, forged: Any
) -> None:
    raw = body.encode("utf-8", "surrogatepass")
    headers = {"Sentry-Hook-Resource": header_text(resource)}
    headers["Sentry-Hook-Signature"] = signature(raw) if forged is None else header_text(forged)
    before = row_counts(rt)
    caplog.clear()

    response = client.post("/sentry/webhook", data=raw, headers=headers)

    answer = response.get_data(as_text=True)
    assert response.status_code < 500, (response.status_code, answer[:500])
    assert "Traceback" not in answer
    if response.status_code >= 400:
        assert response.is_json and "error" in response.get_json()
        assert row_counts(rt) == before, (response.status_code, answer[:300])
    if forged is not None:
        assert response.status_code == 401
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors[0].getMessage()
