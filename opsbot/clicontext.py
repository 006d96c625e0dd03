"""What every ``opsbot`` command group shares: the error that exits, and ``ctx.obj``.

Command groups of the domains (``opsbot runbooks``, ``opsbot patch``) read
settings and the runtime from click's context object instead of importing
the command line or the composition roots.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

import click

from opsbot.config import Settings, load_settings
from opsbot.runtime import Runtime


class CliError(click.ClickException):
    """A precise error: printed as ``opsbot: error: …``, exit status 2."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"opsbot: error: {self.format_message()}", err=True, file=file)


class CliContext:
    """Settings and runtime for the commands, each made on first use (``ctx.obj``)."""

    def __init__(self, build_runtime: Callable[[Settings], Runtime]) -> None:
        self._build_runtime = build_runtime
        self._settings: Settings | None = None
        self._runtime: Runtime | None = None

    @property
    def settings(self) -> Settings:
        """Return the settings; raise ConfigError when a variable is wrong."""
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    def runtime(self) -> Runtime:
        """Return the runtime (database engine and policy), built once."""
        if self._runtime is None:
            self._runtime = self._build_runtime(self.settings)
        return self._runtime

    def close(self) -> None:
        """Close the runtime's database connections."""
        if self._runtime is not None:
            self._runtime.engine.dispose()
