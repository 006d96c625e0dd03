"""The composition root of the web: ``build_runtime`` and ``create_app``.

Nothing is built at import time; each domain mounts its routes with ``register(app)``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial
from typing import Any

from flask import Flask

from opsbot import ui, web
from opsbot.checks import check_configuration
from opsbot.config import Settings, load_policy
from opsbot.core.policy import Policy
from opsbot.db.session import make_engine, make_sessionmaker
from opsbot.heartbeats import with_heartbeats
from opsbot.housekeeping import reload as config_reload
from opsbot.incidents.service import stored_silences
from opsbot.intake import events_api, push
from opsbot.intake.sources_config import parse_sources
from opsbot.jira import webhook
from opsbot.runtime import Runtime, StoredSilences
from opsbot.sentry import webhook as sentry_webhook
from opsbot.slack import bolt
from opsbot.telemetry import tracing

log = logging.getLogger(__name__)

# SNS bodies are capped at 512 KiB by the SNS view; this cap protects every route.
MAX_REQUEST_BYTES = 1024 * 1024


def create_app(settings: Settings | None = None) -> Flask:
    """Return the opsbot WSGI application (also gunicorn's factory)."""
    settings = settings or Settings()
    app = Flask("opsbot")
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.extensions["opsbot"] = build_runtime(settings)
    for domain in (web, push, events_api, bolt, webhook, ui, config_reload, sentry_webhook):
        domain.register(app)
    tracing.instrument_app(app)  # a no-op unless this process started tracing
    return app


def build_runtime(settings: Settings) -> Runtime:
    """Return the runtime for the settings: policy loaded, engine built, handlers configured."""
    engine = make_engine(
        settings.database_url,
        connect_timeout=settings.db_connect_timeout,
        statement_timeout=settings.db_statement_timeout,
    )
    tracing.instrument_engine(engine)
    policy = with_heartbeats(load_policy(settings.config))
    return Runtime(
        settings=settings,
        policy=policy,
        engine=engine,
        sessions=make_sessionmaker(engine),
        silences=StoredSilences(stored_silences),
        sources=parse_sources(policy),
        loader=partial(load_configuration, settings),
    )


def load_configuration(settings: Settings) -> tuple[Policy, Mapping[str, Any]]:
    """Validate the configuration as ``opsbot check`` does; return the policy and the sources.

    Raises ConfigError (FILE:LINE messages) when anything is wrong: a reload
    then keeps the configuration it has.
    """
    check_configuration(settings)
    policy = with_heartbeats(load_policy(settings.config))
    return policy, parse_sources(policy)
