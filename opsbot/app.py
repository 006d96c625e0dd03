"""The composition root: ``create_app`` wires settings, database, verifier and routes."""

from __future__ import annotations

import logging

from flask import Flask

from opsbot.config import Settings, load_policy
from opsbot.db.session import make_engine, make_sessionmaker
from opsbot.intake import events_api, sources_config
from opsbot.intake import push as web
from opsbot.jira import webhook as jira_webhook
from opsbot.runtime import Runtime
from opsbot.slack import bolt as slack_app
from opsbot.sns import verify as sns
from opsbot.web import api, errors

log = logging.getLogger(__name__)

# SNS bodies are capped at 512 KiB by the SNS view; this cap protects every route.
MAX_REQUEST_BYTES = 1024 * 1024


def create_app(settings: Settings | None = None) -> Flask:
    """Return the opsbot WSGI application (also gunicorn's factory)."""
    settings = settings or Settings()
    app = Flask("opsbot")
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.extensions["opsbot"] = build_runtime(settings)
    sources_config.install(app.extensions["opsbot"].policy)
    errors.register(app)
    web.register(app)
    api.register(app)
    events_api.register(app)
    slack_app.register(app, app.extensions["opsbot"])
    jira_webhook.register(app)
    return app


def build_runtime(settings: Settings) -> Runtime:
    """Return the runtime for the settings: policy loaded, engine and verifier built."""
    engine = make_engine(settings.database_url)
    return Runtime(
        settings=settings,
        policy=load_policy(settings.config),
        engine=engine,
        sessions=make_sessionmaker(engine),
        certs=sns.CertificateStore(settings.effective_cert_dir),
    )
