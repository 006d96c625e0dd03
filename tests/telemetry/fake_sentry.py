"""A stand-in for Sentry's ingest endpoint: ``POST /api/<project>/envelope/`` on 127.0.0.1.

The SDK sends an envelope (https://develop.sentry.dev/sdk/data-model/envelopes/): a JSON
header line, then for each item a JSON item header and its payload, newline-separated,
gzip- (or brotli-) compressed as ``Content-Encoding`` says, authenticated by the
``X-Sentry-Auth`` header carrying the DSN's public key. The stand-in checks the key,
decompresses, keeps the envelopes and answers 200 as Sentry does.
"""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PUBLIC_KEY = "0123456789abcdef0123456789abcdef"
PROJECT = "42"


@dataclass
class Envelope:
    """One received envelope: its header and its items as (item header, payload bytes)."""

    raw: bytes
    header: dict[str, Any]
    items: list[tuple[dict[str, Any], bytes]] = field(default_factory=list)

    def events(self) -> list[dict[str, Any]]:
        """Return the payloads of the ``event`` items, parsed."""
        return [json.loads(body) for head, body in self.items if head.get("type") == "event"]


def parse_envelope(raw: bytes) -> Envelope:
    """Split an envelope into its header and items (a length, when given, bounds a payload)."""
    head, _, rest = raw.partition(b"\n")
    envelope = Envelope(raw, json.loads(head))
    while rest.strip():
        item_head, _, rest = rest.partition(b"\n")
        meta = json.loads(item_head)
        if "length" in meta:
            body, rest = rest[: meta["length"]], rest[meta["length"] + 1 :]
        else:
            body, _, rest = rest.partition(b"\n")
        envelope.items.append((meta, body))
    return envelope


class FakeSentry:
    """Receives envelopes; ``dsn`` is the DSN to configure the SDK with."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.refused: list[str] = []
        self.received = threading.Condition()
        self._server: ThreadingHTTPServer | None = None

    @property
    def dsn(self) -> str:
        assert self._server is not None
        return f"http://{PUBLIC_KEY}@127.0.0.1:{self._server.server_address[1]}/{PROJECT}"

    def wait_for_events(self, n: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Return the events received once there are ``n`` (fails after ``timeout``)."""
        with self.received:
            self.received.wait_for(lambda: len(self.events()) >= n, timeout)
        found = self.events()
        assert len(found) >= n, f"got {len(found)} events, refused: {self.refused}"
        return found

    def events(self) -> list[dict[str, Any]]:
        return [event for envelope in self.envelopes for event in envelope.events()]

    def __enter__(self) -> FakeSentry:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                problem = fake.check(self.path, self.headers.get("X-Sentry-Auth", ""))
                if problem:
                    fake.refused.append(problem)
                    self.send_response(401 if "key" in problem else 404)
                    self.end_headers()
                    return
                raw = decode(body, self.headers.get("Content-Encoding", ""))
                with fake.received:
                    fake.envelopes.append(parse_envelope(raw))
                    fake.received.notify_all()
                answer = json.dumps({"id": fake.envelopes[-1].header.get("event_id")}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def check(self, path: str, auth: str) -> str:
        """Return why a request is refused, or "" (the path and the key Sentry checks)."""
        if path.split("?")[0] != f"/api/{PROJECT}/envelope/":
            return f"unknown path {path}"
        if f"sentry_key={PUBLIC_KEY}" not in auth:
            return "missing or wrong sentry_key"
        return ""


def decode(body: bytes, encoding: str) -> bytes:
    """Undo the Content-Encoding the SDK applied."""
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        import brotli  # only when the SDK found brotli installed

        return bytes(brotli.decompress(body))
    return body
