"""Fixtures for the Jira tests: the fake Jira and an app whose Jira points at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from opsbot.config import Settings
from tests.fakes.jira_api import FakeJira, serve
from tests.support.clock import Clock
from tests.support.jira import jira_settings, write_config


@pytest.fixture
def fake(request: pytest.FixtureRequest, clock: Clock) -> Iterator[FakeJira]:
    """Serve a fake Jira: Cloud, unless parametrized indirectly with ``cloud=False``.

    A module that sets ``FAKE_JIRA_ON_TEST_CLOCK = True`` gets a fake whose own
    clock (outages, rate windows, search lag) is the test clock.
    """
    jira = FakeJira(cloud=getattr(request, "param", True))
    if getattr(request.module, "FAKE_JIRA_ON_TEST_CLOCK", False):
        jira.clock = lambda: clock.now.timestamp()
    with serve(jira) as served:
        yield served


@pytest.fixture
def app(
    settings: Settings, fake: FakeJira, make_app: Callable[[Settings], Flask], config_path: Path
) -> Flask:
    write_config(config_path)
    return make_app(jira_settings(settings, fake))
