"""The request id: the load balancer's ``X-Amzn-Trace-Id`` or a new one, echoed as ``X-Request-Id``.

Views with a more specific id (the SNS message id, the Slack trigger id)
bind it in its place, so the log lines and the echoed header carry that one.
"""

from __future__ import annotations

import uuid

from flask import Flask, Response, g, request

from opsbot import logs

TRACE_HEADER = "X-Amzn-Trace-Id"
REQUEST_ID_HEADER = "X-Request-Id"


def request_id_of(trace: str | None) -> str:
    """Return the trace header when it is a fit id (bounded, printable ASCII), else a new one."""
    return logs.safe_id(trace) or uuid.uuid4().hex


def _begin() -> None:
    g.opsbot_log_token = logs.fresh(request_id=request_id_of(request.headers.get(TRACE_HEADER)))


def _echo(response: Response) -> Response:
    request_id = logs.current().get("request_id")
    if request_id is not None:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


def _end(_exc: BaseException | None) -> None:
    token = g.pop("opsbot_log_token", None)
    if token is not None:
        logs.reset(token)


def register(app: Flask) -> None:
    """Give every request an id for its log lines, echoed on every response."""
    app.before_request(_begin)
    app.after_request(_echo)
    app.teardown_request(_end)
