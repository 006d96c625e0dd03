"""Logs: JSON lines with the ids of the work at hand, lifecycle lines at INFO, quiet libraries."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from opsbot import logs
from opsbot.cli import main
from opsbot.config import Settings
from opsbot.outbox.ports import OutboxItem, RetryLater
from opsbot.outbox.worker import OutboxWorker
from tests.support.sns import alarm_message, notify

Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def json_lines(capsys: pytest.CaptureFixture[str]) -> Iterator[Lines]:
    """Install opsbot's JSON handler on the root for this test; return a reader of its lines."""
    root = logging.getLogger()
    handler, level = logs.handler_for("json"), root.level
    token = logs.fresh()  # whatever an earlier test left bound does not count
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def read() -> list[dict[str, Any]]:
        err = capsys.readouterr().err
        return [json.loads(line) for line in err.splitlines() if line.startswith("{")]

    yield read
    root.removeHandler(handler)
    root.setLevel(level)
    logs.reset(token)


def test_a_json_line_parses_and_carries_the_bound_ids(json_lines: Lines) -> None:
    with logs.context(request_id="req-1", incident_id=7, fingerprint="fp", outbox_id=3):
        logging.getLogger("opsbot.test").warning("card %s failed", "x\ny")
    [line] = json_lines()
    assert line["level"] == "WARNING" and line["logger"] == "opsbot.test"
    assert line["message"] == "card x\ny failed"
    assert line["time"].endswith("+00:00")
    assert (line["request_id"], line["incident_id"], line["fingerprint"], line["outbox_id"]) == (
        "req-1",
        7,
        "fp",
        3,
    )


def test_the_context_is_reset_after_the_block(json_lines: Lines) -> None:
    with logs.context(request_id="req-2"):
        pass
    logging.getLogger("opsbot.test").warning("outside")
    [line] = json_lines()
    assert "request_id" not in line and "incident_id" not in line


def test_an_exception_is_one_line_with_its_traceback(json_lines: Lines) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("opsbot.test").exception("sending failed")
    [line] = json_lines()
    assert "ValueError: boom" in line["exception"] and "Traceback" in line["exception"]


def test_an_incident_opens_with_one_info_line_and_a_storm_adds_none(
    client, signer, clock, json_lines: Lines
) -> None:
    opened = notify(client, signer, clock, alarm_message())
    incident_id = opened.get_json()["alerts"][0]["incident_id"]
    for _ in range(20):
        clock.advance(seconds=30)
        assert notify(client, signer, clock, alarm_message(when=clock.now)).status_code == 200
    lifecycle = [x for x in json_lines() if x["logger"] == "opsbot.incidents.service"]
    [line] = lifecycle
    assert line["level"] == "INFO" and "opened" in line["message"]
    assert line["incident_id"] == incident_id and line["fingerprint"]
    assert line["request_id"]  # the SNS message id of the delivery that opened it


def test_a_resolve_is_one_info_line(client, signer, clock, json_lines: Lines) -> None:
    notify(client, signer, clock, alarm_message())
    clock.advance(minutes=5)
    notify(client, signer, clock, alarm_message(state="OK", old="ALARM", when=clock.now))
    messages = [x["message"] for x in json_lines() if x["logger"] == "opsbot.incidents.service"]
    assert len(messages) == 2 and "resolved" in messages[1]


class FailingSender:
    """A Slack sender that logs, then asks to be retried."""

    target = "slack"

    def send(self, item: OutboxItem) -> None:
        logging.getLogger("opsbot.test").info("sending")
        raise RetryLater("slack is down")


def test_an_outbox_send_logs_with_its_row_and_incident(
    client, signer, clock, rt, json_lines: Lines
) -> None:
    notify(client, signer, clock, alarm_message())
    json_lines()
    worker = OutboxWorker(rt.sessions, {"slack": FailingSender()}, metrics=rt.metrics, clock=clock)
    assert worker.run_once() == 1
    logging.getLogger("opsbot.test").info("after")
    sending, retry, after = [x for x in json_lines() if x["logger"] != "opsbot.incidents.service"]
    assert sending["outbox_id"] == retry["outbox_id"] and sending["incident_id"] == 1
    assert retry["level"] == "WARNING" and "slack is down" in retry["message"]
    assert "outbox_id" not in after and "incident_id" not in after


def test_setup_logging_installs_one_json_handler_and_quietens_libraries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    for name in logs.QUIET_LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    settings = Settings(log_format="json", log_level="debug")
    logs.setup_logging(settings)
    logs.setup_logging(settings)  # a second call replaces, never stacks
    [handler] = root.handlers
    assert isinstance(handler.formatter, logs.JsonFormatter)
    assert root.level == logging.DEBUG
    assert logging.getLogger("apscheduler.scheduler").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("alembic.runtime.migration").getEffectiveLevel() == logging.WARNING


def test_gunicorn_logs_go_through_the_same_handler() -> None:
    config = logs.gunicorn_logconfig(Settings(log_format="json"))
    factory = config["handlers"]["opsbot"]
    handler = factory["()"](log_format=factory["log_format"])
    assert isinstance(handler.formatter, logs.JsonFormatter)
    assert config["loggers"]["gunicorn.error"] == {
        "level": "INFO",
        "handlers": [],
        "propagate": True,
    }


@pytest.mark.parametrize(
    "value", ["x" * 129, "abc\r\nX-Evil: 1", "with space", "caf\u00e9", "", None]
)
def test_a_hostile_id_is_refused(value: str | None) -> None:
    assert logs.safe_id(value) is None


def test_check_refuses_an_unknown_log_format() -> None:
    result = CliRunner().invoke(main, ["check"], env={"OPSBOT_LOG_FORMAT": "yaml"})
    assert result.exit_code == 2
    assert (
        "OPSBOT_LOG_FORMAT" in result.output and "'yaml' is not one of text, json" in result.output
    )
    assert "Traceback" not in result.output


def test_the_log_format_is_text_by_default_and_case_blind() -> None:
    assert Settings().log_format == "text"
    assert Settings(log_format="JSON").log_format == "json"  # type: ignore[arg-type]
