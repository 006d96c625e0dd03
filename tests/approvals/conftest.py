"""Fixtures for the approval tests: the CodePipeline stand-in, the fake Slack, an app on both."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from opsbot.config import Settings
from tests.fakes.codepipeline_api import CodePipelineServer, FakeCodePipeline
from tests.fakes.slack_api import FakeSlack, serve
from tests.support.slack import slack_settings

PROD = "111122223333"
NONPROD = "222233334444"
CONFIG = f"""
accounts:
  "{PROD}": {{name: prod-web, environment: prod, role_arn: "arn:aws:iam::{PROD}:role/opsbot"}}
  "{NONPROD}": {{name: stage-web, environment: nonprod}}
slack:
  roles: {{admin: [U0ADMIN], approver: [U0GROUPIE], operator: [U0OPS]}}
approvals:
  channel: "#ops"
  people: {{jane: U0ADMIN}}
"""


@pytest.fixture
def pipelines(monkeypatch: pytest.MonkeyPatch, aws_env: None) -> Iterator[FakeCodePipeline]:
    fake = FakeCodePipeline()
    server = CodePipelineServer(fake).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_CODEPIPELINE", server.url)
    yield fake
    server.stop()


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with serve(FakeSlack()) as running:
        yield running


@pytest.fixture
def app(
    settings: Settings,
    fake: FakeSlack,
    config_path: Any,
    make_app: Callable[[Settings], Flask],
    pipelines: FakeCodePipeline,
) -> Flask:
    config_path.write_text(CONFIG)
    return make_app(slack_settings(settings, fake))
