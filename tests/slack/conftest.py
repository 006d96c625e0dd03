"""Fixtures for the Slack tests: the fake workspace and an app wired to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from opsbot.config import Settings
from opsbot.runtime import Runtime
from tests.fakes.slack_api import FakeSlack, serve
from tests.support.slack import ROLES_YAML, slack_settings


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with serve(FakeSlack()) as running:
        yield running


@pytest.fixture
def slack_app(
    settings: Settings, fake: FakeSlack, config_path: Any, make_app: Callable[[Settings], Flask]
) -> Flask:
    if not config_path.exists():
        config_path.write_text(ROLES_YAML)
    return make_app(slack_settings(settings, fake))


@pytest.fixture
def srt(slack_app: Flask) -> Runtime:
    runtime: Runtime = slack_app.extensions["opsbot"]
    return runtime


@pytest.fixture
def sclient(slack_app: Flask) -> FlaskClient:
    return slack_app.test_client()
