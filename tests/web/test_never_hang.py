"""A sick database never hangs opsbot (issue 15): with a table locked by another connection, a
request waits at most the statement timeout and answers 503; /healthz does not touch the
database; a connection the server dropped is replaced (pre-ping), not answered with a 503."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from opsbot.config import Settings
from opsbot.db.session import make_engine, postgres_timeouts
from tests.support.hostile import row_counts
from tests.support.sns import alarm_message, notify
from tests.support.stalled import FreezableProxy


@contextmanager
def database_locked(url: str) -> Iterator[None]:
    """Hold a lock on the incidents table from another connection until the block ends."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(make_url(url).database or "", isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")  # no reader or writer gets past this
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = create_engine(url)
    with engine.connect() as conn:
        conn.execute(text("LOCK TABLE incidents, deliveries IN ACCESS EXCLUSIVE MODE"))
        try:
            yield
        finally:
            conn.rollback()
    engine.dispose()


def test_the_default_timeouts_are_a_few_seconds() -> None:
    settings = Settings()
    assert settings.db_connect_timeout == 5 and settings.db_statement_timeout == 5
    options = postgres_timeouts(5, 5)
    assert "statement_timeout=5000" in options["options"]
    assert "lock_timeout=5000" in options["options"]
    assert options["connect_timeout"] == 5


def test_a_locked_database_answers_503_and_healthz_stays_up(
    client, signer, clock, rt, database_url
) -> None:
    assert notify(client, signer, clock, alarm_message()).status_code == 200
    before = row_counts(rt)
    with database_locked(database_url):
        assert client.get("/healthz").status_code == 200
        listed = client.get("/api/incidents")
        assert listed.status_code == 503 and listed.get_json()["error"] == "database_unavailable"
        pushed = notify(client, signer, clock, alarm_message("Other"))
        assert pushed.status_code == 503  # SNS delivers it again later
        assert client.get("/healthz").status_code == 200
    assert row_counts(rt) == before
    assert client.get("/api/incidents").status_code == 200  # recovered at once


@pytest.mark.postgres
def test_connections_the_server_dropped_are_replaced_not_503(client, signer, clock, rt) -> None:
    assert client.get("/api/incidents").status_code == 200  # a pooled connection exists
    with rt.engine.connect() as conn:
        name = conn.execute(text("SELECT current_database()")).scalar()
    admin = create_engine(rt.engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )
    admin.dispose()
    assert client.get("/api/incidents").status_code == 200


def test_the_engine_is_built_with_pre_ping_and_a_pool_timeout(database_url) -> None:
    engine = make_engine(database_url, connect_timeout=3, statement_timeout=2)
    try:
        if engine.dialect.name == "postgresql":
            assert engine.pool._pre_ping  # type: ignore[attr-defined]
            assert engine.pool._timeout == 3  # type: ignore[attr-defined]
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_frozen_database_costs_a_request_the_timeouts_and_a_503(
    settings, make_app, signer, clock, database_url
) -> None:
    url = make_url(database_url)
    proxy = FreezableProxy(url.host or "127.0.0.1", url.port or 5432)
    try:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        app = make_app(settings.model_copy(update={"database_url": proxied}))
        client = app.test_client()
        assert notify(client, signer, clock, alarm_message()).status_code == 200
        proxy.frozen.set()  # the server answers nothing from now on
        assert client.get("/healthz").status_code == 200
        answer = client.get("/api/incidents")  # waits the defaults (5 s + 5 s), then gives up
        assert answer.status_code == 503 and answer.get_json()["error"] == "database_unavailable"
        proxy.frozen.clear()
        assert client.get("/api/incidents").status_code == 200  # a fresh connection serves it
    finally:
        proxy.close()
