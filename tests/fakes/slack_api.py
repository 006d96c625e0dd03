"""A stand-in Slack Web API that the real ``slack_sdk`` WebClient talks to over HTTP.

Facts carried over from Slack's method documentation (api.slack.com/methods
and docs.slack.dev/reference/methods): every method answers HTTP 200 with
``{"ok": true, ...}`` or ``{"ok": false, "error": "<code>"}``; the bot token
arrives as ``Authorization: Bearer xoxb-…`` (``not_authed`` when absent,
``invalid_auth`` when wrong); rate-limited calls answer HTTP 429 with a
``Retry-After`` header in seconds and ``{"ok": false, "error":
"ratelimited"}``. Shapes: auth.test → ``url, team, user, team_id, user_id,
bot_id``; chat.postMessage → ``channel`` (an id even when a ``#name`` was
given), ``ts``, ``message``; chat.update → ``channel, ts, text``
(``message_not_found`` for an unknown ts); chat.postEphemeral →
``message_ts``; usergroups.users.list → ``users`` (``no_such_subteam``);
users.info → ``user`` with ``name``, ``real_name``, ``profile.display_name``
(``user_not_found``); views.open → ``view``. Arguments come as JSON (the
SDK sends chat.* that way), form fields or query parameters. A
``response_url`` sink under ``/response/`` records what Bolt's ``respond``
posts and answers ``ok`` like hooks.slack.com.

Faults: ``rate_limit(method, times, retry_after)``; channels in
``not_member`` answer ``not_in_channel``; unknown channels
``channel_not_found``.

Limits and outages on ``clock``, as Slack documents them
(docs.slack.dev/apis/web-api/rate-limits): with ``post_limit`` on,
chat.postMessage allows one message per second per channel (a 1 ms
tolerance for timestamp rounding) and answers 429 ``ratelimited`` with
``Retry-After: 1`` beyond it; ``storm_until`` answers every call 429 with
``Retry-After: storm_retry_after`` until then; ``refuse_until`` answers
``invalid_auth`` until then (a revoked token, then a fixed one).
``rate_limited`` counts the 429s it gave.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

TOKEN = "xoxb-test-token"
TEAM_ID = "T0OPSBOT"


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None = None
    updates: int = 0


@dataclass
class FakeSlack:
    """The fake workspace: channels, users, user groups, messages and recorded calls."""

    token: str = TOKEN
    channels: dict[str, str] = field(
        default_factory=lambda: {"ops": "C0OPS", "sec-alerts": "C0SEC", "ops-escalations": "C0ESC"}
    )
    not_member: set[str] = field(default_factory=set)
    users: dict[str, str] = field(
        default_factory=lambda: {
            "U0VIEW": "vic",
            "U0OPS": "ana",
            "U0ADMIN": "ada",
            "U0GROUPIE": "gus",
        }
    )
    groups: dict[str, list[str]] = field(default_factory=lambda: {"S0OPERATORS": ["U0GROUPIE"]})
    messages: list[Message] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    clock: Callable[[], float] = time.time
    post_limit: bool = False
    storm_until: float | None = None
    storm_retry_after: int = 30
    refuse_until: float | None = None
    rate_limited: int = 0
    _last_post: dict[str, float] = field(default_factory=dict)
    _faults: dict[str, list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ts: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def rate_limit(self, method: str, times: int = 1, retry_after: float = 30) -> None:
        """Answer the next ``times`` calls of ``method`` with 429 and ``Retry-After``."""
        self._faults.setdefault(method, []).extend([retry_after] * times)

    def called(self, method: str) -> list[dict[str, Any]]:
        """Return the arguments of every successful call of a method."""
        return [args for name, args in self.calls if name == method]

    def cards(self, channel: str | None = None) -> list[Message]:
        """Return the top-level messages (not thread replies), in one channel if given."""
        return [
            m
            for m in self.messages
            if m.thread_ts is None and (channel is None or m.channel == channel)
        ]

    def thread(self, ts: str) -> list[str]:
        """Return the texts of the replies in a message's thread."""
        return [m.text for m in self.messages if m.thread_ts == ts]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        return self.handle(request)(environ, start_response)

    def handle(self, request: Request) -> Response:
        path = request.path.strip("/")
        if path.startswith("response/"):
            self.responses.append(json.loads(request.get_data(as_text=True) or "{}"))
            return Response("ok", content_type="text/html")
        method = path.removeprefix("api/")
        with self._lock:
            waits = self._faults.get(method)
            if waits:
                return self._ratelimited(waits.pop(0))
            if self.storm_until is not None and self.clock() < self.storm_until:
                return self._ratelimited(self.storm_retry_after)
        auth = request.headers.get("Authorization", "")
        if not auth:
            return _answer({"ok": False, "error": "not_authed"})
        refused = self.refuse_until is not None and self.clock() < self.refuse_until
        if refused or auth != f"Bearer {self.token}":
            return _answer({"ok": False, "error": "invalid_auth"})
        args = _arguments(request)
        if method == "chat.postMessage" and self.post_limit:
            with self._lock:
                if not self._may_post(str(args.get("channel", ""))):
                    return self._ratelimited(1)
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            return _answer({"ok": False, "error": "unknown_method"})
        with self._lock:
            answer = handler(args)
            if answer.get("ok"):
                self.calls.append((method, args))
        return _answer(answer)

    def _ratelimited(self, wait: float) -> Response:
        self.rate_limited += 1
        body = json.dumps({"ok": False, "error": "ratelimited"})
        headers = {"Retry-After": str(int(wait))}
        return Response(body, 429, headers, content_type="application/json")

    def _may_post(self, channel: str) -> bool:
        key = channel.lstrip("#")
        key = self.channels.get(key, key)
        now = self.clock()
        last = self._last_post.get(key)
        if last is not None and now - last < 0.999:
            return False
        self._last_post[key] = now
        return True

    def m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://opsbot-test.slack.com/",
            "team": "opsbot test",
            "user": "opsbot",
            "team_id": TEAM_ID,
            "user_id": "U0BOT",
            "bot_id": "B0BOT",
        }

    def _channel(self, name: str) -> tuple[str | None, dict[str, Any] | None]:
        channel = self.channels.get(
            name.lstrip("#"), name if name in self.channels.values() else None
        )
        if channel is None:
            return None, {"ok": False, "error": "channel_not_found"}
        if channel in self.not_member:
            return None, {"ok": False, "error": "not_in_channel"}
        return channel, None

    def m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, error = self._channel(str(args.get("channel", "")))
        if error or channel is None:
            return error or {}
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        n = next(self._ts)
        ts = f"{1764403200 + n}.{n:06d}"
        blocks = _blocks(args.get("blocks"))
        message = Message(channel, ts, str(args.get("text", "")), blocks, args.get("thread_ts"))
        self.messages.append(message)
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "message": {"text": message.text, "ts": ts},
        }

    def m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, error = self._channel(str(args.get("channel", "")))
        if error or channel is None:
            return error or {}
        for message in self.messages:
            if message.channel == channel and message.ts == args.get("ts"):
                message.text = str(args.get("text", message.text))
                message.blocks = _blocks(args.get("blocks")) or message.blocks
                message.updates += 1
                return {"ok": True, "channel": channel, "ts": message.ts, "text": message.text}
        return {"ok": False, "error": "message_not_found"}

    def m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        _, error = self._channel(str(args.get("channel", "")))
        if error:
            return error
        if args.get("user") not in self.users:
            return {"ok": False, "error": "user_not_in_channel"}
        return {"ok": True, "message_ts": f"{1764403200}.000000"}

    def m_usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = self.groups.get(str(args.get("usergroup")))
        if group is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(group)}

    def m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = str(args.get("user"))
        name = self.users.get(user_id)
        if name is None:
            return {"ok": False, "error": "user_not_found"}
        profile = {"display_name": name, "real_name": name.title()}
        user = {"id": user_id, "team_id": TEAM_ID, "name": name, "real_name": name.title()}
        return {"ok": True, "user": {**user, "profile": profile}}

    def m_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_arguments"}
        view = _blocks(args.get("view")) or {}
        return {"ok": True, "view": {"id": "V0VIEW", **(view if isinstance(view, dict) else {})}}


def _arguments(request: Request) -> dict[str, Any]:
    args: dict[str, Any] = dict(request.args.items())
    if request.is_json:
        args.update(request.get_json(silent=True) or {})
    else:
        args.update(request.form.items())
    return args


def _blocks(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _answer(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), 200, content_type="application/json; charset=utf-8")


@contextmanager
def serve(fake: FakeSlack) -> Iterator[FakeSlack]:
    """Serve the fake on 127.0.0.1 on a free port until the block ends."""
    server = make_server("127.0.0.1", 0, fake, threaded=True)
    fake.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
