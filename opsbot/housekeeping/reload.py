"""``POST /-/reload``: validate the configuration file again and swap it in (write scope).

An invalid file is refused with its FILE:LINE problems (422) and the running
configuration stays. Under gunicorn the master is then sent SIGHUP, so every
worker is replaced with the new configuration, as ``kill -HUP`` does (the
master validates again before it replaces any: see ``opsbot.server``).
"""

from __future__ import annotations

import logging
import os
import signal

from flask import Blueprint, Flask, Response, jsonify, request

from opsbot.audit import audit
from opsbot.config import ConfigError
from opsbot.db.session import transaction
from opsbot.web import ApiError, authenticate, runtime

log = logging.getLogger(__name__)

bp = Blueprint("reload", __name__)


@bp.post("/-/reload")
def reload_configuration() -> tuple[Response, int]:
    """Reload the YAML configuration: 200 with the new counts, 422 with its problems."""
    principal = authenticate(request, "write")
    rt = runtime()
    try:
        policy = rt.reload()
    except ConfigError as exc:
        log.warning(
            "configuration reload refused (%s): %d problems", principal.actor, len(exc.errors)
        )
        raise ApiError(
            "invalid_configuration",
            "The configuration was not reloaded: " + "; ".join(exc.errors[:20]),
            422,
        ) from None
    with transaction(rt.sessions) as session:
        audit(
            session, actor=principal.actor, action="config.reloaded",
            subject=("config", str(rt.settings.config)[:64]), now=rt.clock(),
        )  # fmt: skip
    restarting = str(request.environ.get("SERVER_SOFTWARE", "")).startswith("gunicorn")
    if restarting:
        os.kill(os.getppid(), signal.SIGHUP)
    log.info("configuration reloaded by %s from %s", principal.actor, rt.settings.config)
    body = {
        "reloaded": True,
        "config": str(rt.settings.config),
        "accounts": len(policy.accounts),
        "rules": len(policy.rules),
        "silences": len(policy.silences),
        "workers": "restarting" if restarting else "this process",
    }
    return jsonify(body), 200


def register(app: Flask) -> None:
    """Mount ``POST /-/reload``."""
    app.register_blueprint(bp)
