"""The test database: SQLite, or PostgreSQL when ``OPSBOT_TEST_DATABASE_URL`` names one."""

from __future__ import annotations

import os

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("OPSBOT_TEST_DATABASE_URL", "")


def pg_url(database: str) -> str:
    """Return the PostgreSQL URL of ``database`` on the test server."""
    return make_url(PG_URL).set(database=database).render_as_string(hide_password=False)


def pg_admin(*statements: str) -> None:
    """Run statements (CREATE/DROP DATABASE) outside a transaction on the test server."""
    engine = create_engine(
        pg_url(make_url(PG_URL).database or "postgres"), isolation_level="AUTOCOMMIT"
    )
    with engine.connect() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()
