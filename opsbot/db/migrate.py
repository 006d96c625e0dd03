"""Alembic, driven from code: ``opsbot db upgrade|current|history`` and the check of ``/readyz``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from opsbot.db.session import make_engine


def alembic_config(url: str) -> Config:
    """Return an Alembic config for the bundled migrations and the given database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("opsbot.migrations")))
    cfg.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d_%%(rev)s_%%(slug)s")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply every migration up to the revision."""
    command.upgrade(alembic_config(url), revision)


@cache
def head_revision(url: str = "sqlite://") -> str | None:
    """Return the newest revision that the bundled migrations define (read once)."""
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """Return the revision the database is at, or None when it was never migrated."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@dataclass(frozen=True)
class Revision:
    """One bundled migration: its id, the one it follows, its one-line description."""

    revision: str
    down_revision: str | None
    doc: str
    is_head: bool


def history(url: str = "sqlite://") -> list[Revision]:
    """Return the bundled migrations, newest first."""
    script = ScriptDirectory.from_config(alembic_config(url))
    found = []
    for rev in script.walk_revisions():
        down = rev.down_revision
        found.append(
            Revision(
                rev.revision,
                down if isinstance(down, str) or down is None else ",".join(down),
                (rev.doc or "").strip().splitlines()[0] if rev.doc else "",
                rev.is_head,
            )
        )
    return found


def current(url: str) -> str | None:
    """Return the revision the database at the URL is at, or None when it was never migrated."""
    engine = make_engine(url)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()
