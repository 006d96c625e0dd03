"""Round trips to PostgreSQL per SNS delivery, counted on the wire (libpq's protocol trace).

Builds opsbot in this process against a fresh PostgreSQL database, posts
signed notifications through the real ``POST /sns`` view (Flask's test
client) and counts, per delivery, the client's round trips (one per
ReadyForQuery the server sends) and its statements (Bind or Query messages).
Shapes: a storm of one alarm (after its first delivery) and all-distinct alarms.

    .venv/bin/python bench/roundtrips.py [--deliveries 200]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from sqlalchemy import Engine, event

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import TOPIC, alarm_message, fresh_database

from opsbot.app import create_app
from opsbot.config import Settings
from opsbot.sns.sign import LocalSigner


def count(trace: Path) -> tuple[int, int]:
    """Return (round trips, statements) in a libpq trace file."""
    trips = statements = 0
    for line in trace.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        direction, message = parts[0], parts[2].split(" ")[0]
        trips += direction == "B" and message == "ReadyForQuery"
        statements += direction == "F" and message in ("Bind", "Query")
    return trips, statements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--deliveries", type=int, default=200)
    args = parser.parse_args()
    url = fresh_database(args.database)
    data_dir = Path(tempfile.mkdtemp(prefix="opsbot-trips-"))
    signer = LocalSigner.load_or_create(data_dir / "sns-certs")
    app = create_app(Settings(database_url=url, data_dir=data_dir))
    engine = app.extensions["opsbot"].engine
    trace = data_dir / "libpq.trace"
    handle = trace.open("w")
    from psycopg import pq

    @event.listens_for(Engine, "connect")  # every engine: opsbot's and any companion of it
    def _trace(dbapi_conn: object, _record: object) -> None:
        pgconn = dbapi_conn.pgconn  # type: ignore[attr-defined]
        pgconn.trace(handle.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

    engine.dispose()
    client = app.test_client()
    for shape in ("storm", "distinct"):
        names = (
            ["Storm-CPU"] * (args.deliveries + 1)
            if shape == "storm"
            else [f"Distinct-{i}" for i in range(args.deliveries + 1)]
        )
        envelope = signer.notification(alarm_message(name=names[0]), topic_arn=TOPIC)
        client.post("/sns", data=json.dumps(envelope))  # warm up: pool, caches, first incident
        handle.flush()
        before = count(trace)
        for name in names[1:]:
            envelope = signer.notification(alarm_message(name=name), topic_arn=TOPIC)
            reply = client.post("/sns", data=json.dumps(envelope))
            assert reply.status_code == 200, reply.get_data(as_text=True)
        handle.flush()
        after = count(trace)
        trips = (after[0] - before[0]) / args.deliveries
        statements = (after[1] - before[1]) / args.deliveries
        print(f"{shape:9} {trips:.2f} round trips, {statements:.2f} statements per delivery")
    handle.close()
    os.unlink(trace)


if __name__ == "__main__":
    main()
