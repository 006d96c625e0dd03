"""gunicorn, embedded: ``opsbot serve`` (web only) and ``opsbot run`` (web + worker)."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from opsbot.app import create_app
from opsbot.worker import Worker


class Server(BaseApplication):  # type: ignore[misc]
    """A gunicorn application whose workers each build the app with ``create_app``."""

    def __init__(self, options: dict[str, Any], *, with_worker: bool = False) -> None:
        self.options = options
        self.with_worker = with_worker
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        if self.with_worker:
            self.cfg.set("post_worker_init", _start_background)
            self.cfg.set("worker_exit", _stop_background)

    def load(self) -> Any:
        return create_app()


_background: Worker | None = None


def _start_background(worker: Any) -> None:
    global _background
    app = worker.wsgi
    _background = Worker(app.extensions["opsbot"])
    _background.start()


def _stop_background(_server: Any, _worker: Any) -> None:
    if _background is not None:
        _background.stop()
