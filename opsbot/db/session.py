"""Engines and sessions: SQLite in WAL mode (embedded default), pooled PostgreSQL (scale-out)."""

from __future__ import annotations

import logging
import math
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)


DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_STATEMENT_TIMEOUT = 5.0


def make_engine(
    url: str,
    *,
    pool_size: int = 5,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
) -> Engine:
    """Return an engine for the URL, tuned for its backend, that never waits without bound."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, statement_timeout)
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        # A connection the server dropped (restart, failover) is replaced, not handed out.
        pool_pre_ping=True,
        pool_timeout=connect_timeout,
        connect_args=postgres_timeouts(connect_timeout, statement_timeout),
    )
    _bound_connections(engine, statement_timeout + connect_timeout)
    _recipes[engine] = (url, connect_timeout, statement_timeout)
    return engine


def _bound_connections(engine: Engine, limit: float) -> None:
    bounded = _bounded_connection_class(limit)

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        return bounded.connect(*cargs, **cparams)


# How each PostgreSQL engine was made, so its one-statement companion can be made alike.
_recipes: weakref.WeakKeyDictionary[Engine, tuple[str, float, float]] = weakref.WeakKeyDictionary()
_companions: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
_companions_lock = threading.Lock()


def statement_engine(engine: Engine) -> Engine | None:
    """Return the PostgreSQL engine's companion for one-statement transactions, or None.

    Its connections autocommit, so a statement is its own transaction: one
    round trip, with no BEGIN before it and no COMMIT after it, and any row
    lock it takes is held for that statement and its commit only. It does not
    ping on checkout (a ping is a round trip): a connection the server dropped
    fails its statement with ``connection_invalidated`` and the caller retries
    once on a fresh one, which is safe for statements that are idempotent as a
    whole. Disposed with its engine.
    """
    with _companions_lock:
        companion = _companions.get(engine)
        recipe = _recipes.get(engine)
        if companion is not None or recipe is None:
            return companion
        url, connect_timeout, statement_timeout = recipe
        companion = create_engine(  # sized like the engine: each thread keeps its connection
            url,
            pool_size=5,
            max_overflow=5,
            pool_recycle=1800,
            pool_timeout=connect_timeout,
            isolation_level="AUTOCOMMIT",
            connect_args=postgres_timeouts(connect_timeout, statement_timeout),
        )
        _bound_connections(companion, statement_timeout + connect_timeout)
        _companions[engine] = companion
        event.listen(engine, "engine_disposed", lambda _conn: companion.dispose())
        return companion


def _bounded_connection_class(limit: float) -> Any:
    """Return a psycopg connection class whose every wait on the server ends after ``limit`` s."""
    import psycopg  # here: SQLite-only installs never load the PostgreSQL driver

    class BoundedConnection(psycopg.Connection):  # type: ignore[type-arg]
        # The server-side timeouts need a server that runs: a frozen one (stopped process,
        # a network path that swallows packets) answers nothing, so the client stops waiting.
        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            try:
                return super().wait(
                    gen, interval=interval, timeout=limit if timeout is None else timeout
                )
            except psycopg.OperationalError:
                if timeout is None and not self.closed:
                    self.pgconn.finish()  # mid-query: unusable; the pool discards it
                raise

    return BoundedConnection


def postgres_timeouts(connect_timeout: float, statement_timeout: float) -> dict[str, Any]:
    """Return the libpq settings that bound connecting, each statement and each lock wait."""
    millis = max(1, int(statement_timeout * 1000))
    return {
        # libpq reads whole seconds and treats values under 2 as 2.
        "connect_timeout": max(2, math.ceil(connect_timeout)),
        "options": f"-c statement_timeout={millis} -c lock_timeout={millis}",
        # A peer that vanished without a FIN: unacknowledged data fails the socket in time.
        "tcp_user_timeout": max(1000, int((connect_timeout + statement_timeout) * 1000)),
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }


def normalise_url(url: str) -> str:
    """Return the URL with psycopg 3 as the PostgreSQL driver when none is named."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_engine(url: str, statement_timeout: float) -> Engine:
    # SQLite's only wait is for another writer's lock: bounded by the statement timeout.
    busy_ms = max(1, int(statement_timeout * 1000))
    engine = create_engine(
        url, connect_args={"timeout": statement_timeout, "check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event own BEGIN: pysqlite's own handling
        # would start deferred transactions that fail to upgrade under load.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Return the session factory every service uses."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Open a session in one transaction: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


def is_postgres(session: Session) -> bool:
    """Return True when the session talks to PostgreSQL."""
    return session.get_bind().dialect.name == "postgresql"
