"""Shared fixtures: a real database per test (SQLite, or PostgreSQL when
``OPSBOT_TEST_DATABASE_URL`` names one), the app, a controllable clock, and a
local SNS signer whose certificate the app pins."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from moto.server import ThreadedMotoServer
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from opsbot.app import create_app
from opsbot.config import Settings
from opsbot.db import migrate
from opsbot.runtime import Runtime
from opsbot.sns.sign import LocalSigner

PG_URL = os.environ.get("OPSBOT_TEST_DATABASE_URL", "")
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
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
    migrate.upgrade(_pg_url(name))
    yield name
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(_template: str, tmp_path: Path) -> Iterator[str]:
    """Return the URL of a fresh, migrated database for this test."""
    if not PG_URL:
        path = tmp_path / "opsbot.db"
        shutil.copyfile(_template, path)
        yield f"sqlite:///{path}"
        return
    name = f"opsbot_t_{os.getpid()}_{next(_counter)}"
    _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{_template}"')
    yield _pg_url(name)
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_url(database: str) -> str:
    return make_url(PG_URL).set(database=database).render_as_string(hide_password=False)


def _pg_admin(*statements: str) -> None:
    engine = create_engine(
        _pg_url(make_url(PG_URL).database or "postgres"), isolation_level="AUTOCOMMIT"
    )
    with engine.connect() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """A moto server (AWS stand-in) on 127.0.0.1, shared by the session."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


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


TOPIC = "arn:aws:sns:us-east-1:111122223333:opsbot-alarms"
FIXTURES = Path(__file__).parent / "fixtures"


def alarm_message(
    name: str = "High-CPU",
    state: str = "ALARM",
    *,
    old: str = "OK",
    account: str = "111122223333",
    region: str = "us-east-1",
    when: datetime | None = None,
    description: str = "",
) -> str:
    """Return a CloudWatch alarm notification as SNS carries it (the documented shape)."""
    stamp = (when or datetime(2026, 11, 29, 8, 0, tzinfo=UTC)).strftime(
        "%Y-%m-%dT%H:%M:%S.000+0000"
    )
    return json.dumps(
        {
            "AlarmName": name,
            "AlarmDescription": description or None,
            "AWSAccountId": account,
            "AlarmConfigurationUpdatedTimestamp": "2026-11-01T10:00:00.000+0000",
            "NewStateValue": state,
            "NewStateReason": f"Threshold Crossed: 1 datapoint [91.0] was {state}",
            "StateChangeTime": stamp,
            "Region": "US East (N. Virginia)" if region == "us-east-1" else "EU (Ireland)",
            "AlarmArn": f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
            "OldStateValue": old,
            "OKActions": [],
            "AlarmActions": [f"arn:aws:sns:{region}:{account}:opsbot-alarms"],
            "InsufficientDataActions": [],
            "Trigger": {
                "MetricName": "CPUUtilization",
                "Namespace": "AWS/EC2",
                "StatisticType": "Statistic",
                "Statistic": "AVERAGE",
                "Unit": None,
                "Dimensions": [{"value": "i-0123456789abcdef0", "name": "InstanceId"}],
                "Period": 300,
                "EvaluationPeriods": 1,
                "ComparisonOperator": "GreaterThanThreshold",
                "Threshold": 80.0,
                "TreatMissingData": "missing",
            },
        }
    )


def post_sns(client: FlaskClient, envelope: dict[str, Any]) -> Any:
    """POST an SNS envelope the way SNS does: text/plain, no JSON content type."""
    return client.post(
        "/sns",
        data=json.dumps(envelope),
        headers={"Content-Type": "text/plain; charset=UTF-8"},
    )


def notify(
    client: FlaskClient,
    signer: LocalSigner,
    clock: Clock,
    message: str,
    *,
    message_id: str | None = None,
    topic: str = TOPIC,
) -> Any:
    """Sign a notification stamped with the test clock and POST it."""
    envelope = signer.notification(
        message, topic_arn=topic, message_id=message_id or str(uuid.uuid4()), timestamp=clock.now
    )
    return post_sns(client, envelope)
