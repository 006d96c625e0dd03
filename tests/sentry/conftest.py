"""Fixtures for the Sentry webhook tests: an app with the client secret and a project map."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from pydantic import SecretStr

from opsbot.config import Settings
from tests.support.sentry import CONFIG, SECRET


@pytest.fixture
def app(settings: Settings, make_app: Callable[[Settings], Flask], config_path: Path) -> Flask:
    config_path.write_text(CONFIG)
    return make_app(settings.model_copy(update={"sentry_client_secret": SecretStr(SECRET)}))
