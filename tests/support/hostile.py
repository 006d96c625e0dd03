"""Helpers for the hostile-input tests: what the database holds, and what a refusal may say."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from opsbot.db.models import Base
from opsbot.runtime import Runtime


def row_counts(rt: Runtime) -> dict[str, int]:
    """Return the number of rows in every table, to show a refused request wrote nothing."""
    with rt.engine.connect() as conn:
        return {
            table.name: int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)
            for table in Base.metadata.sorted_tables
        }


def assert_refused(response: Any, before: dict[str, int], rt: Runtime) -> None:
    """Assert a JSON 4xx without a traceback, and that nothing was stored."""
    body = response.get_data(as_text=True)
    assert 400 <= response.status_code < 500, (response.status_code, body[:300])
    assert "Traceback" not in body
    assert response.is_json and "error" in response.get_json(), body[:300]
    assert row_counts(rt) == before
