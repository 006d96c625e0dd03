"""The audit export: new audit entries as JSON lines, to a directory or to S3, before any prune.

``OPSBOT_AUDIT_EXPORT`` is a directory (``/var/lib/opsbot/audit``) or
``s3://bucket/prefix``. Each run writes the entries recorded since the last
export, one JSON object a line (``id``, ``at``, ``actor``, ``action``,
``subject_type``, ``subject_id``, ``detail``), as one file named
``audit-<first id>-<last id>-<UTC time>.jsonl`` (unique even when a restored
database hands out ids again), and records it in ``audit_exports``
with its SHA-256 — only then may those entries be pruned. Entries younger
than ``SETTLE`` wait for the next run, so an entry whose transaction commits
late is never skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import boto3
from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from opsbot.db.models import AuditEntry, AuditExport
from opsbot.db.session import transaction

log = logging.getLogger(__name__)

SETTLE = timedelta(minutes=5)


class ExportError(Exception):
    """The audit export could not be written; nothing was recorded, so nothing is pruned."""


def exported_up_to(session: Session) -> int:
    """Return the highest audit id a recorded export covers (0 when none)."""
    return int(
        session.execute(select(func.coalesce(func.max(AuditExport.up_to_id), 0))).scalar_one()
    )


def export_audit(
    factory: sessionmaker[Session], destination: str, now: datetime, *, batch: int
) -> tuple[int, str]:
    """Export the audit entries not exported yet; return how many and where they went."""
    with tempfile.TemporaryDirectory(prefix="opsbot-audit-") as tmp:
        path = Path(tmp) / "export.jsonl"
        with path.open("w", encoding="utf-8") as out:
            first, last, rows, digest = _write_entries(factory, out, now - SETTLE, batch)
        if not rows:
            return 0, destination
        name = f"audit-{first}-{last}-{now.strftime('%Y%m%dT%H%M%SZ')}.jsonl"
        try:
            where = (
                _upload(path, destination, name)
                if destination.startswith("s3://")
                else _copy(path, Path(destination), name)
            )
        except (OSError, Boto3Error, BotoCoreError, ClientError) as exc:
            raise ExportError(f"audit export to {destination} failed: {exc}") from exc
    with transaction(factory) as session:
        session.add(
            AuditExport(
                first_id=first, up_to_id=last, rows=rows, destination=where, sha256=digest,
                exported_at=now,
            )
        )  # fmt: skip
    log.info("audit export: %d entries (ids %d-%d) to %s", rows, first, last, where)
    return rows, where


def _write_entries(
    factory: sessionmaker[Session], out: IO[str], settled: datetime, batch: int
) -> tuple[int, int, int, str]:
    digest = hashlib.sha256()
    first = last = rows = 0
    with transaction(factory) as session:
        after = exported_up_to(session)
    while True:
        with transaction(factory) as session:
            stmt = select(AuditEntry).where(AuditEntry.id > after).order_by(AuditEntry.id)
            entries = list(session.execute(stmt.limit(batch)).scalars())
        for entry in entries:
            if entry.at >= settled:
                return first, last, rows, digest.hexdigest()
            line = json.dumps(_record(entry), sort_keys=True, default=str) + "\n"
            out.write(line)
            digest.update(line.encode("utf-8"))
            first, last, rows = first or entry.id, entry.id, rows + 1
        if len(entries) < batch:
            return first, last, rows, digest.hexdigest()
        after = entries[-1].id


def _record(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "subject_type": entry.subject_type,
        "subject_id": entry.subject_id,
        "detail": entry.detail,
    }


def _copy(path: Path, directory: Path, name: str) -> str:
    """Write the export into the directory atomically (a temporary name, fsync, rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    partial = directory / f".{name}.partial"
    with path.open("rb") as src, partial.open("wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    partial.replace(target)
    return str(target)


def _upload(path: Path, destination: str, name: str) -> str:
    """Upload the export to S3 (multipart when large) and return its s3:// address."""
    bucket, _, prefix = destination[len("s3://") :].partition("/")
    key = f"{prefix.rstrip('/')}/{name}" if prefix.strip("/") else name
    boto3.client("s3").upload_file(
        str(path), bucket, key, ExtraArgs={"ContentType": "application/x-ndjson"}
    )
    return f"s3://{bucket}/{key}"
