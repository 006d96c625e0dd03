"""`opsbot serve` with the otel extra and OTEL_* set: each gunicorn worker starts tracing after
the fork and exports by OTLP/HTTP to the collector named by OTEL_EXPORTER_OTLP_ENDPOINT (a
stand-in here), continuing the trace of the ALB's X-Amzn-Trace-Id; spans still batched are
sent when the workers stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.telemetry.fake_collector import FakeCollector

OPSBOT = str(Path(sys.executable).parent / "opsbot")
ROOT = "1-67891233-abcdef012345678912345678"


def test_serve_workers_export_spans_to_the_collector(database_url: str, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with FakeCollector() as collector:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSBOT_", "OTEL_"))}
        env |= {
            "OPSBOT_DATABASE_URL": database_url,
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        }
        proc = subprocess.Popen(
            [OPSBOT, "serve", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if requests.get(f"{url}/healthz", timeout=1).ok:
                        break
                except requests.RequestException:
                    if proc.poll() is not None:
                        break
                    time.sleep(0.05)
            answer = requests.get(
                f"{url}/api/incidents",
                headers={"X-Amzn-Trace-Id": f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=1"},
                timeout=10,
            )
            assert answer.status_code in (200, 401)
        finally:
            proc.send_signal(signal.SIGTERM)
            output = proc.communicate(timeout=60)[0]
        assert proc.returncode == 0, output
        assert "tracing on" in output
        spans = collector.received()
    trace_id = ROOT[2:].replace("-", "")
    served = [s for s in spans if s.trace_id == trace_id]
    assert served and all(s.service == "opsbot" for s in served), spans
    assert any(s.attributes.get("http.route") == "/api/incidents" for s in served)
    assert not any(s.attributes.get("http.route") == "/healthz" for s in spans)  # excluded
