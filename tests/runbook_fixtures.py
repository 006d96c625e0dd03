"""Fixtures for the runbook tests (``pytest_plugins``): moto STS and the SSM stand-in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.ssm_api import FakeSsm, SsmServer


@pytest.fixture
def fake_ssm() -> Iterator[FakeSsm]:
    fake = FakeSsm()
    server = SsmServer(fake).start()
    fake.url = server.url  # type: ignore[attr-defined]
    yield fake
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_url: str, fake_ssm: FakeSsm, tmp_path) -> None:
    """Point boto3 at moto (STS) and the SSM stand-in, with test credentials only."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", fake_ssm.url)  # type: ignore[attr-defined]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
