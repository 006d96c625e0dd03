"""The fuzz suite's settings: deterministic, bounded for CI; a long run by hand with
``OPSBOT_FUZZ_EXAMPLES=10000 pytest tests/fuzz`` (examples per test, per database)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("OPSBOT_FUZZ_EXAMPLES", "40"))
# pytest-timeout's 120 s per test is for CI's 40 examples; a long run gets about 1 s an example.
TIMEOUT_SECONDS = max(120, EXAMPLES)

settings.register_profile(
    "opsbot-fuzz",
    max_examples=EXAMPLES,
    derandomize=True,  # the same examples on every run: CI failures reproduce
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one app and database per test, shared by examples
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each fuzz test a timeout that grows with the example count."""
    for item in items:
        if "tests/fuzz/" in item.nodeid:
            item.add_marker(pytest.mark.timeout(TIMEOUT_SECONDS))
