"""The edge rules in handlers.base (issue 15): numbers are ASCII within a range, JSON depth is
bounded, stored text is clean, and an alert is cut to the widths of its columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

import handlers
from handlers.base import (
    ALERT_TEXT_LIMITS,
    MAX_JSON_DEPTH,
    clean,
    fit_alert,
    json_depth_within,
    parse_int,
    scrub,
    utc_or_none,
)
from opsbot.core.alert import Alert, AlertStatus, Severity


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("42", 42), (str(2**63 - 1), 2**63 - 1), (str(2**63), None), ("²", None),
     ("\uff11", None), ("\u0661", None), ("+1", None), ("-1", None), (" 1", None), ("", None),
     ("1" * 20, None)],
)  # fmt: skip
def test_parse_int_takes_ascii_digits_within_int64(text, expected) -> None:
    assert parse_int(text) == expected


def test_parse_int_honours_its_range_at_and_past_the_bounds() -> None:
    assert parse_int("1", 1, 500) == 1 and parse_int("500", 1, 500) == 500
    assert parse_int("0", 1, 500) is None and parse_int("501", 1, 500) is None


def test_json_depth_at_and_past_the_limit() -> None:
    def nested(depth: int) -> object:
        value: object = []
        for _ in range(depth - 1):
            value = [value]
        return value

    assert json_depth_within(nested(MAX_JSON_DEPTH))
    assert not json_depth_within(nested(MAX_JSON_DEPTH + 1))
    assert json_depth_within({"a": 1, "b": "x"}) and json_depth_within(5)


def test_clean_and_scrub_replace_nul_and_lone_surrogates() -> None:
    assert clean("a\x00b\ud800c") == "a\ufffdb\ufffdc"
    assert scrub({"k\x00": ["v\udfff", float("nan"), float("inf"), 1]}) == {
        "k\ufffd": ["v\ufffd", None, None, 1]
    }


def test_utc_or_none_survives_the_edges_of_the_calendar() -> None:
    plus14 = timezone(timedelta(hours=14))
    assert utc_or_none(datetime(1, 1, 1, tzinfo=plus14)) is None
    assert (
        utc_or_none(datetime(9999, 12, 31, 23, 59, tzinfo=timezone(-timedelta(hours=23)))) is None
    )
    assert utc_or_none(datetime(2026, 1, 1, 14, tzinfo=plus14)) == datetime(2026, 1, 1, tzinfo=UTC)


def alert(**fields: object) -> Alert:
    values: dict = {"fingerprint": "f" * 32, "status": AlertStatus.FIRING,
                    "severity": Severity.HIGH, "source": "s", "title": "t", **fields}  # fmt: skip
    return Alert(**values)


def test_fit_alert_cuts_display_text_with_a_marker_at_the_column_width() -> None:
    limit = ALERT_TEXT_LIMITS["title"]
    exact = fit_alert(alert(title="t" * limit))
    assert exact.title == "t" * limit
    cut = fit_alert(alert(title="t" * (limit + 1), source="x" * 500))
    assert len(cut.title) == limit and cut.title.endswith("…")
    assert len(cut.source) == ALERT_TEXT_LIMITS["source"]


def test_fit_alert_drops_codes_that_do_not_fit_and_cleans_labels() -> None:
    fitted = fit_alert(
        alert(account_id="1" * 33, region="r" * 32, labels={"k\x00": "v" * 600}, raw={"a": "\x00"})
    )
    assert fitted.account_id == "" and fitted.region == "r" * 32
    assert fitted.labels == {"k\ufffd": "v" * 499 + "…"}
    assert fitted.raw == {"a": "\ufffd"}


def test_metrics_label_only_known_sources() -> None:
    assert handlers.metric_source("aws.guardduty") == "aws.guardduty"
    assert handlers.metric_source("aws.cloudwatch") == "aws.cloudwatch"
    assert handlers.metric_source("custom.source.12345") == "other"
