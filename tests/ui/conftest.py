"""Fixtures for the dashboard tests: a seeded app served over real HTTP, and one headless Chromium.

The browser tests of a module share one database, one server and one
browser (module scope): the dashboard only reads, so one seed serves them all.
Screenshots go to ``tests-artifacts/ui/<database>/`` (or ``$OPSBOT_UI_ARTIFACTS``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from pydantic import SecretStr
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from werkzeug.serving import make_server

from opsbot.app import create_app
from opsbot.config import Settings
from opsbot.runtime import Runtime
from opsbot.sns.sign import LocalSigner
from tests.support.clock import Clock
from tests.support.db import PG_URL, pg_admin, pg_url
from tests.ui.seed import CONFIG, TOKEN, Seeded, seed

ROOT = Path(__file__).parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# What this machine's closed network needs: no sandbox (root), no GPU, no calls home.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


@pytest.fixture
def ui_settings(settings: Settings, config_path: Path) -> Settings:
    """The test settings with the seed's configuration and an API token (every scope)."""
    config_path.write_text(CONFIG)
    return Settings(**(settings.model_dump() | {"api_token": SecretStr(TOKEN)}))


@pytest.fixture
def ui_app(ui_settings: Settings, make_app: Callable[[Settings], Flask]) -> Flask:
    return make_app(ui_settings)


@pytest.fixture(scope="module")
def module_database(
    _template: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    """Return a fresh, migrated database for one test module."""
    if not PG_URL:
        path = tmp_path_factory.mktemp("uidb") / "opsbot.db"
        shutil.copyfile(_template, path)
        yield f"sqlite:///{path}"
        return
    name = f"opsbot_ui_{os.getpid()}_{request.module.__name__.rsplit('.', 1)[-1]}"
    pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{_template}"')
    yield pg_url(name)
    pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Served:
    """A seeded opsbot answering on a real port."""

    url: str
    rt: Runtime
    seeded: Seeded
    clock: Clock


@pytest.fixture(scope="module")
def served(module_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Seed an app through its own endpoints and serve it over HTTP (a werkzeug thread)."""
    base = tmp_path_factory.mktemp("uiapp")
    config = base / "opsbot.yaml"
    config.write_text(CONFIG)
    settings = Settings(
        database_url=module_database,
        config=config,
        data_dir=base / "data",
        api_token=SecretStr(TOKEN),
    )
    app = create_app(settings)
    rt: Runtime = app.extensions["opsbot"]
    clock = Clock(datetime(2026, 11, 29, 8, 0, tzinfo=UTC))
    rt.clock = clock
    signer = LocalSigner.load_or_create(settings.effective_cert_dir)
    seeded = seed(rt, app.test_client(), signer, clock, extra_alarms=5)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_port}", rt, seeded, clock)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        rt.engine.dispose()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    """Return (and print) where this run's screenshots go."""
    database = "postgresql" if PG_URL else "sqlite"
    root = Path(os.environ.get("OPSBOT_UI_ARTIFACTS") or ROOT / "tests-artifacts" / "ui")
    path = root / database
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {path}")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium (Debian's, driven by Debian's chromedriver) for the module."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        message = "needs Debian's chromium and chromium-driver (scripts/test installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    profile = tempfile.mkdtemp(prefix="opsbot-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
