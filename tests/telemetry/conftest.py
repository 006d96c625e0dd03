"""Fixtures for the telemetry tests: traces into an in-memory exporter, an app whose Jira and
Slack are the stand-ins, and a fake Sentry ingest endpoint."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from opsbot.config import Settings
from opsbot.telemetry import errors, tracing
from tests.fakes import jira_api, slack_api
from tests.support.jira import jira_settings, write_config
from tests.support.slack import slack_settings
from tests.telemetry.fake_sentry import FakeSentry


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Trace this test's work into memory (the process's tracing is stopped after it)."""
    exporter = InMemorySpanExporter()
    assert tracing.start(exporter)
    yield exporter
    tracing.stop()


@pytest.fixture
def fake_jira() -> Iterator[jira_api.FakeJira]:
    with jira_api.serve(jira_api.FakeJira()) as served:
        yield served


@pytest.fixture
def fake_slack() -> Iterator[slack_api.FakeSlack]:
    with slack_api.serve(slack_api.FakeSlack()) as served:
        yield served


@pytest.fixture
def integrated(
    settings: Settings,
    config_path: Path,
    make_app: Callable[[Settings], Flask],
    fake_jira: jira_api.FakeJira,
    fake_slack: slack_api.FakeSlack,
) -> Callable[[], Flask]:
    """Build (after tracing or Sentry started) an app with Jira and Slack at their stand-ins."""
    write_config(config_path)
    combined = slack_settings(jira_settings(settings, fake_jira), fake_slack)
    return lambda: make_app(combined)


@pytest.fixture
def sentry() -> Iterator[FakeSentry]:
    with FakeSentry() as fake:
        yield fake
    errors.stop()
