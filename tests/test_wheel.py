"""The package as users install it: the wheel, in a fresh venv, outside the checkout.

The wheel is built from exactly what the Dockerfile's build stage copies, with
the same ``pip wheel`` command, and installed without ``-e`` into a venv that
cannot see the checkout or the project's venv. Every module of the installed
distribution must import; ``opsbot check``, ``opsbot run`` and ``opsbot
simulate`` must work from an empty directory with no settings at all.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.dockerfile import ROOT, build_commands, build_context

WHEEL_COMMAND = ["wheel", "--no-deps", "--wheel-dir"]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# Runs only inside Alembic (it reads alembic's context at import); the wheel must still hold it.
NOT_IMPORTABLE_ALONE = {"opsbot.migrations.env"}

IMPORT_EVERY_MODULE = """
import importlib, importlib.metadata as md, json, sys
names = []
for f in md.files("opsbot"):
    if f.suffix == ".py" and ".dist-info" not in str(f):
        parts = list(f.with_suffix("").parts)
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
skip = set(sys.argv[1:])
files = {n: importlib.import_module(n).__file__ for n in sorted(names) if n not in skip}
print(json.dumps({"modules": sorted(names), "files": files}))
"""
LIST_FILES = "import importlib.metadata as m; print(*m.files('opsbot'), sep=chr(10))"


@dataclass(frozen=True)
class Installed:
    venv: Path
    wheel: Path
    cwd: Path
    env: dict[str, str]

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def clean_env() -> dict[str, str]:
    """Return the environment of a newcomer: no OPSBOT_* settings, no PYTHONPATH, no venv."""
    drop = ("OPSBOT_", "PYTHON", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Build the wheel as the Dockerfile does and install it into a fresh venv."""
    base = tmp_path_factory.mktemp("wheel")
    context = base / "context"
    context.mkdir()
    for source in build_context():
        src = ROOT / source
        if src.is_dir():
            shutil.copytree(src, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, context / source)
    env = clean_env()
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [*pip, *WHEEL_COMMAND, str(base / "dist"), "."],
        cwd=context,
        env=env,
        check=True,
        capture_output=True,
    )
    [wheel] = (base / "dist").glob("opsbot-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run(
        [*pip, "--python", str(venv / "bin" / "python"), "install", "--no-compile", str(wheel)],
        cwd=base,
        env=env,
        check=True,
        capture_output=True,
    )
    cwd = base / "newcomer"
    cwd.mkdir()
    yield Installed(venv, wheel, cwd, env)


def test_the_dockerfile_builds_and_installs_the_same_wheel() -> None:
    commands = build_commands()
    assert "pip " + " ".join(WHEEL_COMMAND) + " /wheels ." in commands
    assert "pip install --no-compile /wheels/opsbot-*.whl" in commands
    assert "install ." not in commands and " -e " not in commands


def test_every_module_of_the_installed_distribution_imports(installed: Installed) -> None:
    result = installed.run(
        installed.bin("python"), "-I", "-c", IMPORT_EVERY_MODULE, *NOT_IMPORTABLE_ALONE
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    site = installed.venv.resolve()
    outside = {
        n: f for n, f in found["files"].items() if not Path(f).resolve().is_relative_to(site)
    }
    assert outside == {}
    assert set(found["modules"]) == source_modules()


def source_modules() -> set[str]:
    """Return the module names the checkout holds, as the wheel should install them."""
    mapped = {v: k for k, v in PYPROJECT["tool"]["setuptools"]["package-dir"].items()}
    names = set()
    for top in ("opsbot", "handlers", "migrations", "runbooks"):
        for path in (ROOT / top).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            package = "/".join(parts[:-1])
            prefix = mapped.get(package, package.replace("/", "."))
            names.add(prefix if parts[-1] == "__init__" else f"{prefix}.{parts[-1]}")
    return names


def test_the_wheel_carries_the_license_and_the_data_files(installed: Installed) -> None:
    result = installed.run(installed.bin("python"), "-I", "-c", LIST_FILES)
    files = set(result.stdout.split())
    assert f"opsbot-{PYPROJECT['project']['version']}.dist-info/licenses/LICENSE" in files
    assert {"opsbot/samples/cloudwatch-alarm.json", "opsbot/migrations/script.py.mako"} <= files
    assert {
        f"opsbot/bundled_runbooks/{p.name}" for p in (ROOT / "runbooks").glob("*.yaml")
    } <= files


def test_version_comes_from_the_installed_metadata(installed: Installed) -> None:
    result = installed.run(installed.bin("opsbot"), "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"opsbot {PYPROJECT['project']['version']}"


def test_check_passes_with_no_settings(installed: Installed) -> None:
    result = installed.run(installed.bin("opsbot"), "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "built-in defaults" in result.stdout and "runbooks" in result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_and_simulate_open_an_incident(installed: Installed) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [installed.bin("opsbot"), "run", "--port", str(port)],
        cwd=installed.cwd,
        env=installed.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_healthy(url, proc)
        result = installed.run(
            installed.bin("opsbot"), "simulate", "cloudwatch-alarm", "--url", url
        )
        assert result.returncode == 0 and result.stdout.startswith("HTTP 200"), result.stderr
        [incident] = requests.get(f"{url}/api/incidents", timeout=5).json()["incidents"]
        assert (incident["status"], incident["source"]) == ("open", "aws.cloudwatch")
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output
    assert (installed.cwd / "opsbot.db").exists()


def wait_healthy(url: str, proc: subprocess.Popen[str]) -> None:
    for _ in range(300):
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    pytest.fail("the installed opsbot run did not come up:\n" + (proc.communicate()[0] or ""))
