"""Runbook policy (pure): parameter typing, approvals, target limits, auto guard, run states."""

from __future__ import annotations

import pytest

from opsbot.core import runbook_policy as rp

BOOK = rp.Runbook(
    name="b", title="B", kind="command", document="AWS-RunShellScript", max_targets=2,
    parameters=(
        rp.Param("Days", type="int", minimum=1, maximum=9, default=3),
        rp.Param("Force", type="bool", default=False),
        rp.Param("Mode", type="choice", choices=("fast", "slow"), default="fast"),
        rp.Param("Path", pattern="/[a-z/]+", required=False),
    ),
)  # fmt: skip


def test_parameters_are_typed_checked_and_defaulted() -> None:
    assert rp.check_parameters(BOOK, {"Days": "4", "Force": "yes"}) == {
        "Days": "4", "Force": "true", "Mode": "fast",
    }  # fmt: skip
    for bad, why in (
        ({"Days": "0"}, "below the minimum"),
        ({"Days": "x"}, "not a whole number"),
        ({"Force": "maybe"}, "not true or false"),
        ({"Mode": "warp"}, "not one of fast, slow"),
        ({"Path": "/etc;rm"}, "does not match"),
        ({"Nope": "1"}, "unknown parameter"),
    ):
        with pytest.raises(rp.ParamError, match=why):
            rp.check_parameters(BOOK, bad)


@pytest.mark.parametrize(
    ("env", "level"), [("sandbox", "none"), ("dev", "none"), ("nonprod", "one"), ("prod", "other")]
)
def test_default_approval_per_environment(env: str, level: str) -> None:
    assert rp.approval_needed(BOOK, env) == level


def test_the_requester_cannot_approve_where_another_person_is_needed() -> None:
    with pytest.raises(rp.PolicyRefusal):
        rp.check_approver("other", "ana", "ana")
    rp.check_approver("other", "ana", "bob")
    rp.check_approver("one", "ana", "ana")


def test_environment_and_target_limits() -> None:
    narrow = rp.Runbook(**{**BOOK.__dict__, "environments": ("dev",)})
    with pytest.raises(rp.PolicyRefusal, match="may not run in prod"):
        rp.check_request(narrow, "prod", 1)
    with pytest.raises(rp.PolicyRefusal, match="limit is 2"):
        rp.check_request(BOOK, "dev", 3)
    with pytest.raises(rp.PolicyRefusal, match="no target"):
        rp.check_request(BOOK, "dev", 0)


def test_auto_remediation_guard() -> None:
    fresh = rp.AutoHistory(0, 0)
    rp.check_auto(BOOK, "sandbox", fresh)
    for env, history, why in (
        ("prod", fresh, "never runs automatically in prod"),
        ("nonprod", fresh, "needs approval"),
        ("dev", rp.AutoHistory(1, 1), "already ran"),
        ("dev", rp.AutoHistory(0, 3), "limit 3"),
    ):
        with pytest.raises(rp.PolicyRefusal, match=why):
            rp.check_auto(BOOK, env, history)


def test_run_state_machine() -> None:
    assert rp.transition("requested", "ask") == "awaiting_approval"
    assert rp.transition("awaiting_approval", "approve") == "approved"
    assert rp.transition("running", "time_out") == "timed_out"
    for state, event in (("denied", "approve"), ("expired", "approve"), ("succeeded", "start")):
        with pytest.raises(rp.InvalidTransition):
            rp.transition(state, event)
    assert rp.overall_status(["Success", "InProgress"]) is None
    assert rp.overall_status(["Success", "Failed"]) == "fail"
    assert rp.overall_status(["Success", "TimedOut", "Failed"]) == "time_out"


def test_truncate_keeps_head_and_tail() -> None:
    text = "a" * 3000 + "b" * 3000
    cut = rp.truncate(text, 1000)
    assert len(cut) <= 1000 and cut.startswith("a") and cut.endswith("b") and "cut" in cut
