"""Shared fixtures: a real database per test (SQLite, or PostgreSQL when
``OPSBOT_TEST_DATABASE_URL`` names one), the app, a controllable clock, a
local SNS signer whose certificate the app pins, and the AWS stand-ins (moto,
the SSM stand-in). Helper functions live in ``tests/support/``."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from moto.server import ThreadedMotoServer
from sqlalchemy.engine import make_url

from opsbot.app import create_app
from opsbot.config import Settings
from opsbot.db import migrate
from opsbot.runtime import Runtime
from opsbot.sns.sign import LocalSigner
from tests.fakes.ssm_api import FakeSsm, SsmServer
from tests.support.clock import Clock
from tests.support.db import PG_URL, pg_admin, pg_url

_counter = itertools.count()


def pytest_report_header() -> list[str]:
    if PG_URL:
        return [f"opsbot database: PostgreSQL ({make_url(PG_URL).render_as_string()})"]
    return ["opsbot database: SQLite (set OPSBOT_TEST_DATABASE_URL for PostgreSQL)"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if PG_URL:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: OPSBOT_TEST_DATABASE_URL is unset")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own OPSBOT_* variables out of the tests."""
    for name in list(os.environ):
        if name.startswith("OPSBOT_") and name != "OPSBOT_TEST_DATABASE_URL":
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Migrate one template database per test session."""
    if not PG_URL:
        path = tmp_path_factory.mktemp("template") / "template.db"
        migrate.upgrade(f"sqlite:///{path}")
        yield str(path)
        return
    name = f"opsbot_tmpl_{os.getpid()}"
    pg_admin(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
    migrate.upgrade(pg_url(name))
    yield name
    pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(_template: str, tmp_path: Path) -> Iterator[str]:
    """Return the URL of a fresh, migrated database for this test."""
    if not PG_URL:
        path = tmp_path / "opsbot.db"
        shutil.copyfile(_template, path)
        yield f"sqlite:///{path}"
        return
    name = f"opsbot_t_{os.getpid()}_{next(_counter)}"
    pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{_template}"')
    yield pg_url(name)
    pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """A moto server (AWS stand-in) on 127.0.0.1, shared by the session."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def fake_ssm() -> Iterator[FakeSsm]:
    fake = FakeSsm()
    server = SsmServer(fake).start()
    fake.url = server.url  # type: ignore[attr-defined]
    yield fake
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_url: str, fake_ssm: FakeSsm, tmp_path) -> None:
    """Point boto3 at moto (STS) and the SSM stand-in, with test credentials only."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", fake_ssm.url)  # type: ignore[attr-defined]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 29, 8, 0, tzinfo=UTC))


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """The YAML file the app reads; tests write it before building the app."""
    return tmp_path / "opsbot.yaml"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, config_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        config=config_path,
        data_dir=tmp_path / "data",
    )


@pytest.fixture
def make_app(clock: Clock) -> Iterator[Callable[[Settings], Flask]]:
    """Build apps on the test clock; their connection pools are closed after the test."""
    built: list[Runtime] = []

    def build(settings: Settings) -> Flask:
        application = create_app(settings)
        rt: Runtime = application.extensions["opsbot"]
        rt.clock = clock
        built.append(rt)
        return application

    yield build
    for rt in built:
        rt.engine.dispose()


@pytest.fixture
def app(settings: Settings, make_app: Callable[[Settings], Flask]) -> Flask:
    return make_app(settings)


@pytest.fixture
def rt(app: Flask) -> Runtime:
    runtime: Runtime = app.extensions["opsbot"]
    return runtime


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def signer(settings: Settings) -> LocalSigner:
    return LocalSigner.load_or_create(settings.effective_cert_dir)
