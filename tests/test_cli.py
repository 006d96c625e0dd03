"""The command line: check, db upgrade, simulate, and `opsbot run` serving a simulated alarm."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import inspect

from opsbot.cli import main
from opsbot.db.session import make_engine

EXAMPLE = Path(__file__).parents[1] / "opsbot.example.yaml"
OPSBOT = str(Path(sys.executable).parent / "opsbot")


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_check_accepts_the_example_configuration() -> None:
    result = invoke("check", env={"OPSBOT_CONFIG": str(EXAMPLE)})
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ") and "rules" in result.output


def test_check_names_file_line_and_key_of_a_broken_yaml(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules:\n  - match: {severity: urgent}\n    priority: P1\n")
    result = invoke("check", env={"OPSBOT_CONFIG": str(broken)})
    assert result.exit_code == 2
    assert "broken.yaml:2" in result.output and "severity" in result.output
    assert "urgent" in result.output


def test_check_reports_yaml_syntax_errors_with_position(tmp_path: Path) -> None:
    broken = tmp_path / "syntax.yaml"
    broken.write_text("accounts:\n  '111122223333': {name: prod\n")
    result = invoke("check", env={"OPSBOT_CONFIG": str(broken)})
    assert result.exit_code == 2 and "syntax.yaml:" in result.output


def test_check_fails_when_the_named_config_file_is_missing(tmp_path: Path) -> None:
    result = invoke("check", env={"OPSBOT_CONFIG": str(tmp_path / "nope.yaml")})
    assert result.exit_code == 2 and "nope.yaml" in result.output


def test_invalid_settings_name_the_variable_without_a_traceback() -> None:
    result = invoke("check", env={"OPSBOT_SNS_MAX_AGE_SECONDS": "an hour"})
    assert result.exit_code == 2
    assert "OPSBOT_SNS_MAX_AGE_SECONDS" in result.output and "Traceback" not in result.output


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = invoke("db", "upgrade", env={"OPSBOT_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    engine = make_engine(url)
    assert {"incidents", "outbox", "audit_log", "deliveries"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()


def test_simulate_refuses_an_unknown_sample_and_lists_the_known_ones() -> None:
    result = invoke("simulate", "no-such-sample")
    assert result.exit_code == 2 and "cloudwatch-alarm" in result.output


def test_simulate_says_when_opsbot_is_unreachable(tmp_path: Path) -> None:
    env = {"OPSBOT_DATA_DIR": str(tmp_path)}
    result = invoke(
        "simulate", "cloudwatch-alarm", "--url", f"http://127.0.0.1:{free_port()}", env=env
    )
    assert result.exit_code == 2 and "could not reach opsbot" in result.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def running(tmp_path: Path, database_url: str):
    """`opsbot run` in a fresh working directory, as a newcomer starts it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSBOT_")}
    env["OPSBOT_DATABASE_URL"] = database_url
    proc = subprocess.Popen(
        [OPSBOT, "run", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("opsbot run did not come up:\n" + (proc.communicate()[0] or ""))
    yield url, env, tmp_path
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, output
    assert "Slack        off" in output and "Jira         off" in output


def test_run_and_simulate_open_and_resolve_a_real_incident(running) -> None:
    url, env, cwd = running
    for sample in ("cloudwatch-alarm", "cloudwatch-ok"):
        result = subprocess.run(
            [OPSBOT, "simulate", sample, "--url", url],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith("HTTP 200")
        if sample == "cloudwatch-alarm":
            [incident] = requests.get(f"{url}/api/incidents", timeout=5).json()["incidents"]
            assert (incident["status"], incident["priority"], incident["region"]) == (
                "open",
                "P1",
                "eu-west-1",
            )
    [incident] = requests.get(f"{url}/api/incidents", timeout=5).json()["incidents"]
    assert incident["status"] == "resolved"
    metrics = requests.get(f"{url}/metrics", timeout=5).text
    assert 'opsbot_incidents{status="resolved"} 1' in metrics
