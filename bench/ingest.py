"""Ingest benchmark: signed SNS notifications into opsbot and into a bare model, side by side.

Starts ``opsbot serve`` (2 workers; ``--threads 1`` runs sync workers, more
runs gthread) against a fresh PostgreSQL database, and the bare model of the
hot path (``bench/model.py``: Flask under gunicorn with 2 sync workers,
verify, one Core upsert). Notifications are pre-signed with a local key whose
certificate both servers pin, and driven from this process over 127.0.0.1.
Two shapes: a storm of one alarm (every message a repeat of one incident) and
all-distinct alarms (every message a new incident). For each shape opsbot and
the model run alternately (``--rounds`` times each): the most each takes
(closed loop, N connections), then the latency at a fixed offered rate (open
loop). CPU per notification is the server's own user+system time (gunicorn
master and workers) and PostgreSQL's (every postgres process on the machine)
divided by the notifications accepted; the ratio is opsbot/model.

Run by hand; it prints figures and asserts nothing:
    .venv/bin/python bench/ingest.py [--seconds 15] [--rate 300] [--connections 8]
        [--threads 1] [--rounds 1]

``--sqs`` measures the pull path instead: moto's SQS in server mode on
127.0.0.1 as the queue, preloaded with signed SNS envelopes (and raw
EventBridge events), drained by ``opsbot worker --sqs`` processes into
PostgreSQL; and the same bodies from an in-memory queue through SqsIntake
(opsbot's side alone). It reports messages/s from the first recorded delivery
to the last:
    .venv/bin/python bench/ingest.py --sqs [--messages 20000] [--sqs-workers 2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import queue
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from opsbot.db import migrate
from opsbot.sns.sign import LocalSigner

ROOT = Path(__file__).resolve().parents[1]
TOPIC = "arn:aws:sns:us-east-1:111122223333:opsbot-bench"
BENCH_DB = "opsbot_bench"


def alarm_message(name: str) -> str:
    """Return a CloudWatch alarm notification as SNS carries it (the documented shape)."""
    return json.dumps(
        {
            "AlarmName": name,
            "AlarmDescription": None,
            "AWSAccountId": "111122223333",
            "AlarmConfigurationUpdatedTimestamp": "2026-11-01T10:00:00.000+0000",
            "NewStateValue": "ALARM",
            "NewStateReason": "Threshold Crossed: 1 datapoint [91.0] was ALARM",
            "StateChangeTime": "2026-11-29T08:00:00.000+0000",
            "Region": "US East (N. Virginia)",
            "AlarmArn": f"arn:aws:cloudwatch:us-east-1:111122223333:alarm:{name}",
            "OldStateValue": "OK",
            "OKActions": [],
            "AlarmActions": ["arn:aws:sns:us-east-1:111122223333:opsbot-alarms"],
            "InsufficientDataActions": [],
            "Trigger": {
                "MetricName": "CPUUtilization",
                "Namespace": "AWS/EC2",
                "StatisticType": "Statistic",
                "Statistic": "AVERAGE",
                "Unit": None,
                "Dimensions": [{"value": "i-0123456789abcdef0", "name": "InstanceId"}],
                "Period": 300,
                "EvaluationPeriods": 1,
                "ComparisonOperator": "GreaterThanThreshold",
                "Threshold": 80.0,
                "TreatMissingData": "missing",
            },
        }
    )


def fresh_database(admin_url: str) -> str:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{BENCH_DB}"'))
    admin.dispose()
    url = make_url(admin_url).set(database=BENCH_DB).render_as_string(hide_password=False)
    migrate.upgrade(url)
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(proc: subprocess.Popen[bytes], port: int, path: str, method: str = "GET") -> None:
    for _ in range(400):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request(method, path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"the server on port {port} did not become ready")


def start_server(
    url: str, data_dir: Path, port: int, *, workers: int = 2, threads: int | None = None
) -> subprocess.Popen[bytes]:
    """Start ``opsbot serve``; ``threads`` None keeps serve's own default worker model."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSBOT_")}
    env |= {
        "OPSBOT_DATABASE_URL": url,
        "OPSBOT_DATA_DIR": str(data_dir),
        "OPSBOT_LOG_LEVEL": "WARNING",
    }
    opsbot = str(Path(sys.executable).parent / "opsbot")
    command = [opsbot, "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)]
    if threads is not None:
        command += ["--threads", str(threads)]
    proc = subprocess.Popen(command, env=env, cwd=data_dir)
    wait_ready(proc, port, "/readyz")
    return proc


def start_model(url: str, cert_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """Start the bare model (bench/model.py) under gunicorn with 2 sync workers."""
    from model import create_schema  # bench/ is on sys.path when this file runs

    create_schema(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSBOT_")}
    env |= {"MODEL_DATABASE_URL": url, "MODEL_CERT_DIR": str(cert_dir)}
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    command = [gunicorn, "--chdir", str(ROOT / "bench"), "-w", "2", "-k", "sync"]
    command += ["-b", f"127.0.0.1:{port}", "--log-level", "warning", "model:create_app()"]
    proc = subprocess.Popen(command, env=env)
    wait_ready(proc, port, "/sns", "GET")
    return proc


def postgres_cpu_seconds() -> float:
    """Return user+system CPU of the PostgreSQL backends serving the bench database.

    Backends name their database in their process title; other databases on the same server
    (other people's tests on a shared machine) are not counted, nor are PostgreSQL's own
    background processes (WAL writer, checkpointer), which do the same work for both.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            title = (proc / "cmdline").read_bytes()
            if f" {BENCH_DB} ".encode() not in title:
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def server_cpu_seconds(proc: subprocess.Popen[bytes]) -> float:
    """Return user+system CPU of the gunicorn master and its workers."""
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [proc.pid]
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def make_bodies(signer: LocalSigner, shape: str, n: int) -> list[bytes]:
    bodies = []
    for i in range(n):
        name = "Storm-CPU" if shape == "storm" else f"Distinct-{uuid.uuid4().hex[:12]}-{i}"
        envelope = signer.notification(alarm_message(name=name), topic_arn=TOPIC)
        bodies.append(json.dumps(envelope).encode())
    return bodies


def post(port: int, body: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/sns", body=body, headers={"Content-Type": "text/plain; charset=UTF-8"})
    status = conn.getresponse().status
    conn.close()
    return status, time.perf_counter() - started


def closed_loop(
    port: int, bodies: list[bytes], connections: int, seconds: float
) -> dict[str, float]:
    work: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    for body in bodies:
        work.put(body)
    latencies: list[float] = []
    errors = [0]
    deadline = time.perf_counter() + seconds
    lock = threading.Lock()

    def run() -> None:
        while time.perf_counter() < deadline:
            try:
                body = work.get_nowait()
            except queue.Empty:
                return
            status, took = post(port, body)
            with lock:
                latencies.append(took)
                errors[0] += status != 200

    started = time.perf_counter()
    threads = [threading.Thread(target=run) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return summarise(latencies, errors[0], elapsed)


def open_loop(port: int, bodies: list[bytes], rate: float, seconds: float) -> dict[str, float]:
    total = min(len(bodies), int(rate * seconds))
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    pending: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    def run() -> None:
        while (body := pending.get()) is not None:
            status, took = post(port, body)
            with lock:
                latencies.append(took)
                errors[0] += status != 200

    threads = [threading.Thread(target=run) for _ in range(16)]
    for t in threads:
        t.start()
    started = time.perf_counter()
    for i in range(total):
        target = started + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        pending.put(bodies[i])
    for _ in threads:
        pending.put(None)
    for t in threads:
        t.join()
    return summarise(latencies, errors[0], time.perf_counter() - started)


def summarise(latencies: list[float], errors: int, elapsed: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "n": len(ordered),
        "errors": errors,
        "per_second": len(ordered) / elapsed if elapsed else 0.0,
        "p50_ms": 1000 * statistics.median(ordered) if ordered else 0.0,
        "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0.0,
    }


def measure(
    port: int,
    proc: subprocess.Popen[bytes],
    signer: LocalSigner,
    shape: str,
    args: argparse.Namespace,
) -> dict[str, float]:
    """Return the closed-loop peak, CPU per notification and the open-loop latency."""
    bodies = make_bodies(signer, shape, int(2000 * args.seconds))
    cpu0, pg0 = server_cpu_seconds(proc), postgres_cpu_seconds()
    peak = closed_loop(port, bodies, args.connections, args.seconds)
    accepted = max(peak["n"], 1)
    peak["app_cpu_ms"] = 1000 * (server_cpu_seconds(proc) - cpu0) / accepted
    peak["pg_cpu_ms"] = 1000 * (postgres_cpu_seconds() - pg0) / accepted
    offered = make_bodies(signer, shape, int(args.rate * args.seconds))
    steady = open_loop(port, offered, args.rate, args.seconds)
    peak |= {f"at_rate_{k}": v for k, v in steady.items()}
    return peak


def describe(name: str, r: dict[str, float], rate: float) -> str:
    return (
        f"  {name:6} {r['per_second']:6.0f}/s  p50 {r['p50_ms']:5.1f} ms  p99 {r['p99_ms']:5.1f} ms"
        f"  CPU/notification app {r['app_cpu_ms']:.2f} ms + PostgreSQL {r['pg_cpu_ms']:.2f} ms"
        f"  errors {r['errors']:.0f} | at {rate:.0f}/s: p50 {r['at_rate_p50_ms']:.1f} ms"
        f" p99 {r['at_rate_p99_ms']:.1f} ms errors {r['at_rate_errors']:.0f}"
    )


def mean(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.fmean(r[key] for r in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="opsbot serve --workers")
    parser.add_argument(
        "--threads", type=int, default=None, help="opsbot serve --threads (default: serve's)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="alternations per shape")
    parser.add_argument("--no-model", action="store_true", help="measure opsbot alone")
    parser.add_argument("--sqs", action="store_true", help="Measure the SQS pull path instead.")
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--sqs-workers", type=int, default=2)
    parser.add_argument("--memory-messages", type=int, default=20000)
    parser.add_argument("--no-moto", action="store_true", help="--sqs: in-memory queue only")
    args = parser.parse_args()
    if args.sqs:
        messages = 0 if args.no_moto else args.messages
        bench_sqs(args.database, messages, args.sqs_workers, args.memory_messages)
        return

    url = fresh_database(args.database)
    data_dir = Path(tempfile.mkdtemp(prefix="opsbot-bench-"))
    signer = LocalSigner.load_or_create(data_dir / "sns-certs")
    servers = {"opsbot": free_port()}
    procs = {
        "opsbot": start_server(
            url, data_dir, servers["opsbot"], workers=args.workers, threads=args.threads
        )
    }
    if not args.no_model:
        servers["model"] = free_port()
        procs["model"] = start_model(url, data_dir / "sns-certs", servers["model"])
    model = "model: 2 sync workers" if not args.no_model else "no model"
    print(
        f"opsbot serve --workers {args.workers} --threads {args.threads or 'default'} | {model}"
        f" | PostgreSQL | {os.cpu_count()} cores shared with the load | "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    try:
        for shape in ("storm", "distinct"):
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
            for _ in range(args.rounds):
                for name, port in servers.items():
                    runs[name].append(measure(port, procs[name], signer, shape, args))
            print(f"{shape} (load average {os.getloadavg()[0]:.2f})")
            results = {name: mean(r) for name, r in runs.items()}
            for name, r in results.items():
                print(describe(name, r, args.rate))
            if "model" in results:
                ratio = results["opsbot"]["per_second"] / max(results["model"]["per_second"], 1)
                print(f"  ratio opsbot/model {ratio:.2f}", flush=True)
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            proc.wait(30)


def sqs_bodies(signer: LocalSigner, shape: str, n: int) -> list[str]:
    """Return SQS bodies: signed SNS envelopes, every tenth a raw EventBridge event."""
    event = json.loads(
        (ROOT / "tests/fixtures/events/eventbridge-guardduty-finding-constructed.json").read_text()
    )
    bodies = []
    for i in range(n):
        if i % 10 == 9:
            bodies.append(json.dumps({**event, "id": str(uuid.uuid4())}))
            continue
        name = "Storm-CPU" if shape == "storm" else f"CPU-{i}"
        envelope = signer.notification(alarm_message(name=name), topic_arn=TOPIC)
        bodies.append(json.dumps(envelope))
    return bodies


def fill_queue(client: Any, queue: str, bodies: list[str]) -> None:
    """Send the bodies in batches of 10."""
    for i in range(0, len(bodies), 10):
        entries = [{"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[i : i + 10])]
        client.send_message_batch(QueueUrl=queue, Entries=entries)


def delivered(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        count = int(conn.execute(text("SELECT count(*) FROM deliveries")).scalar_one())
    engine.dispose()
    return count


def bench_sqs(admin_url: str, messages: int, workers: int, memory_messages: int = 20000) -> None:
    """Drain a preloaded moto SQS queue with ``opsbot worker --sqs`` and print messages/s."""
    import boto3
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    aws = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    client = boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # noqa: S106 - moto accepts any credentials
    )
    data_dir = Path(tempfile.mkdtemp(prefix="opsbot-bench-sqs-"))
    signer = LocalSigner.load_or_create(data_dir / "sns-certs")
    print(
        f"opsbot worker --sqs x{workers} on PostgreSQL, moto SQS, {os.cpu_count()} cores shared",
        flush=True,
    )
    try:
        for shape in ("storm", "distinct"):
            if not messages:
                url = fresh_database(admin_url)
                bodies = sqs_bodies(signer, shape, memory_messages)
                rate = drain_in_memory(url, data_dir, bodies, workers)
                print(f"{shape:9} {rate:7.0f} messages/s opsbot side ({memory_messages} messages)")
                continue
            url = fresh_database(admin_url)
            queue = client.create_queue(QueueName=f"bench-{shape}-{uuid.uuid4().hex[:6]}")[
                "QueueUrl"
            ]
            loading = time.perf_counter()
            fill_queue(client, queue, sqs_bodies(signer, shape, messages))
            print(f"  queued {messages} in {time.perf_counter() - loading:.1f} s", flush=True)
            rate = drain(url, queue, data_dir, aws, workers, messages)
            print(f"{shape:9} {rate:7.0f} messages/s through moto ({messages} messages)")
            url = fresh_database(admin_url)
            bodies = sqs_bodies(signer, shape, memory_messages)
            rate = drain_in_memory(url, data_dir, bodies, workers)
            print(f"{shape:9} {rate:7.0f} messages/s opsbot side ({memory_messages} messages)")
    finally:
        client.close()
        moto.stop()


def drain(
    url: str, queue: str, data_dir: Path, aws: dict[str, str], workers: int, messages: int
) -> float:
    """Run the workers until every message is recorded; return messages/s while recording."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSBOT_")}
    env |= aws | {
        "OPSBOT_DATABASE_URL": url,
        "OPSBOT_DATA_DIR": str(data_dir),
        "OPSBOT_LOG_LEVEL": "WARNING",
    }
    opsbot = str(Path(sys.executable).parent / "opsbot")
    procs = [
        subprocess.Popen([opsbot, "worker", "--sqs", queue], env=env, cwd=data_dir)
        for _ in range(workers)
    ]
    try:
        while (first := delivered(url)) == 0:
            time.sleep(0.02)
        started = time.perf_counter()
        while (done := delivered(url)) < messages:
            time.sleep(0.1)
        return (done - first) / (time.perf_counter() - started)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(60)


class MemoryQueue:
    """The three SQS calls SqsIntake makes, over a list: measures opsbot without the queue."""

    def __init__(self, bodies: list[str]) -> None:
        self.bodies = bodies
        self.next = 0
        self.lock = threading.Lock()

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        with self.lock:
            batch = self.bodies[self.next : self.next + kwargs["MaxNumberOfMessages"]]
            start, self.next = self.next, self.next + len(batch)
        return {
            "Messages": [
                {"MessageId": f"m-{start + i}", "ReceiptHandle": f"r-{start + i}", "Body": b}
                for i, b in enumerate(batch)
            ]
        }

    def delete_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        return {"Successful": [{"Id": e["Id"]} for e in kwargs["Entries"]]}

    def change_message_visibility_batch(self, **kwargs: Any) -> dict[str, Any]:
        return {}


def drain_part(url: str, data_dir: str, bodies: list[str], start: Any) -> None:
    from opsbot.app import build_runtime
    from opsbot.config import Settings
    from opsbot.intake.sqs import BATCHES_IN_FLIGHT, SqsIntake

    logging.disable(logging.WARNING)
    rt = build_runtime(Settings(database_url=url, data_dir=Path(data_dir)))
    memory = MemoryQueue(bodies)
    intakes = [  # as SqsWorkers runs them: several batches in flight per worker
        SqsIntake(rt, "memory", memory, wait_seconds=0) for _ in range(BATCHES_IN_FLIGHT)
    ]

    def drain_one(intake: Any) -> None:
        while intake.poll_once().received:
            pass

    threads = [threading.Thread(target=drain_one, args=(i,)) for i in intakes]
    start.wait()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rt.engine.dispose()


def drain_in_memory(url: str, data_dir: Path, bodies: list[str], workers: int) -> float:
    """Return messages/s of ``workers`` processes running SqsIntake over in-memory queues."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    parts = [bodies[k::workers] for k in range(workers)]
    procs = [
        ctx.Process(target=drain_part, args=(url, str(data_dir), part, start)) for part in parts
    ]
    for proc in procs:
        proc.start()
    time.sleep(3)  # let each process import and connect before the clock starts
    started = time.perf_counter()
    start.set()
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - started
    assert delivered(url) == len(bodies), "not every message was recorded"
    return len(bodies) / elapsed


if __name__ == "__main__":
    main()
