"""A bare model of opsbot's ingest hot path, the yardstick of ``bench/ingest.py``.

Flask under gunicorn (sync workers): parse the SNS envelope, verify its RSA
signature against a pinned certificate, parse the CloudWatch alarm, and do one
SQLAlchemy Core upsert of an incident row. Nothing else: no delivery record,
no alert row, no outbox, no audit, no lifecycle. It is what the same framework
and database cost when a delivery is one statement.

Run by ``bench/ingest.py``; by hand:
    MODEL_DATABASE_URL=postgresql+psycopg://... MODEL_CERT_DIR=... \\
        .venv/bin/gunicorn -w 2 -b 127.0.0.1:8090 'bench.model:create_app()'
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from flask import Flask, jsonify, request
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
)
from sqlalchemy.dialects.postgresql import insert

metadata = MetaData()
model_incidents = Table(
    "model_incidents",
    metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("title", String(512), nullable=False),
    Column("count", Integer, nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
)

# The string-to-sign of an SNS Notification: these keys, in this order, when present.
NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


def string_to_sign(fields: dict[str, Any]) -> bytes:
    """Return the bytes SNS signed for a Notification."""
    parts = []
    for key in NOTIFICATION_KEYS:
        if key in fields:
            parts.append(f"{key}\n{fields[key]}\n")
    return "".join(parts).encode()


def create_app() -> Flask:
    """Return the model app: one route, ``POST /sns``."""
    engine = create_engine(os.environ["MODEL_DATABASE_URL"], pool_size=2)
    cert_dir = Path(os.environ["MODEL_CERT_DIR"])
    certs: dict[str, Any] = {}
    stmt = insert(model_incidents)
    upsert = stmt.on_conflict_do_update(
        index_elements=["fingerprint"],
        set_={"count": model_incidents.c.count + 1, "last_seen": stmt.excluded.last_seen},
    )
    app = Flask("model")

    def public_key(url: str) -> Any:
        name = url.rsplit("/", 1)[-1]
        if name not in certs:
            pem = (cert_dir / name).read_bytes()
            certs[name] = x509.load_pem_x509_certificate(pem).public_key()
        return certs[name]

    @app.post("/sns")
    def sns() -> Any:
        fields = json.loads(request.get_data(cache=False))
        signature = base64.b64decode(fields["Signature"])
        public_key(fields["SigningCertURL"]).verify(
            signature,
            string_to_sign(fields),
            padding.PKCS1v15(),
            HASHES[fields["SignatureVersion"]](),
        )
        alarm = json.loads(fields["Message"])
        key = f"{alarm['AWSAccountId']}:{alarm['AlarmArn']}"
        now = datetime.now(UTC)
        with engine.begin() as conn:
            conn.execute(
                upsert,
                {
                    "fingerprint": hashlib.sha256(key.encode()).hexdigest()[:32],
                    "title": alarm["AlarmName"],
                    "count": 1,
                    "first_seen": now,
                    "last_seen": now,
                },
            )
        return jsonify(status="recorded")

    return app


def create_schema(url: str) -> None:
    """Create the model's one table."""
    engine = create_engine(url)
    metadata.create_all(engine)
    engine.dispose()
