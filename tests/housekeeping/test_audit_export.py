"""The audit trail survives pruning: exported first (a directory, or S3 through moto), and the
database itself refuses to delete an entry no recorded export covers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner
from sqlalchemy import delete, func, select
from sqlalchemy.exc import DBAPIError

from opsbot.cli import main
from opsbot.db.models import AuditEntry, AuditExport
from opsbot.db.session import transaction
from opsbot.housekeeping import ExportError, prune
from opsbot.runtime import Runtime
from tests.housekeeping.conftest import DAY, SECOND, Rows
from tests.support.clock import Clock


def audit_ids(rt: Runtime) -> list[int]:
    with rt.sessions() as session:
        return list(session.execute(select(AuditEntry.id).order_by(AuditEntry.id)).scalars())


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_audit_entries_are_exported_then_pruned_at_and_past_the_limit(
    make_rt: Callable[..., Runtime], clock: Clock, tmp_path: Path
) -> None:
    export = tmp_path / "audit"
    rt = make_rt(retain_audit="30d", audit_export=str(export), prune_batch_size=2)
    rows = Rows(rt)
    now = clock.now + 100 * DAY
    for at in (now - 40 * DAY, now - 30 * DAY - SECOND, now - 30 * DAY, now - 1 * DAY):
        rows.audit(at)
    recent = now - 60 * SECOND  # younger than the export's settle time: next run
    rows.audit(recent)
    before = audit_ids(rt)

    report = prune(rt, now)

    [written] = sorted(export.iterdir())
    assert written.name == f"audit-{before[0]}-{before[3]}-{now:%Y%m%dT%H%M%SZ}.jsonl"
    exported = lines_of(written)
    assert [e["id"] for e in exported] == before[:4]
    assert exported[0]["actor"] == "U0OPS" and exported[0]["action"] == "test.done"
    assert report.exported == 4 and report.counts["audit"] == 2
    assert audit_ids(rt) == before[2:]  # at the limit and younger: kept
    with rt.sessions() as session:
        record = session.execute(select(AuditExport)).scalar_one()
    assert (record.first_id, record.up_to_id, record.rows) == (before[0], before[3], 4)
    assert record.destination == str(written)

    later = prune(rt, now + 10 * 60 * SECOND)  # the recent entry is settled now
    assert later.exported == 1
    assert len(list(export.iterdir())) == 2


def test_by_default_nothing_is_exported_and_the_audit_log_is_never_pruned(
    make_rt: Callable[..., Runtime], clock: Clock
) -> None:
    rt = make_rt()
    rows = Rows(rt)
    rows.audit(clock.now)
    report = prune(rt, clock.now + 5000 * DAY)
    assert report.export_destination is None and report.counts["audit"] == 0
    assert len(audit_ids(rt)) == 1


def test_the_database_refuses_to_delete_unexported_audit_entries(
    make_rt: Callable[..., Runtime], clock: Clock, tmp_path: Path
) -> None:
    rt = make_rt(audit_export=str(tmp_path / "audit"))
    rows = Rows(rt)
    rows.audit(clock.now)
    with pytest.raises(DBAPIError, match="append-only"), transaction(rt.sessions) as session:
        session.execute(delete(AuditEntry))
    prune(rt, clock.now + DAY)  # exports; prunes nothing (no OPSBOT_RETAIN_AUDIT)
    rows.audit(clock.now + DAY)  # not exported yet
    with pytest.raises(DBAPIError, match="append-only"), transaction(rt.sessions) as session:
        session.execute(delete(AuditEntry))  # the second entry is not covered
    [first, second] = audit_ids(rt)
    with transaction(rt.sessions) as session:
        session.execute(delete(AuditEntry).where(AuditEntry.id == first))
    assert audit_ids(rt) == [second]


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, moto_url: str, tmp_path: Path) -> Iterator[object]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    client = boto3.client("s3")
    client.create_bucket(Bucket="opsbot-audit")
    yield client
    for item in client.list_objects_v2(Bucket="opsbot-audit").get("Contents", []):
        client.delete_object(Bucket="opsbot-audit", Key=item["Key"])
    client.delete_bucket(Bucket="opsbot-audit")


def test_audit_entries_are_exported_to_s3_before_they_are_pruned(
    make_rt: Callable[..., Runtime], clock: Clock, s3
) -> None:
    rt = make_rt(retain_audit="30d", audit_export="s3://opsbot-audit/prod/audit/")
    rows = Rows(rt)
    rows.audit(clock.now)
    rows.audit(clock.now + SECOND)
    [first, last] = audit_ids(rt)

    report = prune(rt, clock.now + 31 * DAY)

    key = f"prod/audit/audit-{first}-{last}-{clock.now + 31 * DAY:%Y%m%dT%H%M%SZ}.jsonl"
    assert report.export_destination == f"s3://opsbot-audit/{key}"
    body = s3.get_object(Bucket="opsbot-audit", Key=key)["Body"].read().decode()
    assert [json.loads(line)["id"] for line in body.splitlines()] == [first, last]
    assert audit_ids(rt) == []


def test_a_failed_export_prunes_no_audit_entry_and_exits_2(
    make_rt: Callable[..., Runtime], database_url: str, tmp_path: Path
) -> None:
    not_a_directory = tmp_path / "audit"
    not_a_directory.write_text("a file where the export directory should be")
    rt = make_rt()
    Rows(rt).audit(rt.clock() - 400 * DAY)
    env = {
        "OPSBOT_DATABASE_URL": database_url,
        "OPSBOT_RETAIN_AUDIT": "30d",
        "OPSBOT_AUDIT_EXPORT": str(not_a_directory),
        "OPSBOT_CONFIG": str(tmp_path / "none.yaml"),
    }
    result = CliRunner().invoke(main, ["db", "prune"], env=env)
    assert result.exit_code == 2, result.output
    assert f"opsbot: error: audit export to {not_a_directory} failed" in result.output
    with rt.sessions() as session:
        assert session.execute(select(func.count()).select_from(AuditEntry)).scalar_one() == 1
        assert session.execute(select(AuditExport)).first() is None


def test_an_export_to_a_missing_bucket_prunes_nothing(
    make_rt: Callable[..., Runtime], clock: Clock, s3
) -> None:
    rt = make_rt(retain_audit="30d", audit_export="s3://no-such-opsbot-bucket/audit")
    Rows(rt).audit(clock.now)
    with pytest.raises(
        ExportError, match="audit export to s3://no-such-opsbot-bucket/audit failed"
    ):
        prune(rt, clock.now + 31 * DAY)
    assert len(audit_ids(rt)) == 1
